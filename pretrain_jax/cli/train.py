"""Train a model; the same command again resumes it from its workdir.

    pretrain-jax train --config=configs/demo.py --workdir=workdirs/demo --config.data.dir=data/demo
    pretrain-jax train --config=configs/two_stage.py:anneal --workdir=W/anneal --init_from=W/pretrain@500

Any config key can be overridden: --config.num_train_steps=500 (keys: pretrain_jax/schema.py).
"""

from __future__ import annotations

from typing import Sequence

from absl import flags, logging

from pretrain_common import cli
from pretrain_jax import distributed, hooks, metrics, train


def define(fv: flags.FlagValues, argv: Sequence[str]) -> None:
    cli.define_config(fv, argv, "training config file (configs/*.py[:ARG])")
    flags.DEFINE_string("workdir", None, "folder for checkpoints and TensorBoard logs; reused to resume", flag_values=fv)
    flags.DEFINE_string("init_from", None, "WORKDIR[@STEP]: start from another run's parameters (the newest "
                        "checkpoint without @STEP); the same as --config.init.source", flag_values=fv)
    flags.DEFINE_enum("distributed", "auto", ["auto", "on", "off"], "join other processes: auto (coordinator given or "
                      "SLURM/MPI/TPU detected), on (always; TPU pod workers), off", flag_values=fv)
    flags.DEFINE_string("coordinator_address", None, "host:port of process 0, for multi-process runs outside TPU pods "
                        "and SLURM", flag_values=fv)
    flags.DEFINE_integer("num_processes", None, "processes in the run (with --coordinator_address)", flag_values=fv)
    flags.DEFINE_integer("process_id", None, "this process's index (with --coordinator_address)", flag_values=fv)


def run(fv: flags.FlagValues) -> None:
    cli.required(fv, "config", "workdir")
    logging.set_verbosity(logging.WARNING)  # orbax logs every file it writes at INFO
    distributed.initialize(fv.distributed, fv.coordinator_address, fv.num_processes, fv.process_id)
    config = cli.config(fv["config"])
    if fv.init_from is not None:
        config.init.source = fv.init_from
    try:
        train.train(config, fv.workdir)
    except hooks.TrainingStopped as e:
        metrics.log(str(e))
        raise SystemExit(1)
