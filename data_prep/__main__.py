"""The data_prep command line.

    python -m data_prep run --config=configs/data/demo.py --config.output_dir=/tmp/demo-data
    python -m data_prep train-classifier --config=FILE --config.classifier.model=quality.npz ...
    python -m data_prep eval-classifier --config=FILE --config.classifier.model=quality.npz ...

`run` runs the pipeline that the config describes; `prepare` is the same command
under its earlier name. `--runner=beam` runs it as an Apache Beam pipeline
(data_prep/beam_runner.py, `pip install -e ".[beam]"`) with the Beam options in
`--beam_options`, e.g. `--beam_options="--runner=FnApiRunner --direct_num_workers=2"`.
Every config key can be overridden (`--config.seq_len=512`,
`--config.inputs='("web=/data/crawl",)'`); keys are listed, with their meaning, in
configs/data/base.py. An unknown key is an error, not a no-op; so is a config the
command cannot run (one line, starting FATAL).
"""

from __future__ import annotations

import sys

from absl import app, flags
from ml_collections import config_flags

from configs import cli
from data_prep import classifier_cli, prepare, stats
from data_prep.errors import ConfigError

_CONFIG = config_flags.DEFINE_config_file("config", None, "data config file, e.g. configs/data/demo.py")
_RUNNER = flags.DEFINE_enum("runner", "local", ["local", "beam"], "run on this machine's cores, or as a Beam pipeline")
# FnApiRunner: Beam's in-process runner. DirectRunner would first try to download and start Prism.
_BEAM_OPTIONS = flags.DEFINE_string("beam_options", "--runner=FnApiRunner",
                                    "Beam pipeline options for --runner=beam, as one string")


def _run(config) -> None:
    if _RUNNER.value == "local":
        report = prepare.prepare(config)
    else:
        from data_prep import beam_runner  # only with the beam extra installed

        report = beam_runner.run(config, beam_runner.parse_beam_options(_BEAM_OPTIONS.value))
    print(stats.format_report(report))


COMMANDS = {
    "run": _run,
    "prepare": _run,
    "train-classifier": classifier_cli.train_classifier,
    "eval-classifier": classifier_cli.eval_classifier,
}


def _main(argv: list[str]) -> None:
    if len(argv) != 2 or argv[1] not in COMMANDS:
        commands = "|".join(COMMANDS)
        raise app.UsageError(f"usage: python -m data_prep {{{commands}}} --config=FILE [--config.KEY=VALUE ...]")
    if cli.loaded_config(_CONFIG) is None:
        raise app.UsageError("--config is required, e.g. --config=configs/data/demo.py")
    try:
        COMMANDS[argv[1]](cli.loaded_config(_CONFIG))
    except ConfigError as e:
        sys.exit(f"FATAL {e}")


def main() -> None:
    app.run(_main, flags_parser=cli.flags_parser("configs/data/base.py"))


if __name__ == "__main__":
    main()
