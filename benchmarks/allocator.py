"""Training tokens/s of the train command itself on each host allocator: the default a fresh machine gets,
and the others it could run on (pretrain_jax/host_memory.py).

    python benchmarks/allocator.py [--shape 25m] [--steps 12] [--rounds 2] [--jemalloc PATH] [--no_write]

Each run is `pretrain-jax train` as a user types it, on the shape's model (benchmarks/shapes.py),
for --steps steps, with a fresh workdir; tokens/s is the median of the progress lines after the
first two steps (compilation and the first block of temporaries). Rounds run every allocator in
turn, so a load that changes during the run falls on all of them. The data is the demo's (this
Python's standard library), prepared once into --data with the shape's sequence length and vocabulary.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from benchmarks import report, shapes  # noqa: E402
from pretrain_jax import host_memory  # noqa: E402

SECTION = "## Host allocator: tokens/s of `pretrain-jax train`"
BIN = os.path.dirname(sys.executable)


def prepare(data_dir: str, seq_len: int, vocab_size: int) -> None:
    """The demo's data (this Python's standard library), packed for the shape (skipped when already there)."""
    if os.path.exists(os.path.join(data_dir, "metadata.json")):
        return
    subprocess.run([os.path.join(BIN, "data-prep"), "run", "--config=configs/data/demo.py",
                    f"--config.output_dir={data_dir}", f"--config.seq_len={seq_len}",
                    f"--config.vocab_size={vocab_size}", "--config.overwrite=True"],
                   cwd=report.REPO, check=True, stdout=subprocess.DEVNULL)


def environments(jemalloc_path: str | None) -> dict[str, tuple[str, dict[str, str]]]:
    """allocator -> (how a user gets it, the environment to run the train command in); `jemalloc_path`: a
    jemalloc library to measure too where the system has none (e.g. unpacked from `apt-get download`)."""
    settings = ("LD_PRELOAD", host_memory.OPT_OUT, *(k for options in host_memory.OPTIONS.values() for k in options))
    base = {k: v for k, v in os.environ.items() if k not in settings}
    default = host_memory.find_allocator()
    runs = {f"default ({default.name if default else 'glibc'})": ("nothing: `pretrain-jax train`", base),
            "glibc malloc": (f"{host_memory.OPT_OUT}=1", {**base, host_memory.OPT_OUT: "1"})}
    extra = host_memory.Allocator("jemalloc", jemalloc_path) if jemalloc_path else None
    for allocator in (host_memory.jemalloc() or extra, host_memory.mimalloc()):
        if allocator is not None and allocator != default:
            runs[allocator.name] = (f"LD_PRELOAD={allocator.library}",
                                    {**base, **host_memory.allocator_env(base, allocator)})
    return runs


def train(data_dir: str, shape: str, steps: int, env: dict[str, str]) -> tuple[list[float], str]:
    """(tokens/s of each progress line after step 2, the allocator the run reported) of one fresh run."""
    overrides, seq_len, batch = shapes.CONFIGS[shape]
    workdir = tempfile.mkdtemp(prefix="allocator_bench_")
    try:
        command = [os.path.join(BIN, "pretrain-jax"), "train", "--config=configs/demo.py", f"--workdir={workdir}",
                   f"--config.data.dir={data_dir}", f"--config.seq_len={seq_len}",
                   f"--config.global_batch_size={batch}", f"--config.num_train_steps={steps}",
                   "--config.log_every=1", "--config.eval_every=-1", f"--config.checkpoint_every={steps}",
                   "--config.generate.sample_every=0", "--config.optimizer.warmup_steps=2",
                   *(f"--config.model.{k}={v}" for k, v in overrides.items())]
        out = subprocess.run(command, cwd=report.REPO, env=env, capture_output=True, text=True, check=True).stdout
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    rates = [float(m.group(2).replace(",", "")) for m in re.finditer(r"^step (\d+)/\d+ .*\| ([\d,]+) tok/s", out, re.M)
             if int(m.group(1)) > 2]
    loaded = re.search(r"host allocator (.+?)(?: \(|$)", out, re.M)
    return rates, loaded.group(1) if loaded else "?"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--shape", default="25m", choices=sorted(shapes.CONFIGS))
    parser.add_argument("--steps", type=int, default=12)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--data", default=os.path.join(tempfile.gettempdir(), "allocator_bench_data"))
    parser.add_argument("--jemalloc", help="a jemalloc library to measure where the system has none")
    parser.add_argument("--no_write", action="store_true", help="print only; leave BENCHMARKS.md as it is")
    args = parser.parse_args()
    overrides, seq_len, _ = shapes.CONFIGS[args.shape]
    data_dir = f"{args.data}_{args.shape}"
    prepare(data_dir, seq_len, overrides["vocab_size"])

    start, before = time.perf_counter(), report.busy_cpu_s()
    runs = environments(args.jemalloc)
    rates: dict[str, list[float]] = {name: [] for name in runs}
    loaded: dict[str, str] = {}
    for round_index in range(args.rounds):
        for name, (_, env) in runs.items():
            step_rates, loaded[name] = train(data_dir, args.shape, args.steps, env)
            rates[name] += step_rates
            print(f"round {round_index + 1}/{args.rounds} {name}: median {statistics.median(step_rates):,.0f} tok/s "
                  f"on {loaded[name]}", flush=True)
    glibc = statistics.median(rates["glibc malloc"])
    lines = ["| allocator | what the user does | process ran on | tokens/s (median) | vs glibc |",
             "|---|---|---|---:|---:|"]
    for name, (how, _) in runs.items():
        median = statistics.median(rates[name])
        lines.append(f"| {name} | {how} | {loaded[name]} | {median:,.0f} | {median / glibc:.2f}x |")
    table = "\n".join(lines)
    print(table)
    wall = time.perf_counter() - start
    command = (f"python benchmarks/allocator.py --shape {args.shape} --steps {args.steps} --rounds {args.rounds}"
               + (f" --jemalloc {args.jemalloc}" if args.jemalloc else ""))
    text = "\n".join([
        *report.header(SECTION, command, f"Machine: {report.cpu_model()}, {len(os.sched_getaffinity(0))} cores. "
                       f"{report.versions(('jax', 'cmeel-mimalloc'))}.", start),
        table, "",
        f"- The {args.shape} shape of benchmarks/shapes.py ({seq_len} tokens x batch {shapes.CONFIGS[args.shape][2]}), "
        f"{args.steps} steps per run, {args.rounds} rounds; median over the steps after step 2 of every round.",
        "- The default is what `pretrain-jax train` starts itself on without the user doing anything: the "
        "system's jemalloc when installed, else mimalloc from the cmeel-mimalloc wheel (pretrain_jax/host_memory.py).",
        f"- {report.load_note(before, wall)}"])
    if not args.no_write:
        report.write_section(text, SECTION)


if __name__ == "__main__":
    main()
