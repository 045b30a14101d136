"""The one error every command of both packages reports as a single line: a config, dataset or file it cannot use."""


class ConfigError(ValueError):
    """What cannot run; the message says which key or file to change, and how."""
