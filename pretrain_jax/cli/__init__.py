"""The command line: `pretrain-jax <command> [flags]`, also `python -m pretrain_jax <command> [flags]`.

    pretrain-jax train --config=configs/demo.py --workdir=workdirs/demo --config.data.dir=data/demo
    pretrain-jax evaluate --workdir=workdirs/demo
    pretrain-jax train --help

One module here per command (flags and the run that calls the library); the library
modules define no flags. `python -m pretrain_jax.<command>` still works, as an alias.
"""

from __future__ import annotations

import sys
from typing import Sequence

from pretrain_common import cli
from pretrain_jax import host_memory

SCHEMA = "pretrain_jax/schema.py"
COMMANDS = {
    "train": cli.Command("pretrain_jax.cli.train", "train a model, resuming from its workdir"),
    "evaluate": cli.Command("pretrain_jax.cli.evaluate", "held-out loss, bits per byte and few-shot tasks of a run"),
    "generate": cli.Command("pretrain_jax.cli.generate", "continue prompts with a trained model"),
    "finetune": cli.Command("pretrain_jax.cli.finetune", "train a classification head on a pretrained model"),
    "average": cli.Command("pretrain_jax.cli.average", "average checkpoints into a new workdir (model soups)"),
    "hf": cli.Command("pretrain_jax.cli.hf", "export to / import from a Hugging Face folder (hf export|import)"),
    "aot": cli.Command("pretrain_jax.cli.aot", "compile the train step for a TPU slice: will it fit?"),
    "scaling": cli.Command("pretrain_jax.cli.scaling", "scaling laws: plan, sweep, fit, plot"),
    "lm-eval": cli.Command("pretrain_jax.cli.lm_eval", "lm-evaluation-harness with this project's models"),
}


# Commands that train: they start on the fast allocator (pretrain_jax/host_memory.py) before anything else.
TRAINING = ("train", "finetune")


def main(argv: Sequence[str] | None = None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in TRAINING and not any(arg in cli.HELP for arg in argv):
        host_memory.reexec_on_fast_allocator(["-m", "pretrain_jax", *argv])
    cli.main("pretrain-jax", COMMANDS, argv, SCHEMA)
