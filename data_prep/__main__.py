"""The data_prep command line: `python -m data_prep prepare --config=configs/data/demo.py`.

Every config key can be overridden (`--config.seq_len=512`); keys are listed, with
their meaning, in configs/data/base.py. An unknown key is an error, not a no-op.
"""

from __future__ import annotations

import sys

from absl import app
from ml_collections import config_flags

from configs import cli
from data_prep import prepare, stats

_CONFIG = config_flags.DEFINE_config_file("config", None, "data config file, e.g. configs/data/demo.py")


def _prepare(config) -> None:
    try:
        report = prepare.prepare(config)
    except prepare.ConfigError as e:
        sys.exit(f"FATAL {e}")
    print(stats.format_report(report))


COMMANDS = {"prepare": _prepare}


def _main(argv: list[str]) -> None:
    if len(argv) != 2 or argv[1] not in COMMANDS:
        commands = "|".join(COMMANDS)
        raise app.UsageError(f"usage: python -m data_prep {{{commands}}} --config=FILE [--config.KEY=VALUE ...]")
    if _CONFIG.value is None:
        raise app.UsageError("--config is required, e.g. --config=configs/data/demo.py")
    COMMANDS[argv[1]](_CONFIG.value)


def main() -> None:
    app.run(_main, flags_parser=cli.flags_parser("configs/data/base.py"))


if __name__ == "__main__":
    main()
