"""The one error a data_prep command reports as a single line: a config it cannot run."""


class ConfigError(ValueError):
    """The config cannot produce a dataset; the message says which key to change."""
