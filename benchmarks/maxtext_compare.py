"""Our Llama 2 7B train step beside MaxText's, compiled ahead of time for TPU slices: memory per chip and collectives.

Run (from the repository root; needs libtpu for our side, `make install`):

    python benchmarks/maxtext_compare.py [--write] [--topologies v5p-128,v5e-256] [--venv .venv-maxtext]

MaxText needs Python >= 3.12: the first run makes a virtualenv with pyenv's 3.12 (--python) and installs
`maxtext[tpu]` into it (about 3 minutes and 2.8 GB; it brings its own jax and libtpu). Nothing runs on a TPU:
both sides compile for compile-only devices of the named slice on this CPU machine.

The same step on both sides: Llama 2 7B (dim 4,096, 32 layers, 32 heads, SwiGLU 11,008, vocabulary 32,000),
global batch 2,048 rows of 2,048 tokens (per device 32 on a v5p-128's 64 chips, 8 on a v5e-256's 256), full
rematerialization, scanned layers, FSDP over every device of the slice, float32 parameters and AdamW state,
bfloat16 compute, no gradient accumulation.

- MaxText: its own ahead-of-time entry point, `maxtext.trainers.pre_train.train_compile` (0.2.5), with the
  arguments below, once with its default attention (on TPU: splash, Pallas flash) and once with
  `attention=dot_product` (XLA). A small wrapper run in its virtualenv catches the compiled object and writes
  its memory analysis and HLO text.
- Ours: `pretrain_jax.aot.analyze` on configs/llama_7b.py (the config `pretrain-jax aot` compiles), with
  attention_impl xla or splash, and the vocabulary-tiled loss (model.logits_chunk) off or on.

Memory per device is arguments + outputs + temporaries + generated code - aliased from
`Compiled.memory_analysis()` (a donated state buffer counts once), the same sum `pretrain-jax aot` reports;
"XLA peak" is the analysis' own peak_memory_in_bytes. Collectives are counted in the compiled HLO text by
`pretrain_jax.aot.collective_counts` for both sides (each loop body once; async pairs once).

Every compile runs in its own child process (one at a time: a 7B step takes several minutes and a few GB of
memory on a small machine). The table is printed; with --write it becomes the section
"## MaxText side by side: memory per chip and collectives (AOT)" of BENCHMARKS.md (replaced if present).
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib.metadata
import json
import os
import platform
import shlex
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)  # configs/ and benchmarks/ are not installed packages

from benchmarks.report import cpu_model, header, write_section  # noqa: E402

TITLE = "## MaxText side by side: memory per chip and collectives (AOT)"
GIB = 2**30
GLOBAL_BATCH = 2048
SEQ_LEN = 2048
LOGITS_CHUNK = 256  # positions per chunk of the tiled loss: [32, 256, 32000] float32 logits = 1 GiB per device
DEFAULT_PYTHON = os.path.expanduser("~/.pyenv/versions/3.12.1/bin/python")
SHOWN = ("all-gather", "all-reduce", "reduce-scatter")

# Runs in MaxText's virtualenv: its train_compile.main, with jit_and_compile wrapped to keep the compiled object.
MAXTEXT_WRAPPER = r'''
import importlib.metadata, json, os, sys
os.environ.setdefault("JAX_PLATFORMS", "cpu")
out, argv = sys.argv[1], sys.argv[2:]
import jax
from maxtext.trainers.pre_train import train_compile
captured = []
compile_step = train_compile.jit_and_compile
def keep(*args, **kwargs):
    captured.append(compile_step(*args, **kwargs))
    return captured[-1]
train_compile.jit_and_compile = keep
train_compile.main(["train_compile", *argv])
compiled = captured[-1]
m = compiled.memory_analysis()
with open(out + ".hlo", "w") as f:
    f.write(compiled.as_text())
json.dump({"arguments": m.argument_size_in_bytes, "outputs": m.output_size_in_bytes,
           "temporaries": m.temp_size_in_bytes, "generated_code": m.generated_code_size_in_bytes,
           "aliased": m.alias_size_in_bytes, "xla_peak": m.peak_memory_in_bytes,
           "versions": {p: importlib.metadata.version(p) for p in ("maxtext", "jax", "jaxlib", "libtpu")}},
          open(out, "w"))
'''


@dataclasses.dataclass
class Row:
    system: str  # "MaxText" or "ours"
    variant: str  # attention (and loss) as configured
    topology: str
    memory: dict | None = None  # bytes: arguments ... aliased, total, xla_peak
    collectives: dict | None = None
    seconds: float = 0.0
    error: str | None = None


def per_device_batch(topology: str) -> int:
    from pretrain_jax import aot
    return GLOBAL_BATCH // aot.parse_topology(topology).chips


def ensure_maxtext(venv: str, python: str) -> str:
    """The virtualenv's python, with maxtext[tpu] installed (created on first use)."""
    exe = os.path.join(venv, "bin", "python")
    if not os.path.exists(exe):
        print(f"creating {venv} with {python}", file=sys.stderr, flush=True)
        subprocess.run([python, "-m", "venv", venv], check=True)
    if subprocess.run([exe, "-c", "import maxtext"], capture_output=True).returncode:
        print("pip install 'maxtext[tpu]' (minutes, 2.8 GB)", file=sys.stderr, flush=True)
        subprocess.run([exe, "-m", "pip", "install", "--quiet", "maxtext[tpu]"], check=True)
    return exe


def maxtext_args(exe: str, topology: str, attention: str | None) -> list[str]:
    configs = subprocess.run([exe, "-c", "import maxtext, os; print(os.path.dirname(maxtext.__file__))"],
                             capture_output=True, text=True, check=True).stdout.strip()
    args = [os.path.join(configs, "configs", "base.yml"), f"compile_topology={topology}",
            "compile_topology_num_slices=1", "model_name=llama2-7b", f"max_target_length={SEQ_LEN}",
            f"per_device_batch_size={per_device_batch(topology)}", "remat_policy=full", "ici_fsdp_parallelism=-1",
            "weight_dtype=float32", "dtype=bfloat16", "gradient_accumulation_steps=1", "dataset_type=synthetic",
            "enable_checkpointing=false", "skip_jax_distributed_system=true", "run_name=maxtext_compare",
            f"base_output_directory={tempfile.gettempdir()}/maxtext_compare"]
    return args + ([f"attention={attention}"] if attention else [])


def total(memory: dict) -> int:
    return (memory["arguments"] + memory["outputs"] + memory["temporaries"] + memory["generated_code"]
            - memory["aliased"])


HLO_DIR: str | None = None  # --hlo_dir: where each compiled program's HLO text is kept


def keep_hlo(text: str, row: Row) -> None:
    if HLO_DIR:
        os.makedirs(HLO_DIR, exist_ok=True)
        name = f"{row.system}_{row.variant}_{row.topology}".replace(" ", "").replace(",", "_").replace("(", "_")
        with open(os.path.join(HLO_DIR, name.replace(")", "") + ".hlo"), "w") as f:
            f.write(text)


def run_maxtext(exe: str, topology: str, attention: str | None, log: str) -> tuple[Row, dict]:
    from pretrain_jax import aot
    row = Row("MaxText", attention or "default (splash)", topology)
    with tempfile.TemporaryDirectory() as tmp:
        wrapper, out = os.path.join(tmp, "wrapper.py"), os.path.join(tmp, "result.json")
        with open(wrapper, "w") as f:
            f.write(MAXTEXT_WRAPPER)
        argv = [exe, wrapper, out, *maxtext_args(exe, topology, attention)]
        env = {**os.environ, "JAX_PLATFORMS": "cpu"}
        for key in ("PYTHONPATH", "TPU_LIBRARY_PATH", "XLA_FLAGS"):
            env.pop(key, None)
        start = time.perf_counter()
        with open(log, "a") as f:
            f.write(f"\n$ {shlex.join(argv)}\n")
            f.flush()
            done = subprocess.run(argv, stdout=f, stderr=subprocess.STDOUT, env=env, cwd=tmp)
        row.seconds = time.perf_counter() - start
        if done.returncode or not os.path.exists(out):
            row.error = f"exit {done.returncode}, see {log}"
            return row, {}
        result = json.load(open(out))
        hlo = open(out + ".hlo").read()
        row.collectives = aot.collective_counts(hlo)
        keep_hlo(hlo, row)
    row.memory = {k: result[k] for k in ("arguments", "outputs", "temporaries", "generated_code", "aliased",
                                         "xla_peak")}
    row.memory["total"] = total(row.memory)
    return row, result["versions"]


def our_config(attention: str, logits_chunk: int):
    from configs.llama import get_llama_config
    config = get_llama_config("7b")  # configs/llama_7b.py: FSDP over every device
    config.update(global_batch_size=GLOBAL_BATCH, seq_len=SEQ_LEN)
    config.model.update(remat="full", attention_impl=attention, logits_chunk=logits_chunk)
    return config


def child_ours(topology: str, attention: str, logits_chunk: int, out: str) -> None:
    """One compile of ours (in a child process, so that each starts with empty caches); writes aot.analyze's
    report and the compiled HLO text."""
    os.environ.setdefault("JAX_PLATFORMS", "cpu")
    from pretrain_jax import aot
    compile_setup = aot.compile_setup

    def keep(*args, **kwargs):
        compiled = compile_setup(*args, **kwargs)
        with open(out + ".hlo", "w") as f:
            f.write(compiled.as_text())
        return compiled

    aot.compile_setup = keep
    report = aot.analyze(our_config(attention, logits_chunk), aot.parse_topology(topology))
    json.dump(report, open(out, "w"))


def run_ours(topology: str, attention: str, logits_chunk: int, log: str) -> Row:
    row = Row("ours", attention + (f", tiled loss ({logits_chunk})" if logits_chunk else ""), topology)
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "report.json")
        argv = [sys.executable, os.path.abspath(__file__), "--child-ours", json.dumps([topology, attention,
                                                                                        logits_chunk, out])]
        start = time.perf_counter()
        with open(log, "a") as f:
            f.write(f"\n$ {shlex.join(argv)}\n")
            f.flush()
            done = subprocess.run(argv, stdout=f, stderr=subprocess.STDOUT, cwd=REPO,
                                  env={**os.environ, "JAX_PLATFORMS": "cpu"})
        row.seconds = time.perf_counter() - start
        if done.returncode:
            row.error = f"exit {done.returncode}, see {log}"
            return row
        report = json.load(open(out))
        if os.path.exists(out + ".hlo"):
            keep_hlo(open(out + ".hlo").read(), row)
    if not report["fits"]:
        row.error = report["error"]
        return row
    row.memory, row.collectives = report["memory_per_device"], report["collectives"]
    return row


def our_versions() -> dict[str, str]:
    from pretrain_jax import aot
    library = aot.find_libtpu() or ""
    found = [d.version for d in importlib.metadata.distributions(path=[os.path.dirname(os.path.dirname(library))])
             if d.metadata["Name"] == "libtpu"] if library else []
    return {"jax": importlib.metadata.version("jax"), "jaxlib": importlib.metadata.version("jaxlib"),
            "libtpu": found[0] if found else importlib.metadata.version("libtpu")}


def gib(num_bytes: float) -> str:
    return f"{num_bytes / GIB:.1f}"


def table(rows: Sequence[Row]) -> list[str]:
    lines = ["| system | attention, loss | topology | memory per device (GiB) | temporaries (GiB) | XLA peak (GiB) | "
             + " | ".join(SHOWN) + " |",
             "|---|---|---|---:|---:|---:|" + "---:|" * len(SHOWN)]
    for r in rows:
        if r.memory is None:
            lines.append(f"| {r.system} | {r.variant} | {r.topology} | {r.error} |  |  |" + "  |" * len(SHOWN))
            continue
        counts = " | ".join(str(r.collectives[k]) for k in SHOWN)
        lines.append(f"| {r.system} | {r.variant} | {r.topology} | {gib(r.memory['total'])} | "
                     f"{gib(r.memory['temporaries'])} | {gib(r.memory['xla_peak'])} | {counts} |")
    return lines


def section(command: str, rows: Sequence[Row], ours: dict, theirs: dict, start: float) -> str:
    setting = (f"{cpu_model()}, {os.cpu_count()} cores, compile-only TPU devices (no TPU). Ours: Python "
               f"{platform.python_version()}, jax {ours['jax']}, libtpu {ours['libtpu']}. MaxText "
               f"{theirs.get('maxtext', '?')}: Python 3.12, jax {theirs.get('jax', '?')}, "
               f"libtpu {theirs.get('libtpu', '?')}.")
    lines = header(TITLE, command, setting, start)
    lines += [f"Llama 2 7B train step, global batch {GLOBAL_BATCH:,} x {SEQ_LEN:,} tokens, full remat, scanned layers, "
              "FSDP over the whole slice, float32 parameters and AdamW state, bfloat16 compute. Memory per device = "
              "arguments + outputs + temporaries + generated code - aliased (`Compiled.memory_analysis()`); XLA peak "
              "is the analysis' own peak; collectives counted in the compiled HLO by `pretrain_jax.aot."
              "collective_counts` (each loop body once). MaxText compiled with its train_compile and "
              "`per_device_batch_size` = 2,048 / chips.", ""]
    lines += table(rows)
    lines.append("")
    lines.append("Compile times: " + "; ".join(f"{r.system} {r.variant} {r.topology} {r.seconds:.0f} s" for r in rows)
                 + ".")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--topologies", default="v5p-128,v5e-256")
    parser.add_argument("--venv", default=os.path.join(REPO, ".venv-maxtext"), help="MaxText's virtualenv")
    parser.add_argument("--python", default=DEFAULT_PYTHON, help="Python >= 3.12 to create it with")
    parser.add_argument("--systems", default="maxtext,ours", help="which sides to compile")
    parser.add_argument("--log", default=os.path.join(tempfile.gettempdir(), "maxtext_compare.log"),
                        help="the children's output")
    parser.add_argument("--hlo_dir", help="keep each compiled program's HLO text here")
    parser.add_argument("--write", action="store_true", help="write the section into BENCHMARKS.md")
    parser.add_argument("--child-ours", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child_ours:
        child_ours(*json.loads(args.child_ours))
        return
    global HLO_DIR
    HLO_DIR = args.hlo_dir
    start = time.perf_counter()
    systems = args.systems.split(",")
    exe = ensure_maxtext(args.venv, args.python) if "maxtext" in systems else None
    rows, theirs = [], {}
    for topology in args.topologies.split(","):
        plan = []
        if exe:
            plan += [("maxtext", None), ("maxtext", "dot_product")]
        if "ours" in systems:
            plan += [("ours", ("xla", 0)), ("ours", ("splash", 0)), ("ours", ("splash", LOGITS_CHUNK))]
        for system, variant in plan:
            print(f"compiling {system} {variant} for {topology}...", file=sys.stderr, flush=True)
            if system == "maxtext":
                row, found = run_maxtext(exe, topology, variant, args.log)
                theirs = theirs or found
            else:
                row = run_ours(topology, *variant, args.log)
            rows.append(row)
            print("\n".join(table([row])[2:]), flush=True)
    command = "python benchmarks/maxtext_compare.py" + "".join(
        f" {a}" for a in sys.argv[1:] if a != "--write") + " --write"
    text = section(command, rows, our_versions(), theirs, start)
    print(text)
    if args.write:
        write_section(text, TITLE)


if __name__ == "__main__":
    main()
