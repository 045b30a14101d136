"""Command-line loading of config files, shared by the training and data_prep CLIs."""

from __future__ import annotations

import re
import sys
from typing import Callable

from absl import app


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

    return parse
