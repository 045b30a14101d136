"""Fine-tune a pretrained run (either objective) as a text classifier.

    pretrain-jax finetune --workdir=PRETRAINED --data=train.jsonl --eval_data=heldout.jsonl \
        --output=DIR --train=head        # or --train=all; --epochs, --batch_size, --learning_rate, ...

Each JSONL line is {"text": "...", "label": ...} (pretrain_jax/finetune.py).
"""

from __future__ import annotations

import dataclasses
from typing import Sequence

from absl import flags

from pretrain_common import cli
from pretrain_jax import finetune

USER_ERRORS = (ValueError, FileNotFoundError)  # bad examples or a workdir that cannot be used
HP = finetune.Hyperparameters


def define(fv: flags.FlagValues, argv: Sequence[str]) -> None:
    for name, help_text in (("workdir", "the pretraining run's --workdir (config.json, checkpoints)"),
                            ("data", "training examples, JSONL {\"text\": ..., \"label\": ...}"),
                            ("eval_data", "held-out examples, same format"),
                            ("output", "folder for the fine-tuned classifier")):
        flags.DEFINE_string(name, None, help_text, flag_values=fv)
    flags.DEFINE_enum("train", "head", list(finetune.TRAIN_MODES), "head: the linear head alone; all: every weight",
                      flag_values=fv)
    flags.DEFINE_integer("windows", HP.windows, "rows of the pretraining sequence length read per text; the rest "
                         "is cut", flag_values=fv)
    flags.DEFINE_integer("epochs", HP.epochs, "passes over the training examples", flag_values=fv)
    flags.DEFINE_integer("batch_size", HP.batch_size, "examples per step", flag_values=fv)
    flags.DEFINE_float("learning_rate", HP.learning_rate, "peak AdamW learning rate (BERT fine-tuned all weights at "
                       "2e-5 to 5e-5)", flag_values=fv)
    flags.DEFINE_float("weight_decay", HP.weight_decay, "decoupled weight decay", flag_values=fv)
    flags.DEFINE_float("warmup_fraction", HP.warmup_fraction, "fraction of the steps warming up; then linear decay "
                       "to 0", flag_values=fv)
    flags.DEFINE_integer("seed", HP.seed, "order of the training examples", flag_values=fv)


def run(args: flags.FlagValues) -> None:
    cli.required(args, "workdir", "data", "eval_data", "output")
    hp = HP(**{f.name: args[f.name].value for f in dataclasses.fields(HP)})
    finetune.finetune(args.workdir, args.data, args.eval_data, args.output, hp)
