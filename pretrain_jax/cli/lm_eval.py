"""lm-evaluation-harness's own command line, with this project's models registered as `pretrain_jax`.

    pretrain-jax lm-eval --model pretrain_jax --model_args checkpoint=workdirs/demo --tasks hellaswag

Every flag is lm_eval's (`pretrain-jax lm-eval --help` lists them); needs the hf extra.
"""

from __future__ import annotations

import sys
from typing import Sequence

PASSTHROUGH = True  # lm_eval parses its own flags


def run(argv: Sequence[str]) -> None:
    from lm_eval.__main__ import cli_evaluate

    import pretrain_jax.lm_eval_adapter  # noqa: F401  registers the model

    sys.argv = ["lm_eval", *argv[1:]]
    cli_evaluate()
