"""`python -m pretrain_jax.scaling ...`: an alias of `pretrain-jax scaling ...` (pretrain_jax/cli/scaling.py)."""

import sys

from pretrain_jax import cli

if __name__ == "__main__":
    cli.main(["scaling", *sys.argv[1:]])
