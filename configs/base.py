"""The training schema as a config file (--config=configs/base.py); each key, its default and why: pretrain_jax/schema.py.

The other configs here start from it and override only what differs.
"""

from pretrain_jax.schema import get_config  # noqa: F401  (the config file's get_config)
