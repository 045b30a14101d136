"""`python -m pretrain_jax <command> [flags]`: the command line (pretrain_jax/cli)."""

from pretrain_jax import cli

if __name__ == "__main__":
    cli.main()
