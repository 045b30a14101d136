"""Ahead-of-time compilation of the train step for a TPU slice, on a machine without one
(`pretrain-jax aot`: pretrain_jax/cli/aot.py).

Answers "does this config fit this slice, and what will it communicate?" before
renting the slice. libtpu (installed by `make install` off the import path, or by
`pip install -e ".[tpu]"`) compiles for compile-only TPU devices from
`jax.experimental.topologies`; the mesh comes from `config.mesh` (any
`--config.KEY=VALUE` override works as in training), the state and batch are abstract
(shapes and shardings, no memory), and the step is the one `train.py` runs, with the
same shardings and donation. A model too large for the chips' HBM fails to compile
with RESOURCE_EXHAUSTED: that is the "does not fit" verdict, reported, not raised.
A program XLA compiled fits; one whose buffers add up to more than the chip's HBM
(XLA reuses temporary space) is marked tight.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import math
import os
import re
import sys
import time
from typing import Any, Sequence

import jax
import ml_collections
import numpy as np

from pretrain_jax import attention, config as config_lib
from pretrain_jax import evaluate, input_pipeline, metrics, model, pipeline, sharding, train_state, train_step

GIB = 2**30


@dataclasses.dataclass(frozen=True)
class Generation:
    usable_gib_per_chip: float  # the HBM XLA compiles against (its RESOURCE_EXHAUSTED limit, libtpu 0.0.42-0.0.52)
    torus_dims: int  # v4 and v5p are 3-D tori, v5e and v6e 2-D
    cores_per_chip_in_name: int  # v4-8 and v5p-8 count TensorCores (2 per chip); v5e-8 and v6e-8 count chips
    accelerator_type: str  # the TPU_ACCELERATOR_TYPE prefix libtpu expects
    chip_config: str = "default"  # v4: "megacore" gives one device per chip, as a v4 VM has


# Datasheet HBM per chip from the Cloud TPU system architecture pages (cloud.google.com/tpu/docs/v4, v5e,
# v5p, v6e); XLA keeps a little of it for itself except on v5p, whose "95 GB" is 95.74 GiB to XLA (95.73 to
# libtpu 0.0.52).
GENERATIONS = {
    "v4": Generation(30.75, 3, 2, "v4", chip_config="megacore"),  # 32 GiB HBM2
    "v5e": Generation(15.75, 2, 1, "v5litepod"),  # 16 GB HBM2
    "v5p": Generation(95.74, 3, 2, "v5p"),  # 95 GB HBM2e
    "v6e": Generation(31.25, 2, 1, "v6e"),  # 32 GB HBM
}
ALIASES = {"v5litepod": "v5e", "v5lite": "v5e", "v6litepod": "v6e"}
TOPOLOGY_HELP = ("an accelerator type (v5p-128, v4-32, v5e-256, v5litepod-16, v6e-64) or "
                 f"generation:shape (v5e:2x2, v5p:4x4x4); generations {sorted(GENERATIONS)}")
COLLECTIVES = ("all-gather", "reduce-scatter", "all-reduce", "all-to-all", "collective-permute")


@dataclasses.dataclass(frozen=True)
class Topology:
    generation: str
    shape: tuple[int, ...]  # chips along each torus axis of one slice
    num_slices: int = 1

    @property
    def name(self) -> str:
        return f"{self.generation}:{'x'.join(map(str, self.shape))}"

    @property
    def chips(self) -> int:
        return math.prod(self.shape) * self.num_slices


def default_shape(chips: int, dims: int) -> tuple[int, ...]:
    """The slice shape Cloud TPU gives a chip count: as cubic as powers of two allow, x <= y <= z (2x2x1 for 4)."""
    if chips < 1 or chips & (chips - 1):
        raise ValueError(f"{chips} chips: TPU slices have a power-of-two number of chips")
    shape = [1] * dims
    while math.prod(shape) < chips:
        shape[shape.index(min(shape))] *= 2
    return tuple(sorted(shape, key=lambda s: (s == 1, s)))


def parse_topology(text: str, num_slices: int = 1) -> Topology:
    """'v5p-128' (TensorCores for v4/v5p, chips for v5e/v6e) or 'v5e:2x2' (chips per axis) -> Topology."""
    match = re.fullmatch(r"(v\d+[a-z]*)(?:-(\d+)|:(\d+(?:x\d+)*))", text.strip().lower())
    generation = ALIASES.get(match.group(1), match.group(1)) if match else None
    if generation not in GENERATIONS:
        raise ValueError(f"--topology={text!r}: expected {TOPOLOGY_HELP}")
    if num_slices < 1:
        raise ValueError(f"--num_slices={num_slices} must be at least 1")
    gen = GENERATIONS[generation]
    if match.group(2):
        count = int(match.group(2))
        if count % gen.cores_per_chip_in_name:
            raise ValueError(f"--topology={text!r}: {generation} counts {gen.cores_per_chip_in_name} TensorCores "
                             "per chip; the number must be a multiple of that")
        return Topology(generation, default_shape(count // gen.cores_per_chip_in_name, gen.torus_dims), num_slices)
    shape = tuple(int(s) for s in match.group(3).split("x"))
    if len(shape) != gen.torus_dims or 0 in shape:
        raise ValueError(f"--topology={text!r}: {generation} slices have {gen.torus_dims} positive axes, "
                         f"e.g. {generation}:{'x'.join(['2'] * gen.torus_dims)}")
    return Topology(generation, shape, num_slices)


# `make install` puts libtpu here, off the import path: installed beside jax it would load (and print start-up
# errors) in every CPU or GPU run; only this module points JAX at it. `pip install -e ".[tpu]"` also works.
AOT_LIBTPU = os.path.join(sys.prefix, "aot-libtpu", "libtpu", "libtpu.so")


def find_libtpu() -> str | None:
    """Where JAX will load libtpu from for compile-only devices: TPU_LIBRARY_PATH, the libtpu package, or AOT_LIBTPU."""
    if os.environ.get("TPU_LIBRARY_PATH"):
        return os.environ["TPU_LIBRARY_PATH"]
    spec = importlib.util.find_spec("libtpu")
    if spec and spec.origin:
        return os.path.join(os.path.dirname(spec.origin), "libtpu.so")
    return AOT_LIBTPU if os.path.isfile(AOT_LIBTPU) else None


def wraparound(topology: Topology) -> tuple[bool, bool, bool]:
    """Which axes of the slice's torus close into rings, as Cloud TPU builds them (the table MaxText's
    accelerator_to_spec_map gives libtpu): v4 and v5p slices made of whole 4x4x4 cubes wrap along every axis,
    smaller ones along none; a v5e or v6e axis wraps where it spans the whole pod's 16 chips.

    libtpu plans collectives on these links: told nothing, it compiles a v5p-128 as an open 4x4x4 grid and
    turns every all-gather into an all-reduce of a zero-padded buffer (twice the bytes over the links)."""
    shape = topology.shape
    if GENERATIONS[topology.generation].torus_dims == 3:
        wrap = [all(side % 4 == 0 for side in shape)] * 3
    else:
        wrap = [side == 16 for side in shape] + [False]
    return tuple(wrap)


def topology_devices(topology: Topology) -> list[jax.Device]:
    """Compile-only devices of the slice(s); needs libtpu but no TPU."""
    library = find_libtpu()
    if library is None:
        raise ValueError(f"ahead-of-time compilation for TPU needs libtpu: `make install` puts it in {AOT_LIBTPU}, "
                         "or pip install -e '.[tpu]'")
    gen = GENERATIONS[topology.generation]
    os.environ.setdefault("TPU_LIBRARY_PATH", library)
    # libtpu probes for a TPU VM when it loads; these say "one local worker" and keep it quiet.
    cores = topology.chips * gen.cores_per_chip_in_name
    os.environ.setdefault("TPU_ACCELERATOR_TYPE", f"{gen.accelerator_type}-{cores}")
    os.environ.setdefault("TPU_WORKER_HOSTNAMES", "localhost")
    os.environ.setdefault("TPU_WORKER_ID", "0")
    # Without a TPU there is nothing to guard: let compiles run in several processes (pytest -n, scripts).
    os.environ.setdefault("ALLOW_MULTIPLE_LIBTPU_LOAD", "1")
    from jax.experimental import topologies
    try:
        return list(topologies.get_topology_desc(topology_name=topology.name, platform="tpu",
                                                 chip_config_name=gen.chip_config,
                                                 num_slices=topology.num_slices,
                                                 wrap=wraparound(topology)).devices)
    except jax.errors.JaxRuntimeError as e:
        raise ValueError(f"libtpu rejected the topology {topology.name} x {topology.num_slices} slice(s): "
                         f"{str(e).splitlines()[0]}") from e


def hbm_bytes_per_device(topology: Topology, num_devices: int) -> int:
    """The HBM XLA lets one device use (a little under the chip's datasheet HBM)."""
    per_chip = GENERATIONS[topology.generation].usable_gib_per_chip * GIB
    return int(per_chip * topology.chips / num_devices)


def abstract_batch(config: ml_collections.ConfigDict, mesh: jax.sharding.Mesh) -> dict[str, jax.ShapeDtypeStruct]:
    """The global batch as the input pipeline makes it (same keys and dtypes), as sharded shapes."""
    example = input_pipeline.segments_and_positions(np.zeros((1, config.seq_len), np.int32), eos_id=1)
    return {k: jax.ShapeDtypeStruct((config.global_batch_size, config.seq_len), v.dtype,
                                    sharding=sharding.batch_sharding(mesh)) for k, v in example.items()}


def compile_train_step(config: ml_collections.ConfigDict, devices: Sequence[jax.Device]) -> jax.stages.Compiled:
    """The train step of `train.py`, lowered on abstract state and batch and compiled for these devices."""
    config_lib.validate(config, len(devices), devices[0].platform)
    return compile_setup(config, train_state.setup(config, devices))


def compile_setup(config: ml_collections.ConfigDict, setup: train_state.Setup) -> jax.stages.Compiled:
    """The train step of `train.py` compiled for a validated config's setup (Pallas kernels for its devices)."""
    with jax.set_mesh(setup.mesh), attention.compiling_for(setup.mesh.devices.flat[0].platform):
        step = train_step.jit_train_step(config, setup)
        return step.lower(setup.abstract, abstract_batch(config, setup.mesh)).compile()


def compile_eval_step(config: ml_collections.ConfigDict, setup: train_state.Setup) -> jax.stages.Compiled:
    """The validation step (evaluate.make_eval_step) for the same setup: it runs inside the training process."""
    params = setup.abstract.params
    table = np.zeros(config.model.vocab_size, np.float32)  # bytes per token: their values do not change the program
    with jax.set_mesh(setup.mesh), attention.compiling_for(setup.mesh.devices.flat[0].platform):
        step = evaluate.make_eval_step(config, setup.mesh, jax.tree.map(lambda x: x.sharding, params), table)
        return step.lower(params, abstract_batch(config, setup.mesh)).compile()


def eval_report(config: ml_collections.ConfigDict, setup: train_state.Setup, train: dict[str, Any]) -> dict[str, Any]:
    """The validation step's memory, and whether it fits beside the training state (arguments of the train step,
    resident between steps) in the HBM the train step was compiled for."""
    hbm = train["memory_per_device"]["hbm"]
    try:
        memory = memory_report(compile_eval_step(config, setup).memory_analysis(), hbm)
    except jax.errors.JaxRuntimeError as e:
        if "RESOURCE_EXHAUSTED" not in str(e):
            raise
        return {"fits": False, "error": str(e).strip().splitlines()[0]}
    beside_state = (train["memory_per_device"]["arguments"] + memory["temporaries"] + memory["outputs"]
                    + memory["generated_code"])
    return {"fits": beside_state <= hbm, "memory_per_device": memory, "beside_training_state": beside_state,
            "error": None}


def memory_report(stats: Any, hbm_bytes: int) -> dict[str, Any]:
    """Bytes per device from `Compiled.memory_analysis()`.

    total = arguments + outputs + temporaries + generated code - aliased: a donated
    state buffer is both an argument and an output but occupies HBM once.
    """
    parts = {"arguments": stats.argument_size_in_bytes, "outputs": stats.output_size_in_bytes,
             "temporaries": stats.temp_size_in_bytes, "generated_code": stats.generated_code_size_in_bytes,
             "aliased": stats.alias_size_in_bytes}
    total = (parts["arguments"] + parts["outputs"] + parts["temporaries"] + parts["generated_code"]
             - parts["aliased"])
    # XLA's own peak, for comparison: it has compiled programs whose total exceeded its limit.
    return {**parts, "total": total, "xla_peak": stats.peak_memory_in_bytes, "hbm": hbm_bytes}


def collective_counts(hlo_text: str) -> dict[str, int]:
    """Collective instructions in a compiled HLO module, by kind (each loop body counted once).

    TPU compiles a reduce-scatter into a fusion that calls an `all-reduce-scatter`
    computation; that fusion counts as a reduce-scatter and the all-reduce inside it
    does not count again. Async pairs count once, at their `-start`.
    """
    counts = dict.fromkeys(COLLECTIVES, 0)
    inside_reduce_scatter = False
    for line in hlo_text.splitlines():
        if line and not line[0].isspace():  # a computation header
            inside_reduce_scatter = line.lstrip("%").startswith("all-reduce-scatter")
            continue
        op = re.search(r" = .*?\s([a-z][a-z0-9-]*)\(", line)
        if not op:
            continue
        if op.group(1) == "fusion" and "calls=%all-reduce-scatter" in line:
            counts["reduce-scatter"] += 1
        kind = op.group(1).removesuffix("-start")
        if kind in counts and not inside_reduce_scatter:
            counts[kind] += 1
    return counts


def report(compiled: jax.stages.Compiled, hbm_bytes: int) -> dict[str, Any]:
    """Memory per device, XLA's FLOPs per device, collective counts and the verdict of one compiled step.

    It compiled, so it fits: XLA refuses a program it cannot place in HBM. "tight" marks
    a program whose buffers add up to more than the limit, which XLA placed only by
    reusing temporary space (its peak is lower): no headroom for a larger batch.
    """
    memory = memory_report(compiled.memory_analysis(), hbm_bytes)
    return {"fits": True, "tight": memory["total"] > hbm_bytes, "memory_per_device": memory,
            "xla_flops_per_device": float(compiled.cost_analysis()["flops"]),
            "collectives": collective_counts(compiled.as_text()), "error": None}


_SIZE = r"([\d.]+)\s*([KMGTPE]?)i?B?"


def _bytes(number: str, unit: str) -> int:
    return int(float(number) * 1024 ** " KMGTPE".index(unit or " "))


def out_of_memory_report(message: str, hbm_bytes: int) -> dict[str, Any]:
    """The does-not-fit verdict from XLA's RESOURCE_EXHAUSTED message, with its byte counts where it gives them."""
    memory: dict[str, Any] = {"hbm": hbm_bytes}
    found = (re.search(rf"\({_SIZE}\) exceeds available HBM \({_SIZE}\)", message)  # libtpu 0.0.42-0.0.52
             or re.search(rf"Used {_SIZE} of {_SIZE} hbm", message))  # older libtpu: "Used 63.80G of 30.75G hbm"
    if found:
        memory["required"] = _bytes(*found.group(1, 2))
        memory["available"] = _bytes(*found.group(3, 4))
    return {"fits": False, "tight": False, "memory_per_device": memory, "xla_flops_per_device": None,
            "collectives": None, "error": message.strip().splitlines()[0]}


def analyze(config: ml_collections.ConfigDict, topology: Topology) -> dict[str, Any]:
    """Compiles for the topology and reports; an over-size model is reported, not raised."""
    devices = topology_devices(topology)
    hbm = hbm_bytes_per_device(topology, len(devices))
    start = time.perf_counter()
    config_lib.validate(config, len(devices), devices[0].platform)
    setup = train_state.setup(config, devices)
    replicated = train_state.replication_report(config, setup)  # ConfigError past mesh.max_replicated_fraction
    try:
        result = report(compile_setup(config, setup), hbm)
    except jax.errors.JaxRuntimeError as e:
        if "RESOURCE_EXHAUSTED" not in str(e):
            raise
        result = out_of_memory_report(str(e), hbm)
    if result["fits"]:
        result["eval_step"] = eval_report(config, setup, result)
    tokens = config.global_batch_size * config.seq_len
    model_flops = metrics.training_flops_per_token(config.model, config.seq_len) * tokens
    mesh = dict(zip(sharding.MESH_AXES, sharding.mesh_shape(config.mesh, len(devices))))
    return {"topology": topology.name, "num_slices": topology.num_slices, "devices": len(devices), "mesh": mesh,
            "pipeline_bubble": pipeline.bubble_fraction(mesh["stage"], config.model.pipeline_microbatches
                                                        or mesh["stage"], config.model.pipeline_repeats),
            "parameters": model.param_count(config.model)["total"],
            "compile_seconds": round(time.perf_counter() - start, 1),
            "model_flops_per_step": model_flops, "model_flops_per_device": model_flops / len(devices),
            "replicated": {"bytes_per_device": replicated.extra_bytes, "fraction": replicated.fraction,
                           "lines": replicated.lines()}, **result}


def _size(num_bytes: float) -> str:
    for unit, scale in (("TiB", 2**40), ("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if num_bytes >= scale:
            return f"{num_bytes / scale:8.2f} {unit}"
    return f"{num_bytes:8.0f} B"


def format_report(r: dict[str, Any]) -> str:
    """The human-readable summary the command line prints."""
    mesh = " ".join(f"{k}={v}" for k, v in r["mesh"].items())
    m = r["memory_per_device"]
    lines = [f"{r['parameters'] / 1e6:,.1f}M parameters on {r['topology']} x {r['num_slices']} slice(s): "
             f"{r['devices']} devices, mesh {mesh}; compiled in {r['compile_seconds']:.1f} s",
             "memory per device:"]
    lines += [f"  {key.replace('_', ' '):<15}{_size(m[key])}" for key in
              ("arguments", "outputs", "temporaries", "generated_code", "aliased", "required", "available",
               "xla_peak") if key in m]
    if "total" in m:
        lines.append(f"  {'total':<15}{_size(m['total'])} of {_size(m['hbm']).strip()} usable HBM "
                     f"({100 * m['total'] / m['hbm']:.0f}%)")
    lines += r["replicated"]["lines"]
    if r["mesh"]["stage"] > 1:
        lines.append(f"pipeline: {r['mesh']['stage']} stages, bubble {100 * r['pipeline_bubble']:.1f}% of each stage's "
                     "iterations idle")
    lines.append(f"model FLOPs (6N + attention): {r['model_flops_per_step']:.3e} per step, "
                 f"{r['model_flops_per_device']:.3e} per device")
    if r["xla_flops_per_device"] is not None:
        lines.append(f"XLA cost analysis: {r['xla_flops_per_device']:.3e} FLOPs per device, "
                     f"{r['xla_flops_per_device'] * r['devices']:.3e} per step (each loop body counted once)")
        lines.append("collectives in the program: " + ", ".join(f"{k} {v}" for k, v in r["collectives"].items()))
    evaluation = r.get("eval_step")
    if evaluation:
        if evaluation["error"] is None:
            e = evaluation["memory_per_device"]
            lines.append(f"validation step: temporaries {_size(e['temporaries']).strip()}; beside the training state "
                         f"{_size(evaluation['beside_training_state']).strip()} of {_size(e['hbm']).strip()}"
                         + ("" if evaluation["fits"] else ": DOES NOT FIT"))
        else:
            lines.append(f"validation step: DOES NOT FIT ({evaluation['error']})")
    if not r["fits"]:
        lines.append(f"verdict: DOES NOT FIT ({r['error']})")
    else:
        lines.append("verdict: fits" + (", tight: the buffers add up to more than the limit" if r["tight"] else ""))
    return "\n".join(lines)


if __name__ == "__main__":  # `python -m pretrain_jax.aot ...`: an alias of `pretrain-jax aot ...`
    from pretrain_jax import cli

    cli.main(["aot", *sys.argv[1:]])
