"""Compile the train step for a TPU slice on this machine: does the config fit, and what will it communicate?

    pretrain-jax aot --config=configs/llama_7b.py --topology=v5p-128 --config.model.remat=full
    pretrain-jax aot --config=configs/tiny.py --topology=v5e:2x2 --json

Needs libtpu (`make install` puts it off the import path; or pip install -e ".[tpu]"); no TPU.
"""

from __future__ import annotations

import json
import os
import sys
from typing import Sequence

from absl import flags

from pretrain_common import cli
from pretrain_jax import aot

USER_ERRORS = (ValueError, FileNotFoundError)  # a topology, config or libtpu that cannot be used


def define(fv: flags.FlagValues, argv: Sequence[str]) -> None:
    cli.define_config(fv, argv, "training config file (configs/*.py[:ARG])")
    flags.DEFINE_string("topology", None, f"the TPU slice: {aot.TOPOLOGY_HELP}", flag_values=fv)
    flags.DEFINE_integer("num_slices", 1, "slices joined by the data-center network (multi-slice); set "
                         "config.mesh.dcn_* to split mesh axes across them", flag_values=fv)
    flags.DEFINE_bool("json", False, "print one JSON object instead of the table", flag_values=fv)


def run(args: flags.FlagValues) -> None:
    cli.required(args, "config", "topology")
    os.environ.setdefault("JAX_PLATFORMS", "cpu")  # compile-only TPU devices; no accelerator is opened
    topology = aot.parse_topology(args.topology, args.num_slices)
    print(f"compiling for {topology.name} x {topology.num_slices} slice(s) (minutes for a large model on a few "
          "CPU cores)...", file=sys.stderr, flush=True)
    result = aot.analyze(cli.config(args["config"]), topology)
    print(json.dumps(result, indent=1) if args.json else aot.format_report(result))
