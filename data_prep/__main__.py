"""The data_prep command line: `data-prep <command> --config=FILE [--config.KEY=VALUE ...]`
(also `python -m data_prep <command> ...`).

    data-prep run --config=configs/data/demo.py --config.output_dir=/tmp/demo-data
    data-prep train-classifier --config=FILE --config.classifier.model=quality.npz ...
    data-prep eval-classifier --config=FILE --config.classifier.model=quality.npz ...
    data-prep diff data/A data/B    # how two prepared datasets were made, and what they hold, side by side

`run` runs the pipeline that the config describes; `prepare` is the same command
under its earlier name. `--runner=beam` runs it as an Apache Beam pipeline
(data_prep/beam_runner.py, `pip install -e ".[beam]"`) with the Beam options in
`--beam_options`, e.g. `--beam_options="--runner=FnApiRunner --direct_num_workers=2"`.
Every config key can be overridden (`--config.seq_len=512`,
`--config.inputs='("web=/data/crawl",)'`); keys are listed, with their meaning, in
data_prep/schema.py. An unknown key is an error, not a no-op; so is a config the
command cannot run (one line, starting FATAL). The idiom is pretrain_common/cli.py's.
"""

from __future__ import annotations

import dataclasses
from typing import Sequence

from absl import flags

from data_prep import classifier_cli, prepare, provenance, stats
from pretrain_common import cli

SCHEMA = "data_prep/schema.py"


def _define_config(fv: flags.FlagValues, argv: Sequence[str]) -> None:
    cli.define_config(fv, argv, "data config file, e.g. configs/data/demo.py")


def _define_run(fv: flags.FlagValues, argv: Sequence[str]) -> None:
    _define_config(fv, argv)
    flags.DEFINE_enum("runner", "local", ["local", "beam"], "run on this machine's cores, or as a Beam pipeline",
                      flag_values=fv)
    # FnApiRunner: Beam's in-process runner. DirectRunner would first try to download and start Prism.
    flags.DEFINE_string("beam_options", "--runner=FnApiRunner", "Beam pipeline options for --runner=beam, as one "
                        "string", flag_values=fv)


def _config(args: flags.FlagValues):
    cli.required(args, "config")
    return cli.config(args["config"])


def _run(args: flags.FlagValues) -> None:
    config = _config(args)
    if args.runner == "local":
        report = prepare.prepare(config)
    else:
        from data_prep import beam_runner  # only with the beam extra installed

        report = beam_runner.run(config, beam_runner.parse_beam_options(args.beam_options))
    print(stats.format_report(report))


def _usage(command: str) -> str:
    """The lines of this module's docstring that show `command`."""
    return "\n".join(line for line in __doc__.splitlines() if f"data-prep {command} " in line)


RUN = cli.Subcommand("curate, tokenize and pack a dataset as the config says", _define_run, _run, _usage("run"))
PREPARE = dataclasses.replace(RUN, summary="the same as run (its earlier name)",
                              usage=_usage("run").replace("data-prep run", "data-prep prepare"))
TRAIN_CLASSIFIER = cli.Subcommand("fit the quality classifier on labeled examples", _define_config,
                                  lambda args: classifier_cli.train_classifier(_config(args)),
                                  _usage("train-classifier"))
EVAL_CLASSIFIER = cli.Subcommand("measure the quality classifier on held-out examples", _define_config,
                                 lambda args: classifier_cli.eval_classifier(_config(args)),
                                 _usage("eval-classifier"))
def _define_nothing(fv: flags.FlagValues, argv: Sequence[str]) -> None:
    """diff takes two folders and no flags."""


def _diff(_: flags.FlagValues, a_dir: str, b_dir: str) -> None:
    print(provenance.format_differences(a_dir, b_dir, provenance.differences(a_dir, b_dir)))


DIFF = cli.Subcommand("compare two prepared datasets: config, files, inputs, versions, counts", _define_nothing,
                      _diff, _usage("diff"), arguments=("A", "B"))
COMMANDS = {
    "run": cli.Command("data_prep.__main__:RUN", RUN.summary),
    "prepare": cli.Command("data_prep.__main__:PREPARE", PREPARE.summary),
    "train-classifier": cli.Command("data_prep.__main__:TRAIN_CLASSIFIER", TRAIN_CLASSIFIER.summary),
    "eval-classifier": cli.Command("data_prep.__main__:EVAL_CLASSIFIER", EVAL_CLASSIFIER.summary),
    "diff": cli.Command("data_prep.__main__:DIFF", DIFF.summary),
}


def main(argv: Sequence[str] | None = None) -> None:
    cli.main("data-prep", COMMANDS, argv, SCHEMA)


if __name__ == "__main__":
    main()
