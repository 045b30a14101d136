"""Joining the processes of a multi-host run (JAX's multi-controller runtime).

Every host runs the same command. `jax.distributed.initialize` finds its peers on
TPU pod slices and under SLURM by itself; elsewhere (or to override) pass the
coordinator explicitly. A single process on one host needs no initialization.
"""

from __future__ import annotations

import os

import jax

from pretrain_common.errors import ConfigError


def _multi_process_cluster() -> bool:
    """True when a scheduler started several processes; jax.distributed then finds its peers itself."""
    if os.environ.get("SLURM_JOB_ID"):
        return int(os.environ.get("SLURM_NTASKS", "1")) > 1
    if os.environ.get("OMPI_COMM_WORLD_SIZE"):
        return int(os.environ["OMPI_COMM_WORLD_SIZE"]) > 1
    return "," in os.environ.get("TPU_WORKER_HOSTNAMES", "")  # a multi-host TPU slice


def initialize(mode: str = "auto", coordinator_address: str | None = None, num_processes: int | None = None,
               process_id: int | None = None) -> None:
    """Joins the run's processes.

    mode: "auto" joins when a coordinator is given or a scheduler started several
    processes; "on" always calls jax.distributed.initialize (TPU pod workers, where
    JAX reads the slice from the VM's metadata); "off" runs a single process.
    """
    if mode not in ("auto", "on", "off"):
        raise ConfigError(f"--distributed={mode!r}; choose auto, on or off")
    explicit = coordinator_address is not None
    if mode == "off" or (mode == "auto" and not explicit and not _multi_process_cluster()):
        return
    if explicit and (num_processes is None or process_id is None):
        raise ConfigError("with --coordinator_address, also give --num_processes and --process_id")
    if os.environ.get("JAX_PLATFORMS") == "cpu":
        jax.config.update("jax_cpu_collectives_implementation", "gloo")  # CPU collectives across processes
    jax.distributed.initialize(coordinator_address, num_processes, process_id)
