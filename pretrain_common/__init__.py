"""The contracts data_prep and pretrain_jax share, imported by both and importing neither.

records.py        the prepared dataset on disk: packed sequences, metadata.json
tokenizer.py      the tokenizer file, its special ids, and how to load it
errors.py         ConfigError, the one error a command reports as one line
cli.py            the command-line idiom of both packages, and the one config loader (file + overrides)
"""
