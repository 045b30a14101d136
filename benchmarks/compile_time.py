"""Compile time of the training step against depth, layers scanned (nn.scan) and unrolled, on CPU.

Run (from the repository root):

    python benchmarks/compile_time.py [--depths 2,4,8,16,32] [--variants scan,unrolled] [--meshes 1,fsdp8]
                                      [--repeats R]

Each measurement builds the train step exactly as pretrain_jax.train runs it
(train_step.jit_train_step: forward, causal-LM loss, backward, global-norm clipping,
AdamW, the non-finite guard; explicit shardings, state donated) for the 25M shape
(width 384, 6 heads, 2 kv heads, MLP 1024, vocabulary 8000, 8 x 512 tokens) at one
depth, on abstract state and batch (nothing is allocated), and times its three
stages separately: trace (Python and Flax build the jaxpr), lower (jaxpr to
StableHLO) and compile (XLA: sharding propagation, optimization, CPU code). JAX's
in-memory caches are cleared before each measurement and the persistent
compilation cache is off, so every stage runs from scratch. Meshes: one CPU device,
and 8 fake CPU devices as fsdp 8 (--xla_force_host_platform_device_count=8), where
sharding propagation and collectives are part of the cost as on a pod. With
--repeats R the whole grid runs R times in turns (so load from other processes hits
every cell alike) and each cell reports its median. The table is printed and
replaces the section "## Compile time against depth" in BENCHMARKS.md (not with
--no_write). An untimed compile of a 1-layer step first takes the one-time start-up
costs (backend, LLVM) out of the first cell.
"""

from __future__ import annotations

import os

# Before JAX initializes: 8 fake CPU devices for the fsdp8 mesh, CPU even where an accelerator is installed.
os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=8").strip()
os.environ.setdefault("JAX_PLATFORMS", "cpu")

import argparse  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)  # configs/ is not an installed package
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import jax  # noqa: E402
import ml_collections  # noqa: E402

from report import busy_cpu_s, cpu_model, header, load_note, versions, write_section  # noqa: E402
import shapes  # noqa: E402
from pretrain_jax import aot, config as config_lib, train_state, train_step  # noqa: E402

SECTION = "## Compile time against depth"
SHAPE = "25m"  # of benchmarks/shapes.py; the depth varies
VARIANTS = {"scan": True, "unrolled": False}  # name -> model.scan_layers
MESHES = {"1": (1, 1), "fsdp8": (8, 8)}  # name -> (devices, mesh.fsdp); mesh.data takes the rest (1)
STAGES = ("trace", "lower", "compile")
TARGET_RATIO = 1.5  # the target: 32 scanned layers compile in at most 1.5x the time of 2
PACKAGES = ("jax", "jaxlib", "flax", "optax")


def bench_config(depth: int, scan_layers: bool, fsdp: int) -> ml_collections.ConfigDict:
    config = shapes.bench_config(SHAPE)
    config.model.update(num_layers=depth, scan_layers=scan_layers)
    config.mesh.fsdp = fsdp
    return config


def hlo_instructions(hlo_text: str) -> int:
    """Instructions in an HLO module's text (loop and fusion bodies counted once)."""
    return sum(" = " in line for line in hlo_text.splitlines())


def measure(config: ml_collections.ConfigDict, devices: list[jax.Device]) -> dict[str, float]:
    """Seconds to trace, lower and compile the train step from cold caches, and the compiled size."""
    config_lib.validate(config, len(devices))
    setup = train_state.setup(config, devices)
    state, mesh = setup.abstract, setup.mesh
    batch = aot.abstract_batch(config, mesh)
    step = train_step.jit_train_step(config, setup)
    jax.clear_caches()
    with jax.set_mesh(mesh):  # as the training loop calls it
        start, cpu_start = time.perf_counter(), time.process_time()
        traced = step.trace(state, batch)
        traced_at = time.perf_counter()
        lowered = traced.lower()
        lowered_at = time.perf_counter()
        compiled = lowered.compile()
        compiled_at, cpu_end = time.perf_counter(), time.process_time()
    return {"trace": traced_at - start, "lower": lowered_at - traced_at, "compile": compiled_at - lowered_at,
            "cpu": cpu_end - cpu_start, "hlo": hlo_instructions(compiled.as_text())}


def run_grid(depths: list[int], variants: list[str], meshes: list[str], repeats: int) -> dict[tuple, dict]:
    """{(mesh, variant, depth): median of each stage over the repeats}; the grid runs `repeats` times in turns."""
    cells = [(m, v, d) for m in meshes for v in variants for d in depths]
    devices, fsdp = MESHES[meshes[0]]
    measure(bench_config(1, VARIANTS[variants[0]], fsdp), jax.devices()[:devices])  # one-time start-up costs
    samples: dict[tuple, list[dict[str, float]]] = {cell: [] for cell in cells}
    for round_ in range(repeats):
        for i, (mesh_name, variant, depth) in enumerate(cells):
            devices, fsdp = MESHES[mesh_name]
            result = measure(bench_config(depth, VARIANTS[variant], fsdp), jax.devices()[:devices])
            samples[(mesh_name, variant, depth)].append(result)
            print(f"  round {round_ + 1}/{repeats}, {i + 1}/{len(cells)}: mesh {mesh_name}, {variant}, "
                  f"{depth} layers: " + ", ".join(f"{s} {result[s]:.2f} s" for s in STAGES)
                  + f", CPU {result['cpu']:.1f} s, {result['hlo']:,} HLO instructions", flush=True)
    return {cell: {k: statistics.median(r[k] for r in runs) for k in runs[0]} for cell, runs in samples.items()}


def total(result: dict[str, float]) -> float:
    return sum(result[s] for s in STAGES)


def table(results: dict[tuple, dict]) -> str:
    lines = ["| mesh | layers | depth | trace s | lower s | compile s | total s | total vs shallowest "
             "| CPU s (all threads) | CPU vs shallowest | HLO instructions (compiled) |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for (mesh_name, variant, depth), r in results.items():
        ref = results[(mesh_name, variant, min(d for m, v, d in results if (m, v) == (mesh_name, variant)))]
        lines.append(f"| {mesh_name} | {variant} | {depth} | {r['trace']:.2f} | {r['lower']:.2f} | "
                     f"{r['compile']:.2f} | {total(r):.2f} | {total(r) / total(ref):.2f}x | "
                     f"{r['cpu']:.1f} | {r['cpu'] / ref['cpu']:.2f}x | {r['hlo']:,.0f} |")
    return "\n".join(lines)


def target_lines(results: dict[tuple, dict]) -> list[str]:
    """The issue's target, per mesh: scanned depth 32 over scanned depth 2, total seconds."""
    lines = []
    for mesh_name in dict.fromkeys(m for m, _, _ in results):
        deep, shallow = results.get((mesh_name, "scan", 32)), results.get((mesh_name, "scan", 2))
        if deep and shallow:
            ratio = total(deep) / total(shallow)
            verdict = "met" if ratio <= TARGET_RATIO else "NOT met"
            lines.append(f"- Target (mesh {mesh_name}): 32 scanned layers compile in {ratio:.2f}x the time of 2 "
                         f"(trace + lower + compile {total(deep):.1f} s vs {total(shallow):.1f} s; CPU time "
                         f"{deep['cpu'] / shallow['cpu']:.2f}x; target <= {TARGET_RATIO}x): {verdict}.")
    return lines


def _int_list(text: str) -> list[int]:
    return [int(x) for x in text.split(",")]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--depths", default="2,4,8,16,32", help="comma-separated layer counts; the first is the "
                        "reference of the ratios")
    parser.add_argument("--variants", default=",".join(VARIANTS), help=f"comma-separated, from {list(VARIANTS)}")
    parser.add_argument("--meshes", default=",".join(MESHES), help=f"comma-separated, from {list(MESHES)}")
    parser.add_argument("--repeats", type=int, default=1, help="runs of the whole grid (median reported)")
    parser.add_argument("--no_write", action="store_true", help="print only; leave BENCHMARKS.md as it is")
    args = parser.parse_args()
    try:
        depths = _int_list(args.depths)
    except ValueError:
        parser.error(f"--depths must be comma-separated integers, got {args.depths!r}")
    variants, meshes = args.variants.split(","), args.meshes.split(",")
    unknown = [v for v in variants if v not in VARIANTS] + [m for m in meshes if m not in MESHES]
    if unknown or args.repeats < 1 or min(depths) < 1:
        parser.error(f"unknown variant or mesh {unknown}, or --repeats / a depth below 1")
    if jax.device_count() < max(MESHES[m][0] for m in meshes):
        parser.error(f"{jax.device_count()} devices; XLA_FLAGS must not override the device count")
    jax.config.update("jax_enable_compilation_cache", False)  # every compile from scratch

    start, busy_before = time.perf_counter(), busy_cpu_s()
    results = run_grid(sorted(depths), variants, meshes, args.repeats)
    text_table = table(results)
    targets = target_lines(results)
    print(text_table, *targets, sep="\n")

    command = (f"python benchmarks/compile_time.py --depths {args.depths} --variants {args.variants} "
               f"--meshes {args.meshes} --repeats {args.repeats}")
    cores = len(os.sched_getaffinity(0))
    overrides, seq_len, batch = shapes.CONFIGS[SHAPE]
    shape = {k: v for k, v in overrides.items() if k != "num_layers"}
    text = "\n".join([
        *header(SECTION, command, f"Machine: {cpu_model()}, {cores} cores. {versions(PACKAGES)}.", start),
        text_table, "",
        *targets,
        f"- The train step of pretrain_jax.train (train_step.jit_train_step) for the 25M shape ({shape}, "
        f"{batch} x {seq_len} tokens) at each depth, on abstract state; trace, lower and compile timed "
        "separately from cold caches (jax.clear_caches(), persistent cache off). Median of "
        f"{args.repeats} run(s) of the grid, cells in turns.",
        "- CPU s: process CPU time over trace + lower + compile, all threads (XLA compiles kernels in "
        "parallel); less sensitive than wall time to other processes on a shared machine.",
        "- HLO instructions: lines of the compiled module's text; a loop body (the scanned layer) counts once.",
        f"- {load_note(busy_before, time.perf_counter() - start)}",
    ]) + "\n"
    if args.no_write:
        return
    write_section(text, SECTION)


if __name__ == "__main__":
    main()
