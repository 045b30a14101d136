"""Average checkpoints of runs of one shape into a new workdir (model soups), uniformly or by weight.

    pretrain-jax average --checkpoint=workdirs/anneal_a --checkpoint=workdirs/anneal_b@800 \
        --output=workdirs/soup [--weights=1,2] [--ema]
"""

from __future__ import annotations

from typing import Sequence

from absl import flags

from pretrain_common import cli
from pretrain_jax import average

USER_ERRORS = (ValueError, FileNotFoundError)  # ConfigError, or a weight that is not a number


def define(fv: flags.FlagValues, argv: Sequence[str]) -> None:
    flags.DEFINE_multi_string("checkpoint", [], "WORKDIR[@STEP]: a run's checkpoint (its newest without @STEP); "
                              "repeat for each input", flag_values=fv)
    flags.DEFINE_string("output", None, "the new workdir", flag_values=fv)
    flags.DEFINE_list("weights", [], "comma-separated weights, one per --checkpoint (default: equal)",
                      flag_values=fv)
    flags.DEFINE_bool("ema", False, "average the runs' EMA parameters (ema_decay > 0)", flag_values=fv)


def run(args: flags.FlagValues) -> None:
    cli.required(args, "output")
    weights = [float(w) for w in args.weights] or None
    output = average.average(args.checkpoint, args.output, weights, args.ema)
    print(f"wrote {output}; evaluate it with: pretrain-jax evaluate --workdir={output}")
