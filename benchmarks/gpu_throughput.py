"""Training throughput and MFU of our train step on one GPU, in bfloat16 at sequence length 2048.

Run (from the repository root, on a machine with an NVIDIA GPU):

    python benchmarks/gpu_throughput.py [--configs 350m,1b] [--attention cudnn,pallas_gpu,xla] [--steps N] [--warmup W]
                                        [--batch B] [--remat POLICY]

For each config (benchmarks/shapes.py) and attention kernel (model.attention_impl), the
step is pretrain_jax.train's, compiled as training compiles it (shapes.compiled_train_step):
forward, causal-LM loss, backward, global-norm clipping, AdamW; parameters and Adam
moments float32, activations and matmuls bfloat16 (model.dtype), layers scanned. After W
warm-up steps it times N steps, each to completion, and reports the median. MFU is
tokens/s x metrics.training_flops_per_token (6N without the embedding table, plus
12·L·H·Q·T) over two peaks: the chip's dense bfloat16 rate from its datasheet, where
the chip is known, and a bfloat16 matmul (8192³, random values) measured in the same run.
Memory is XLA's compiled memory analysis of the step (arguments + temporaries) and the
allocator's peak bytes in use. Every variant runs in a fresh process of its own (the
matmul too), so each starts with the whole GPU; a variant that fails (out of memory, a
kernel the chip lacks) becomes a row with its error and the others still run. The table
is printed and replaces the section "## GPU training throughput" in BENCHMARKS.md.

Where Python has JAX with CUDA, flax, optax, orbax-checkpoint and tensorboard but not the
project's other dependencies (the GPU machines lent to development sessions), bring the
wheels of ml-collections, grain, array-record and portpicker for that Python (4.5 MB):

    pip download --no-deps --only-binary=:all: --python-version 3.12 --platform manylinux_2_28_x86_64 \\
        -d wheels ml-collections==1.1.0 grain==0.2.18 array-record==0.8.6 portpicker
    pip install --no-deps --target deps wheels/*.whl && PYTHONPATH=deps python benchmarks/gpu_throughput.py

On CPU (no GPU) it runs too, for a check that it works: `--configs tiny --attention xla`.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
import traceback

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)  # configs/ is not an installed package
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import jax  # noqa: E402

from report import busy_cpu_s, header, load_note, versions, write_section  # noqa: E402
from shapes import CONFIGS, bench_config, compiled_train_step, in_fresh_process  # noqa: E402
from pretrain_jax import config as config_lib, metrics, model  # noqa: E402

SECTION = "## GPU training throughput"
ATTENTION = ("cudnn", "pallas_gpu", "xla", "dot_product_attention")
PACKAGES = ("jax", "jaxlib", "jax-cuda12-plugin", "jax-cuda13-plugin", "flax", "optax")
# Dense bfloat16 FLOP/s from NVIDIA's datasheets, by a substring of jax's device_kind (first match wins).
DATASHEET_BF16 = (("H100 PCIe", 756e12), ("H100 NVL", 835e12), ("H100", 989e12), ("H200", 989e12),
                  ("A100", 312e12))


def datasheet_peak(device_kind: str) -> float | None:
    return next((peak for kind, peak in DATASHEET_BF16 if kind in device_kind), None)


def matmul_peak(dtype: str) -> dict:
    """{'device_kind', 'platform', 'flops'}: a square matmul in `dtype` on the first device."""
    device = jax.devices()[0]
    size = 8192 if device.platform == "gpu" else 1024
    return {"device_kind": device.device_kind, "platform": device.platform,
            "flops": metrics.measure_peak_flops(device, size=size, repeats=20, dtype=dtype)}


def run_variant(name: str, attention: str, batch: int, dtype: str, remat: str, steps: int, warmup: int) -> dict:
    """One variant in this process: {'times', 'compile_s', 'losses', 'step_gb', 'peak_gb', ...} or {'error'}."""
    config = bench_config(name)
    config.global_batch_size = batch or config.global_batch_size
    config.model.update(dtype=dtype, attention_impl=attention, remat=remat)
    try:
        config_lib.validate(config, 1, jax.devices()[0].platform)
        start = time.perf_counter()
        step, state, batch_arrays = compiled_train_step(config)
        analysis = step.memory_analysis()
        losses = []
        for _ in range(warmup):
            state, step_metrics = step(state, batch_arrays)
            losses.append(float(step_metrics["loss"]))
        compile_s = time.perf_counter() - start
        times = []
        for _ in range(steps):
            start = time.perf_counter()
            state, step_metrics = step(state, batch_arrays)
            losses.append(float(step_metrics["loss"]))  # waits for the step
            times.append(time.perf_counter() - start)
    except Exception as e:  # noqa: BLE001 - reported as the variant's row
        traceback.print_exc()
        first_line = (str(e).splitlines() or [""])[0]
        return {"error": f"{type(e).__name__}: {first_line[:200]}".replace("|", "/")}  # one table cell
    stats = jax.devices()[0].memory_stats() or {}
    return {"times": times, "compile_s": compile_s, "losses": losses,
            "tokens": config.global_batch_size * config.seq_len, "batch": config.global_batch_size,
            "seq_len": config.seq_len,
            "flops_per_token": metrics.training_flops_per_token(config.model, config.seq_len),
            "step_gb": (analysis.argument_size_in_bytes + analysis.temp_size_in_bytes) / 1e9 if analysis else None,
            "peak_gb": stats["peak_bytes_in_use"] / 1e9 if "peak_bytes_in_use" in stats else None}


def _gb(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def table(results: dict[tuple[str, str], dict], measured_peak: float, sheet_peak: float | None) -> str:
    lines = ["| config | params | attention | batch x seq | step s (median) | tokens/s | MFU (datasheet) "
             "| MFU (measured matmul) | warm-up s | step memory GB | peak GB in use | loss first -> last |",
             "|---|---:|---|---|---:|---:|---:|---:|---:|---:|---:|---|"]
    for (name, attention), r in results.items():
        params = f"{model.param_count(bench_config(name).model)['total'] / 1e6:,.0f}M"
        if "error" in r:
            lines.append(f"| {name} | {params} | {attention} | | failed: {r['error']} | | | | | | | |")
            continue
        step_s = statistics.median(r["times"])
        flops = r["tokens"] * r["flops_per_token"] / step_s
        sheet = f"{100 * flops / sheet_peak:.1f}%" if sheet_peak else "-"
        lines.append(f"| {name} | {params} | {attention} | {r['batch']} x {r['seq_len']} | {step_s:.4f} "
                     f"| {r['tokens'] / step_s:,.0f} | {sheet} | {100 * flops / measured_peak:.1f}% "
                     f"| {r['compile_s']:.1f} | {_gb(r['step_gb'])} | {_gb(r['peak_gb'])} "
                     f"| {r['losses'][0]:.3f} -> {r['losses'][-1]:.3f} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--configs", default="350m,1b", help=f"comma-separated, from {sorted(CONFIGS)}")
    parser.add_argument("--attention", default="cudnn,pallas_gpu,xla", help=f"comma-separated, from {ATTENTION}")
    parser.add_argument("--steps", type=int, default=20, help="timed steps per variant (median reported)")
    parser.add_argument("--warmup", type=int, default=3, help="untimed steps per variant first (>= 1)")
    parser.add_argument("--batch", type=int, default=0, help="rows per step for every config (0: the config's)")
    parser.add_argument("--dtype", default="bfloat16", help="model.dtype, the compute dtype")
    parser.add_argument("--remat", default="none", help="model.remat: none, full, dots_no_batch, minimal")
    parser.add_argument("--no_write", action="store_true", help="print only; leave BENCHMARKS.md as it is")
    args = parser.parse_args()
    names, kernels = args.configs.split(","), args.attention.split(",")
    unknown = [n for n in names if n not in CONFIGS] + [a for a in kernels if a not in ATTENTION]
    if unknown or min(args.steps, args.warmup) < 1:
        parser.error(f"unknown config or attention kernel {unknown}, or --steps/--warmup below 1")

    start, busy_before = time.perf_counter(), busy_cpu_s()
    # This process never touches a device, so every variant's process has the whole GPU to itself.
    peak = in_fresh_process(matmul_peak, args.dtype)
    if "error" in peak:
        sys.exit(f"the matmul peak could not be measured: {peak['error']}")
    sheet_peak = datasheet_peak(peak["device_kind"]) if peak["platform"] == "gpu" else None
    print(f"{peak['device_kind']}: {args.dtype} matmul {peak['flops'] / 1e12:.1f} TFLOP/s measured"
          + (f", {sheet_peak / 1e12:.0f} datasheet" if sheet_peak else ""), flush=True)
    results = {}
    for name in names:
        for attention in kernels:
            r = results[(name, attention)] = in_fresh_process(
                run_variant, name, attention, args.batch, args.dtype, args.remat, args.steps, args.warmup)
            print(f"  {name} {attention}: " + (r["error"] if "error" in r else
                  f"median step {statistics.median(r['times']):.4f} s, warm-up {r['compile_s']:.1f} s"), flush=True)
    text_table = table(results, peak["flops"], sheet_peak)
    print(text_table)

    command = (f"python benchmarks/gpu_throughput.py --configs {args.configs} --attention {args.attention} "
               f"--steps {args.steps} --warmup {args.warmup}" + (f" --batch {args.batch}" if args.batch else "")
               + (f" --dtype {args.dtype}" if args.dtype != "bfloat16" else "")
               + (f" --remat {args.remat}" if args.remat != "none" else ""))
    text = "\n".join([
        *header(SECTION, command, f"Device: {peak['device_kind']} ({peak['platform']}). {versions(PACKAGES)}. "
                f"XLA_FLAGS: `{os.environ.get('XLA_FLAGS', '')}`.", start),
        text_table, "",
        f"- Peaks: {args.dtype} matmul measured in this run {peak['flops'] / 1e12:.1f} TFLOP/s; datasheet dense "
        + (f"bfloat16 {sheet_peak / 1e12:.0f} TFLOP/s." if sheet_peak else "rate: none known for this device."),
        f"- Median of {args.steps} timed steps after {args.warmup} warm-up steps (warm-up s includes compilation); "
        f"each variant in a fresh process. Parameters and Adam moments float32, compute {args.dtype}, "
        f"layers scanned, remat {args.remat}; random tokens, one document per row.",
        "- MFU counts 6N (N without the embedding table, output head included) + 12·L·H·Q·T FLOPs per token "
        "(metrics.training_flops_per_token).",
        "- Attention: cudnn is cuDNN's flash attention through jax.nn.dot_product_attention (documents kept "
        "apart by a [length, length] mask passed as a bias); pallas_gpu is JAX's Pallas (Triton) flash attention "
        "with the segment ids in the kernel; xla is our einsum kernel in causal blocks of 128 query rows.",
        f"- {load_note(busy_before, time.perf_counter() - start)}",
    ]) + "\n"
    if not args.no_write:
        write_section(text, SECTION)


if __name__ == "__main__":
    main()
