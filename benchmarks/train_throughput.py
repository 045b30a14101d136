"""Training throughput (tokens/s, MFU) of our JAX train step beside the same Llama in PyTorch, on CPU.

Run (from the repository root):

    python benchmarks/train_throughput.py [--configs 25m,125m,tiny] [--steps N] [--warmup W] [--rounds R]
                                          [--pieces] [--profile]

For each config the JAX step (pretrain_jax.train_step.jit_train_step: forward, causal-LM
loss, backward, global-norm clipping, AdamW; layers scanned, and unrolled as a
second JAX row) and transformers' LlamaForCausalLM with the same shape, batch,
sequence length and AdamW (b1 0.9, b2 0.95, weight decay 0.1, clipping at 1.0),
eager and under torch.compile, run on random token batches (throughput does not
depend on the text), float32, with torch.set_num_threads at the core count. Each
variant runs in a fresh process of its own, one after another, as a training
process would: its own thread pools and heap, on jemalloc as launch/local.sh runs
training (pretrain_jax/host_memory.py; --malloc system for glibc's malloc). After W
warm-up steps (compilation), a variant times N steps. With R rounds, every variant runs
in turn R times (a fresh process each time), so a machine whose speed drifts during the
run (a shared 2-core VM) slows every variant alike; a row reports the median of its
R x N timed steps, and the warm-up of its first round. MFU is tokens/s x
metrics.training_flops_per_token (6N without the embedding table, plus
12·L·H·Q·T for attention) over the machine's float32 matmul peak, measured in the
same run with JAX, PyTorch and NumPy (the highest of the three is the denominator).
The table is printed and replaces the section "## Training throughput" in BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import glob
import os
import re
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)  # configs/ is not an installed package
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import flax.linen as nn  # noqa: E402
import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import ml_collections  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
import transformers  # noqa: E402

from report import busy_cpu_s, cpu_model, header, load_note, versions, write_section  # noqa: E402
from shapes import CONFIGS, bench_config, compiled_train_step, in_fresh_process, random_tokens  # noqa: E402
from pretrain_jax import (attention, host_memory, hf, layers, metrics, model, objectives, optimizer,  # noqa: E402
                          sharding)

SECTION = "## Training throughput"
VARIANTS = ("jax scan", "jax unrolled", "torch eager", "torch.compile")
PACKAGES = ("jax", "jaxlib", "flax", "optax", "torch", "transformers", "numpy")
Step = Callable[[], float]  # runs one training step to completion, returns its loss


def jax_step(config: ml_collections.ConfigDict, scan_layers: bool) -> Step:
    """Our train step exactly as pretrain_jax.train runs it, on one CPU device, state donated.

    The step's compiled XLA module is `step.compiled` (its HLO names the ops a profile shows).
    """
    config = ml_collections.ConfigDict(config.to_dict())
    config.model.scan_layers = scan_layers
    step_fn, state, batch = compiled_train_step(config)

    def step() -> float:
        nonlocal state
        state, step_metrics = step_fn(state, batch)
        return float(step_metrics["loss"])

    step.compiled = step_fn
    return step


def torch_step(config: ml_collections.ConfigDict, compiled: bool) -> Step:
    """transformers' LlamaForCausalLM (sdpa attention) with torch AdamW; torch.compile wraps the model."""
    torch.manual_seed(config.seed)
    llama = transformers.LlamaForCausalLM(transformers.LlamaConfig(**hf.hf_config(config.model, config.seq_len)))
    llama.train()
    opt_cfg = config.optimizer
    adamw = torch.optim.AdamW(llama.parameters(), lr=opt_cfg.peak_learning_rate, betas=(opt_cfg.b1, opt_cfg.b2),
                              eps=opt_cfg.eps, weight_decay=opt_cfg.weight_decay)
    forward = torch.compile(llama) if compiled else llama
    tokens = torch.from_numpy(random_tokens(config)).long()

    def step() -> float:
        adamw.zero_grad(set_to_none=True)
        loss = forward(input_ids=tokens, labels=tokens).loss
        loss.backward()
        with torch.profiler.record_function(OPTIMIZER):  # a region only while --profile traces
            torch.nn.utils.clip_grad_norm_(llama.parameters(), opt_cfg.grad_clip_norm)
            adamw.step()
        return loss.detach().item()

    return step


def matmul_peaks(size: int = 2048, repeats: int = 10) -> dict[str, float]:
    """float32 FLOP/s of a square matmul in JAX, PyTorch and NumPy on this machine."""
    def timed(matmul: Callable[[], object]) -> float:
        matmul()
        start = time.perf_counter()
        for _ in range(repeats):
            matmul()
        return 2 * size**3 * repeats / (time.perf_counter() - start)

    a = np.random.default_rng(0).standard_normal((size, size), dtype=np.float32)
    ta = torch.from_numpy(a)
    return {"jax": metrics.measure_peak_flops(jax.devices()[0], size, repeats),
            "torch": timed(lambda: ta @ ta), "numpy": timed(lambda: a @ a)}


def _wall_times(run: Callable[[], object], repeats: int) -> list[float]:
    """Wall seconds of each of `repeats` calls of `run()`."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return times


def _median_s(run: Callable[[], object], warmup: int = 1, repeats: int = 3) -> float:
    """Median wall seconds of `run()`, after `warmup` untimed calls (they compile it)."""
    for _ in range(warmup):
        run()
    return statistics.median(_wall_times(run, repeats))


def _jit_median_s(fn: Callable, *args) -> float:
    """Median wall seconds of `fn(*args)` jitted, to completion."""
    jitted = jax.jit(fn)
    return _median_s(lambda: jax.block_until_ready(jitted(*args)))


def torch_pieces(name: str, compiled: bool) -> dict[str, float]:
    """The same pieces as jax_pieces in PyTorch (sdpa, Llama's MLP, head + cross-entropy), where one exists."""
    config = bench_config(name)
    m, (batch, length) = config.model, (config.global_batch_size, config.seq_len)
    gen = torch.Generator().manual_seed(0)
    rand = lambda *shape: (torch.randn(*shape, generator=gen) * m.init_std).requires_grad_()  # noqa: E731
    hd = model.head_dim(m)
    x = rand(batch, length, m.dim)
    q, k = rand(batch, m.num_heads, length, hd), rand(batch, m.num_kv_heads, length, hd)
    gate, up, down = rand(m.dim, m.mlp_dim), rand(m.dim, m.mlp_dim), rand(m.mlp_dim, m.dim)
    head = rand(m.dim, m.vocab_size)
    targets = torch.from_numpy(random_tokens(config)).long().view(-1)
    wrap = torch.compile if compiled else (lambda f: f)

    def backward(forward: Callable[[], torch.Tensor]) -> Callable[[], None]:
        return lambda: forward().sum().backward()

    core = wrap(backward(lambda: torch.nn.functional.scaled_dot_product_attention(
        q, k, k, is_causal=m.causal, enable_gqa=True)))
    mlp = wrap(backward(lambda: (torch.nn.functional.silu(x @ gate) * (x @ up)) @ down))
    head_loss = wrap(backward(lambda: torch.nn.functional.cross_entropy((x @ head).view(-1, m.vocab_size), targets)))
    return {
        f"attention core (scores, mask, softmax, values) x {m.num_layers}": _median_s(core, warmup=2) * m.num_layers,
        f"SwiGLU MLP x {m.num_layers}": _median_s(mlp, warmup=2) * m.num_layers,
        "output head matmul + cross-entropy over the vocabulary": _median_s(head_loss, warmup=2),
    }


def jax_pieces(name: str) -> dict[str, float]:
    """Seconds per step spent in each piece of the JAX step, each timed alone (forward + backward).

    Per-layer pieces are timed on one layer and multiplied by the depth, so the sum can
    be held against the whole step's time.
    """
    config = bench_config(name)
    m, (batch, length) = config.model, (config.global_batch_size, config.seq_len)
    keys = iter(jax.random.split(jax.random.key(0), 10))
    x = jax.random.normal(next(keys), (batch, length, m.dim))
    tokens = jnp.asarray(random_tokens(config))
    segment_ids = jnp.ones_like(tokens)
    positions = jnp.broadcast_to(jnp.arange(length, dtype=jnp.int32), tokens.shape)
    q = jax.random.normal(next(keys), (batch, length, m.num_heads, model.head_dim(m)))
    kv = jax.random.normal(next(keys), (batch, length, m.num_kv_heads, model.head_dim(m)))

    def module_grad(module: nn.Module, *extra) -> float:
        params = nn.unbox(module.init(next(keys), x, *extra))["params"]
        return _jit_median_s(jax.grad(lambda p, x: jnp.sum(module.apply({"params": p}, x, *extra) ** 2), (0, 1)),
                         params, x)

    f32, hd = jnp.float32, model.head_dim(m)
    attn = attention.Attention(m.num_heads, m.num_kv_heads, hd, m.causal, m.attention_impl,
                               m.init_std, m.init_std, f32, f32)
    core_fn = attention.ATTENTION_IMPLS[m.attention_impl]
    core = _jit_median_s(jax.grad(lambda q, k: jnp.sum(core_fn(q, k, k, segment_ids, positions, m.causal)), (0, 1)),
                         q, kv)
    with sharding.activation_rules():
        attention_s = module_grad(attn, segment_ids, positions,
                                  layers.rotary_angles(positions, hd, m.rope_theta, length))
        mlp_s = module_grad(layers.SwiGLU(m.mlp_dim, m.init_std, m.init_std, f32, f32))
    norm_s = module_grad(layers.RMSNorm(m.norm_eps, f32, f32))
    head = jax.random.normal(next(keys), (m.dim, m.vocab_size)) * m.init_std
    targets, weights = objectives.causal_lm_targets(tokens, segment_ids)
    head_loss = lambda x, h: objectives.cross_entropy_sum(layers.dense(x, h), targets, weights)  # noqa: E731
    table_ = jax.random.normal(next(keys), (m.vocab_size, m.dim))
    params = nn.unbox(model.init_params(m, next(keys)))
    tx = optimizer.make_optimizer(config.optimizer, config.num_train_steps)
    return {
        f"attention core (scores, mask, softmax, values) x {m.num_layers}": core * m.num_layers,
        f"attention rest (q/k/v/o projections, rotary) x {m.num_layers}": (attention_s - core) * m.num_layers,
        f"SwiGLU MLP x {m.num_layers}": mlp_s * m.num_layers,
        f"RMSNorm x {2 * m.num_layers + 1}": norm_s * (2 * m.num_layers + 1),
        "output head matmul + cross-entropy over the vocabulary": _jit_median_s(jax.grad(head_loss, (0, 1)), x, head),
        "embedding lookup (backward: scatter-add)": _jit_median_s(
            jax.grad(lambda e, x: jnp.sum(jnp.take(e, tokens, axis=0) * x)), table_, x),
        "global-norm clip + AdamW update": _jit_median_s(tx.update, params, tx.init(params), params),
    }


# Where a profiled step's time goes. JAX ops are told apart by the scopes in their HLO op_name
# (jax.named_scope in attention.py, objectives.py, train.py); PyTorch ops by name and by the
# profiler region the benchmark opens around clipping + AdamW.
OPTIMIZER, ATTENTION, CROSS_ENTROPY, MATMUL, OTHER = (
    "optimizer update (clip + AdamW)", "attention core", "cross-entropy (log-softmax over the vocabulary)",
    "matmuls (projections, MLP, head)", "everything else (norms, activations, rotary, copies, adds)")
CATEGORIES = (MATMUL, ATTENTION, CROSS_ENTROPY, OPTIMIZER, OTHER)
TORCH_MATMULS = {"aten::mm", "aten::addmm", "aten::bmm", "aten::baddbmm"}


def _jax_category(op_name: str) -> str:
    for scope, category in (("optimizer", OPTIMIZER), ("attention_core", ATTENTION),
                            ("cross_entropy", CROSS_ENTROPY), ("dot_general", MATMUL)):
        if scope in op_name:
            return category
    return OTHER


def _shares(seconds: dict[str, float], wall_s: float) -> dict[str, float]:
    """Per-category busy seconds rescaled to sum to the step's wall time (ops may overlap in time)."""
    total = sum(seconds.values()) or 1.0
    return {c: wall_s * seconds.get(c, 0.0) / total for c in CATEGORIES} | {"step": wall_s}


def jax_profile(step: Step) -> dict[str, float]:
    """One JAX step traced by jax.profiler: the XLA CPU runtime's per-op (thunk) times, by category."""
    op_names = dict(re.findall(r'%([\w.\-]+) = [^\n]*?metadata=\{op_name="([^"]*)"', step.compiled.as_text()))
    with tempfile.TemporaryDirectory() as trace_dir:
        jax.profiler.start_trace(trace_dir)
        start = time.perf_counter()
        step()
        wall_s = time.perf_counter() - start
        jax.profiler.stop_trace()
        [trace] = glob.glob(os.path.join(trace_dir, "**", "*.xplane.pb"), recursive=True)
        profile = jax.profiler.ProfileData.from_file(trace)
    seconds: dict[str, float] = {}
    for plane in profile.planes:
        for line in plane.lines:
            if not line.name.startswith("tf_XLAEigen"):  # XLA's worker threads run the ops
                continue
            for event in line.events:
                if event.name.startswith(("ThunkExecutor", "SlinkyThreadPool")):  # waits, not ops
                    continue
                category = _jax_category(op_names.get(event.name, ""))
                seconds[category] = seconds.get(category, 0.0) + event.duration_ns / 1e9
    return _shares(seconds, wall_s)


def torch_profile(step: Step) -> dict[str, float]:
    """One PyTorch step traced by torch.profiler: each op's self time, by category."""
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
        start = time.perf_counter()
        step()
        wall_s = time.perf_counter() - start
    seconds: dict[str, float] = {}
    for event in prof.events():
        names, parent = [event.name], event.cpu_parent
        while parent is not None:
            names.append(parent.name)
            parent = parent.cpu_parent
        if OPTIMIZER in names:
            category = OPTIMIZER
        elif any("scaled_dot_product" in n for n in names):
            category = ATTENTION
        elif event.name in TORCH_MATMULS:
            category = MATMUL
        elif any("cross_entropy" in n or "log_softmax" in n for n in names):
            category = CROSS_ENTROPY
        else:
            category = OTHER
        seconds[category] = seconds.get(category, 0.0) + event.self_cpu_time_total / 1e6
    return _shares(seconds, wall_s)


def profile_table(results: dict[str, dict[str, dict]]) -> str:
    profiles = {name: {v: r["profile"] for v, r in by_variant.items()} for name, by_variant in results.items()}
    variants = list(next(iter(profiles.values())))
    lines = ["| config | where the step's time goes | " + " | ".join(f"{v} s" for v in variants) + " |",
             "|---|---|" + "---:|" * len(variants)]
    for name, by_variant in profiles.items():
        for category in (*CATEGORIES, "step"):
            label = "whole profiled step" if category == "step" else category
            lines.append(f"| {name} | {label} | " + " | ".join(
                f"{by_variant[v][category]:.3f}" for v in variants) + " |")
    return "\n".join(lines)


def _builders(config: ml_collections.ConfigDict) -> dict[str, Callable[[], Step]]:
    return {"jax scan": lambda: jax_step(config, True), "jax unrolled": lambda: jax_step(config, False),
            "torch eager": lambda: torch_step(config, False), "torch.compile": lambda: torch_step(config, True)}


def run_variant(name: str, variant: str, steps: int, warmup: int, profile: bool) -> dict:
    """{'times', 'compile_s', 'first_loss'[, 'profile']} of one variant, run in this process; with
    `profile`, one more step is traced ({category: seconds})."""
    torch.set_num_threads(len(os.sched_getaffinity(0)))
    start = time.perf_counter()
    run = _builders(bench_config(name))[variant]()
    first_loss = run()
    for _ in range(warmup - 1):
        run()
    result = {"compile_s": time.perf_counter() - start, "first_loss": first_loss}
    print(f"  {name} {variant}: warm-up {result['compile_s']:.1f} s, first loss {first_loss:.3f}", flush=True)
    result["times"] = _wall_times(run, steps)
    print(f"  {name} {variant}: steps " + ", ".join(f"{t:.2f}" for t in result["times"]) + " s", flush=True)
    if profile:
        result["profile"] = (jax_profile if variant.startswith("jax") else torch_profile)(run)
        print(f"  {name} {variant}: profiled step {result['profile']['step']:.2f} s", flush=True)
    return result


def measure(name: str, variants: tuple[str, ...], steps: int, warmup: int, rounds: int = 1,
            profile: bool = False) -> dict[str, dict[str, float]]:
    """{variant: {'step_s': median of every round's steps, 'compile_s' and 'first_loss' of the first
    round[, 'profile' of the last]}}.

    Each variant in a fresh process, one after another, `rounds` times over.
    """
    runs: dict[str, list[dict]] = {variant: [] for variant in variants}
    for round_ in range(rounds):
        for variant in variants:
            result = in_fresh_process(run_variant, name, variant, steps, warmup, profile and round_ == rounds - 1)
            if "error" in result:  # every row compares with the others: a missing one ends the run
                sys.exit(f"{name} {variant}, round {round_ + 1}: {result['error']}")
            runs[variant].append(result)
    return {variant: {"step_s": statistics.median(t for r in results for t in r["times"]),
                      "compile_s": results[0]["compile_s"], "first_loss": results[0]["first_loss"],
                      **({"profile": results[-1]["profile"]} if profile else {})}
            for variant, results in runs.items()}


def table(results: dict[str, dict[str, dict[str, float]]], peak: float) -> str:
    lines = ["| config | params (non-emb.) | tokens/step | variant | step s (median) | tokens/s | MFU "
             "| vs torch eager | vs torch.compile | warm-up s |",
             "|---|---:|---:|---|---:|---:|---:|---:|---:|---:|"]
    for name, by_variant in results.items():
        config = bench_config(name)
        tokens = config.global_batch_size * config.seq_len
        flops = metrics.training_flops_per_token(config.model, config.seq_len)
        non_emb = model.param_count(config.model)["non_embedding"]
        for variant, r in by_variant.items():
            rel = [f"{by_variant[ref]['step_s'] / r['step_s']:.2f}x" if ref in by_variant else "-"
                   for ref in ("torch eager", "torch.compile")]
            lines.append(f"| {name} | {non_emb / 1e6:.1f}M | {tokens} | {variant} | {r['step_s']:.3f} | "
                         f"{tokens / r['step_s']:,.0f} | {100 * tokens * flops / r['step_s'] / peak:.1f}% | "
                         f"{rel[0]} | {rel[1]} | {r['compile_s']:.1f} |")
    return "\n".join(lines)


def pieces_table(pieces: dict[str, dict[str, dict[str, float]]], results: dict[str, dict[str, dict[str, float]]]) -> str:
    """pieces: {config: {'jax' | 'torch eager' | 'torch.compile': {piece: seconds per step}}}."""
    lines = ["| config | piece (forward + backward, timed alone) | jax s per step | share of the jax unrolled step "
             "| torch eager s | torch.compile s |", "|---|---|---:|---:|---:|---:|"]
    for name, by_system in pieces.items():
        step_s = results[name].get("jax unrolled", {}).get("step_s", float("nan"))
        rows = [*by_system["jax"].items(), ("sum of the pieces", sum(by_system["jax"].values()))]
        for piece, seconds in rows:
            other = [f"{by_system[t][piece]:.3f}" if piece in by_system[t] else "-" for t in ("torch eager", "torch.compile")]
            lines.append(f"| {name} | {piece} | {seconds:.3f} | {100 * seconds / step_s:.0f}% | {other[0]} | {other[1]} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--configs", default="25m,125m,tiny", help=f"comma-separated, from {sorted(CONFIGS)}")
    parser.add_argument("--variants", default=",".join(VARIANTS), help=f"comma-separated, from {VARIANTS}")
    parser.add_argument("--steps", type=int, default=5, help="timed steps per variant (median reported)")
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps per variant first (>= 1)")
    parser.add_argument("--rounds", type=int, default=1, help="times every variant runs in turn (steps pooled)")
    parser.add_argument("--pieces", action="store_true", help="also time each piece of the JAX step alone")
    parser.add_argument("--profile", action="store_true",
                        help="also trace one step of every variant and split its time by category")
    parser.add_argument("--no_write", action="store_true", help="print only; leave BENCHMARKS.md as it is")
    parser.add_argument("--malloc", choices=("default", "jemalloc", "mimalloc", "system"), default="default",
                        help="the steps' allocator: the one `pretrain-jax train` starts on here (default), one "
                             "of the two it chooses from, or glibc's malloc")
    args = parser.parse_args()
    names, variants = args.configs.split(","), tuple(args.variants.split(","))
    unknown = [n for n in names if n not in CONFIGS] + [v for v in variants if v not in VARIANTS]
    if unknown or min(args.steps, args.warmup, args.rounds) < 1:
        parser.error(f"unknown config or variant {unknown}, or --steps/--warmup/--rounds below 1")
    allocator = {"default": host_memory.find_allocator, "jemalloc": host_memory.jemalloc,
                 "mimalloc": host_memory.mimalloc, "system": lambda: None}[args.malloc]()
    if allocator is None and args.malloc != "system":
        parser.error(f"{args.malloc} is not installed (apt install libjemalloc2, pip install cmeel-mimalloc); "
                     "or pass --malloc system")
    # the variants' processes inherit the environment: no allocator the caller preloaded, then the chosen one's
    preloads = os.environ.get("LD_PRELOAD", "").split(":")
    os.environ["LD_PRELOAD"] = ":".join(p for p in preloads if not any(a in p for a in ("jemalloc", "mimalloc")))
    if allocator is not None:
        os.environ.update(host_memory.allocator_env(os.environ, allocator))

    if args.rounds > 1:  # later rounds load the JAX variants' executables instead of compiling them again
        os.environ["JAX_COMPILATION_CACHE_DIR"] = tempfile.mkdtemp(prefix="train_throughput_jax_cache_")

    cores = len(os.sched_getaffinity(0))
    torch.set_num_threads(cores)
    start, busy_before = time.perf_counter(), busy_cpu_s()
    peaks = matmul_peaks()
    print("matmul peak GFLOP/s: " + ", ".join(f"{k} {v / 1e9:.0f}" for k, v in peaks.items()), flush=True)
    results = {name: measure(name, variants, args.steps, args.warmup, args.rounds, args.profile) for name in names}
    pieces = {name: {"jax": jax_pieces(name), "torch eager": torch_pieces(name, False),
                     "torch.compile": torch_pieces(name, True)} for name in names} if args.pieces else {}
    peaks_after = matmul_peaks()  # the load may have changed during the run
    peak = max(*peaks.values(), *peaks_after.values())
    text_table = "\n\n".join([table(results, peak), *([pieces_table(pieces, results)] if pieces else []),
                               *([profile_table(results)] if args.profile else [])])
    print(text_table)

    command = (f"python benchmarks/train_throughput.py --configs {args.configs} --steps {args.steps} "
               f"--warmup {args.warmup}" + (f" --rounds {args.rounds}" if args.rounds > 1 else "")
               + (" --pieces" if args.pieces else "") + (" --profile" if args.profile else "")
               + (f" --malloc {args.malloc}" if args.malloc != "default" else ""))
    if args.variants != ",".join(VARIANTS):
        command += f" --variants '{args.variants}'"
    peak_line = "; ".join(f"{k} {peaks[k] / 1e9:.0f} before, {peaks_after[k] / 1e9:.0f} after" for k in peaks)
    text = "\n".join([
        *header(SECTION, command, f"Machine: {cpu_model()}, {cores} cores (torch.set_num_threads({cores}); "
                f"XLA CPU default threading). {versions(PACKAGES)}.", start),
        text_table, "",
        f"- float32 matmul peak (2048², GFLOP/s): {peak_line}. MFU uses the highest, {peak / 1e9:.0f} GFLOP/s.",
        f"- Median of {args.steps * args.rounds} timed steps: {args.rounds} round(s), each running every "
        f"variant in turn, {args.steps} steps after {args.warmup} warm-up steps (warm-up s, of the first "
        "round, includes jit / torch.compile time); each variant in a fresh process of its own, one after another, "
        + (f"on {allocator.name} ({', '.join(f'{k}={v}' for k, v in allocator.options.items())}; "
           "pretrain_jax/host_memory.py)" + (", the allocator `pretrain-jax train` starts on here."
                                             if args.malloc == "default" else ".")
           if allocator is not None else "on glibc's malloc."),
        "- MFU counts 6N (N without the embedding table, output head included) + 12·L·H·Q·T FLOPs per token "
        "(metrics.training_flops_per_token).",
        "- Not identical work: the JAX step also masks attention by document (packed rows) and checks for "
        "non-finite updates; torch's sdpa runs plain causal attention and weight decay on every parameter.",
        *(["- Pieces: each part of the JAX step timed alone, forward + backward, in the model's shapes, beside "
           "its PyTorch counterpart where one exists (sdpa with GQA; Llama's MLP; head + cross_entropy); "
           "per-layer parts are timed on one layer and multiplied by the depth. The sum differs from the step "
           "by what they leave out (residual adds, the scan over layers) and by what running alone changes "
           "(caches, noise)."]
          if pieces else []),
        *(["- Profile: one more step of each variant after the timed ones, traced (jax.profiler: the XLA CPU runtime's time per "
           "op on its worker threads; torch.profiler: each op's self time), split by category and scaled so "
           "the categories add up to that step's wall time (XLA runs independent ops side by side on its "
           "threads). Under torch.compile, Inductor's fused kernels (cross-entropy included) count as "
           "everything else."]
          if args.profile else []),
        f"- {load_note(busy_before, time.perf_counter() - start)}",
    ]) + "\n"
    if not args.no_write:
        write_section(text, SECTION)
    if args.rounds > 1:
        shutil.rmtree(os.environ["JAX_COMPILATION_CACHE_DIR"])


if __name__ == "__main__":
    main()
