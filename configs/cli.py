"""Command-line loading of config files, shared by the training and data_prep CLIs."""

from __future__ import annotations

import re
import sys
from typing import Any, Callable

from absl import app, flags


def unknown_key_message(error: Exception, schema: str) -> str:
    """One line for ml_collections' rejection of `--config.<unknown key>`, keeping its suggestion."""
    text = str(error).replace("\\n", "\n").replace("\\'", "'")
    key = re.search(r"'([^'\n]+)'", text)
    suggestion = re.search(r'Did you mean "([^"]+)"', text)
    message = f"unknown config key {key.group(1) if key else text!r}"
    if suggestion:
        message += f" (did you mean {suggestion.group(1)!r}?)"
    return f"{message}; every key is listed, with its meaning, in {schema}"


def flags_parser(schema: str) -> Callable[[list[str]], list[str]]:
    """An absl `flags_parser` that exits with one clear line on an unknown config key."""

    def parse(argv: list[str]) -> list[str]:
        try:
            return app.parse_flags_with_usage(argv)
        except (AttributeError, KeyError) as e:  # how ml_collections rejects an unknown override
            sys.exit(f"FATAL {unknown_key_message(e, schema)}")
        except OSError as e:  # a config file that could not be loaded, met when an override is applied to it
            name = re.search(r"config file (\S+)_config\b", str(e))
            sys.exit(f"FATAL {_load_failure(name.group(1) if name else 'config', e)}")

    return parse


def loaded_config(holder: flags.FlagHolder) -> Any:
    """The value of a config-file flag, or exit with one line when the file could not be loaded:
    config_flags then hands a stand-in that raises the load error at its first use."""
    value = holder.value
    if value is not None:
        try:
            value.keys()
        except OSError as e:
            sys.exit(f"FATAL {_load_failure(holder.name, e)}")
    return value


def _load_failure(flag: str, error: OSError) -> str:
    """One line for a config file ml_collections could not load: its last line names the file and the reason."""
    return f"--{flag}: {str(error.__cause__ or error).splitlines()[-1].strip()}"


def parse_own_flags(flag_values: flags.FlagValues, argv: list[str], schema: str) -> None:
    """Parses a tool's own flag set (one that imports train.py cannot reuse the global flag names),
    exiting with one clear line on an unknown config key, a bad flag or a stray argument."""
    try:
        rest = flag_values(argv)
    except (AttributeError, KeyError) as e:  # how ml_collections rejects an unknown override
        sys.exit(f"FATAL {unknown_key_message(e, schema)}")
    except flags.Error as e:
        sys.exit(f"FATAL {e}")
    if len(rest) > 1:
        sys.exit(f"FATAL unexpected arguments: {rest[1:]}")
