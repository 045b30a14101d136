"""The training fixtures of tests/pretrain_jax/conftest.py, for the training fault tests: the tiny dataset,
its config, a finished tiny run (checkpoints at steps 5 and 10) and `restore`."""

from tests.pretrain_jax.conftest import restore, tiny_config, tiny_dataset, tiny_run  # noqa: F401
