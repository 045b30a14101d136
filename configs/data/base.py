"""The data_prep schema as a config file (--config=configs/data/base.py); each key, its default and why:
data_prep/schema.py.

The other data configs here start from it and override only what differs.
"""

from data_prep.schema import get_config  # noqa: F401  (the config file's get_config)
