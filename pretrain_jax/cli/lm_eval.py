"""lm-evaluation-harness's own command line, with this project's models registered as `pretrain_jax`.

    pretrain-jax lm-eval --model pretrain_jax --model_args checkpoint=workdirs/demo --tasks hellaswag

Every flag is lm_eval's (`pretrain-jax lm-eval --help` lists them); needs the hf extra.
"""

from __future__ import annotations

import argparse
import sys
from typing import Sequence

PASSTHROUGH = True  # lm_eval parses its own flags


def _one_line(parser: argparse.ArgumentParser, message: str) -> None:
    """argparse's error, as every other command's: one FATAL line (argparse prints its usage above it)."""
    parser.exit(2, f"FATAL {message} (pretrain-jax {parser.prog} --help)\n")


def run(argv: Sequence[str]) -> None:
    from lm_eval.__main__ import cli_evaluate

    import pretrain_jax.lm_eval_adapter  # noqa: F401  registers the model

    sys.argv = list(argv)  # argv[0] is "pretrain-jax lm-eval": argparse names it so in its messages
    argparse.ArgumentParser.error = _one_line  # this process runs lm_eval's command line and nothing else
    cli_evaluate()
