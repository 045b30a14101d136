"""Input pipeline and tokenizer throughput, in tokens per CPU second, against what training consumes.

Run (from the repository root):

    python benchmarks/input_pipeline.py [--data_dir DIR] [--shapes 8x512,4x1024,64x1024] [--threads 0,2]
        [--batches N] [--warmup W] [--repeats R] [--docs D] [--before REV] [--train_tokens_per_s 25m=1496,125m=167]

Data: the demo corpus (configs/data/demo.py: this Python's standard library, BPE
vocabulary 8,000) prepared by data_prep once per sequence length into
DIR/seq{L} (default data/benchmarks/input_pipeline, ignored by git), and reused by
later runs; the first preparation trains the tokenizer, the others reuse it.

Input pipeline: what pretrain_jax.train runs per step, nothing else:
train_data.TrainData (Grain: seeded shuffles, rows by position, batches read by
Grain threads, records decoded, segment ids and positions) then input_pipeline.global_batch (the device
put onto the mesh, here one CPU device), waited on with jax.block_until_ready.
Targets are made inside the jitted train step (objectives), so they are the
step's work, not the loader's. Shapes BATCHxLENGTH: 8x512 and 4x1024 are the 25m
and 125m shapes of benchmarks/train_throughput.py, 64x1024 a larger batch. Threads
is config.data.num_threads, the loader's only parallelism (Grain reader threads;
0 reads in the consuming thread). After W warm-up batches, N batches are timed;
the R rounds take turns over the rows (A B C A B C ...) so that load from other
processes hits all alike, and a row reports the median round. "Per core" is
tokens over the CPU time of this process and its ended children (every thread
the loader used, not wall time x cores); a pause after each run lets Grain's
threads refill their read-ahead outside the next one.
--before REV adds the same rows for pretrain_jax/input_pipeline.py as of git
revision REV (389b5b1^: before its performance fix), taking turns with the others.
Training's rate is the best JAX row per config of "## Training throughput" in
BENCHMARKS.md (or --train_tokens_per_s); headroom is the loader's tokens/s over it.

Tokenizer: data_prep's path (data_prep.tokenizer.encode_documents: documents in
batches of ENCODE_BATCH_CHARS to spawned worker processes, each encoding with
SentencePiece on one thread, ids + eos flattened to int32 and split back per
document) on the demo corpus's files, beside raw sentencepiece encode calls on the
same documents, and pack.write_shard (packing, records, ArrayRecord) of its output.
The tables are printed and replace the section "## Input pipeline and tokenizer
throughput" in BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import re
import subprocess
import sys
import tempfile
import time
import types
from collections.abc import Callable, Sequence

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)  # configs/ is not an installed package
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import jax  # noqa: E402
import numpy as np  # noqa: E402

from configs import base  # noqa: E402
from configs.data import demo  # noqa: E402
from data_prep import corpora, pack, prepare, tokenizer  # noqa: E402
from pretrain_common import records  # noqa: E402
from report import BENCHMARKS_FILE, busy_cpu_s, cpu_model, header, load_note, versions, write_section  # noqa: E402
from pretrain_jax import input_pipeline, sharding, train_data  # noqa: E402

SECTION = "## Input pipeline and tokenizer throughput"
TRAINING_SECTION = "## Training throughput"
DEFAULT_DATA_DIR = os.path.join(REPO, "data", "benchmarks", "input_pipeline")
# The (batch, seq_len) of each config in benchmarks/train_throughput.py, whose rates training consumes.
TRAIN_SHAPES = {"25m": (8, 512), "125m": (4, 1024)}
# Issue P5's targets, tokens per CPU second.
LOADER_TARGET = 5e6
TOKENIZER_TARGET = 1e6
SETTLE_S = 0.2  # pause after a timed run: Grain's threads refill their read-ahead outside the next one
PACKAGES = ("jax", "jaxlib", "grain", "array-record", "sentencepiece", "numpy")


def cpu_s() -> float:
    """CPU seconds of this process (every thread; finer than os.times' clock ticks) and of its ended children."""
    t = os.times()
    return time.process_time() + t.children_user + t.children_system


@dataclasses.dataclass(frozen=True)
class Timing:
    tokens: int
    cpu_s: float
    wall_s: float

    @property
    def per_s(self) -> float:
        return self.tokens / self.wall_s

    @property
    def per_core_s(self) -> float:
        return self.tokens / self.cpu_s


def timed(run: Callable[[], int]) -> Timing:
    """Times `run`, which returns how many tokens it handled."""
    cpu, wall = cpu_s(), time.perf_counter()
    tokens = run()
    return Timing(tokens, cpu_s() - cpu, time.perf_counter() - wall)


def prepared(root: str, seq_len: int, tokenizer_model: str) -> str:
    """root/seq{seq_len}: the demo corpus packed at `seq_len`, prepared now unless an earlier run did."""
    path = os.path.join(root, f"seq{seq_len}")
    if not os.path.exists(os.path.join(path, records.METADATA_FILE)):
        config = demo.get_config()
        config.seq_len, config.output_dir, config.tokenizer_model = seq_len, path, tokenizer_model
        print(f"preparing the demo corpus at seq_len {seq_len} in {path}", flush=True)
        prepare.prepare(config)
    if records.read_metadata(path).seq_len != seq_len:
        sys.exit(f"error: {path} holds another sequence length than {seq_len}; remove it or pick another --data_dir")
    return path


def prepared_all(root: str, seq_lens: Sequence[int]) -> dict[int, str]:
    """{seq_len: folder}; the first preparation trains the tokenizer, the others reuse it."""
    folders: dict[int, str] = {}
    for seq_len in sorted(set(seq_lens)):
        first = next(iter(folders.values()), None)
        folders[seq_len] = prepared(root, seq_len, os.path.join(first, tokenizer.TOKENIZER_FILE) if first else "")
    return folders


@dataclasses.dataclass(frozen=True)
class LoaderCase:
    batch: int
    seq_len: int
    threads: int  # config.data.num_threads
    code: str = "working tree"  # or the git revision whose pretrain_jax/input_pipeline.py runs

    @property
    def shape(self) -> str:
        return f"{self.batch}x{self.seq_len}"


def input_pipeline_at(rev: str) -> types.ModuleType:
    """pretrain_jax/input_pipeline.py as it was at git revision `rev`, for before/after rows."""
    source = subprocess.run(["git", "show", f"{rev}:pretrain_jax/input_pipeline.py"], cwd=REPO, check=True,
                            capture_output=True, text=True).stdout
    module = types.ModuleType(f"input_pipeline_at_{rev}")
    exec(compile(source, f"{rev}:pretrain_jax/input_pipeline.py", "exec"), module.__dict__)
    return module


def loader(case: LoaderCase, data_dir: str, mesh: jax.sharding.Mesh, warmup: int) -> Callable[[int], int]:
    """A function that runs n steps of the train loop's input (next batch, global_batch, wait), warmed up."""
    code = input_pipeline if case.code == LoaderCase.code else input_pipeline_at(case.code)
    config = base.get_config()
    config.data.dir, config.data.num_threads = data_dir, case.threads
    config.seq_len, config.global_batch_size = case.seq_len, case.batch
    metadata = records.read_metadata(data_dir)
    code.check_compatible(metadata, config)
    # The training rows live in train_data.py now; an older revision read them in input_pipeline.py.
    iterator = (train_data.TrainData if code is input_pipeline else code.train_iterator)(config, metadata)

    def steps(n: int) -> int:
        for _ in range(n):
            jax.block_until_ready(code.global_batch(next(iterator), mesh))
        return n * case.batch * case.seq_len

    steps(warmup)
    return steps


def measure_loader(cases: Sequence[LoaderCase], folders: dict[int, str], batches: int, warmup: int,
                   repeats: int) -> dict[LoaderCase, Timing]:
    """Each case's median round (by tokens per CPU s); the cases take turns, one run of `batches` each."""
    mesh = sharding.make_mesh(base.get_config().mesh, jax.devices()[:1])
    runs = {case: loader(case, folders[case.seq_len], mesh, warmup) for case in cases}
    rounds: dict[LoaderCase, list[Timing]] = {case: [] for case in cases}
    for i in range(repeats):
        for case, steps in runs.items():
            rounds[case].append(timed(lambda: steps(batches)))
            time.sleep(SETTLE_S)
        print(f"  loader round {i + 1}/{repeats}: " + ", ".join(
            f"{c.shape} threads {c.threads} ({c.code}) {t[-1].per_core_s / 1e6:.1f}M" for c, t in rounds.items())
            + " tokens/CPU s", flush=True)
    return {case: sorted(ts, key=lambda t: t.per_core_s)[len(ts) // 2] for case, ts in rounds.items()}


def training_rates(benchmarks_md: str) -> dict[str, float]:
    """{config: tokens/s} of the fastest JAX variant per config in BENCHMARKS.md's training table."""
    section = re.search(rf"^{re.escape(TRAINING_SECTION)}\n(.*?)(?=^## |\Z)", benchmarks_md, re.M | re.S)
    rates: dict[str, float] = {}
    rows = re.findall(r"^\| (\w+) \| [^|]+\| \d+ \| jax [^|]+\| [^|]+\| ([\d,.]+) \|", section.group(1) if section
                      else "", re.M)
    for config, tokens in rows:
        rates[config] = max(rates.get(config, 0.0), float(tokens.replace(",", "")))
    return rates


def loader_table(results: dict[LoaderCase, Timing], batches: int, train: dict[str, float]) -> str:
    lines = ["| shape | threads | code | batches | CPU s | wall s | tokens/s | tokens/s per core | >= 5M per core "
             "| training consumes (tokens/s) | headroom | share of a core at that rate |",
             "|---|---:|---|---:|---:|---:|---:|---:|---|---:|---:|---:|"]
    for case, t in results.items():
        config = next((name for name, shape in TRAIN_SHAPES.items() if shape == (case.batch, case.seq_len)), None)
        rate = train.get(config)
        consumed = (f"{rate:,.0f} ({config})", f"{t.per_s / rate:,.0f}x", f"{rate / t.per_core_s:.3%}") if rate \
            else ("-", "-", "-")
        lines.append(f"| {case.shape} | {case.threads} | {case.code} | {batches} | {t.cpu_s:.2f} | {t.wall_s:.2f} | "
                     f"{t.per_s / 1e6:.2f}M | {t.per_core_s / 1e6:.2f}M | "
                     f"{'yes' if t.per_core_s >= LOADER_TARGET else 'no'} | " + " | ".join(consumed) + " |")
    return "\n".join(lines)


def stdlib_texts(limit: int | None) -> list[str]:
    """The demo corpus's documents (this Python's standard-library files), or `limit` of them evenly spaced."""
    _, files = corpora.python_stdlib_files()
    if limit:
        files = files[::max(1, len(files) // limit)][:limit]
    texts = []
    for path in files:
        with open(path, "rb") as f:
            try:
                texts.append(f.read().decode("utf-8"))
            except UnicodeDecodeError:  # prepare drops these too
                continue
    return [t for t in texts if t.strip()]


def encoded_in_process(texts: Sequence[str]) -> list[np.ndarray]:
    """encode_documents' work without its processes: the worker's batches, encode and split, here."""
    return [doc for batch in tokenizer._batches(texts, tokenizer.ENCODE_BATCH_CHARS)
            for doc in tokenizer._split(*tokenizer._encode_batch(batch))]


# encode_documents timed in a fresh interpreter: its spawned workers import the parent's main module,
# which here would be this script with JAX; data_prep's own is lighter. Prints [tokens, CPU s, wall s]
# of a start-up alone (one short document) and of the whole run, workers included (os.times children).
ENCODE_IN_FRESH_PROCESS = """
import json, os, sys, time
from data_prep import tokenizer
model_path, texts_path, workers = sys.argv[1], sys.argv[2], int(sys.argv[3])
with open(texts_path, encoding="utf-8") as f:
    texts = json.load(f)
def run(docs):
    t, wall = os.times(), time.perf_counter()
    tokens = sum(len(ids) for ids in tokenizer.encode_documents(model_path, docs, workers))
    u = os.times()
    return [tokens, sum(u[:4]) - sum(t[:4]), time.perf_counter() - wall]
print(json.dumps([run(["x"]), run(texts)]))
"""


def encode_documents_timing(model_path: str, texts: Sequence[str], workers: int) -> tuple[Timing, Timing]:
    """(start-up alone, whole run) of data_prep.tokenizer.encode_documents with `workers` processes."""
    with tempfile.TemporaryDirectory() as tmp:
        texts_path = os.path.join(tmp, "texts.json")
        with open(texts_path, "w", encoding="utf-8") as f:
            json.dump(list(texts), f)
        out = subprocess.run([sys.executable, "-c", ENCODE_IN_FRESH_PROCESS, model_path, texts_path, str(workers)],
                             cwd=REPO, check=True, capture_output=True, text=True).stdout
    startup, whole = json.loads(out.strip().splitlines()[-1])
    return Timing(*startup), Timing(*whole)


def tokenizer_rows(model_path: str, texts: Sequence[str], workers: int, seq_len: int
                   ) -> tuple[list[tuple[str, Timing]], dict[int, Timing]]:
    """(path, timing) rows on the same documents, and encode_documents' start-up alone per worker count."""
    sp = tokenizer.load_tokenizer(model_path)
    tokenizer._load_in_worker(model_path)  # the in-process row calls the worker's own functions
    count: Callable[[Sequence], int] = lambda docs: sum(len(d) for d in docs)  # noqa: E731
    docs: list[np.ndarray] = []

    def packed() -> int:
        with tempfile.TemporaryDirectory() as tmp:
            return pack.write_shard(os.path.join(tmp, "train.array_record"), docs, seq_len).tokens

    rows = [("sentencepiece encode, one document per call", lambda: count([sp.encode(t, add_eos=True)
                                                                            for t in texts])),
            ("sentencepiece encode, all documents in one call, num_threads=1",
             lambda: count(sp.encode(list(texts), add_eos=True, num_threads=1))),
            (f"sentencepiece encode, all documents in one call, num_threads={workers}",
             lambda: count(sp.encode(list(texts), add_eos=True, num_threads=workers))),
            ("data_prep.tokenizer in this process (its batches, encode, int32 ids + eos, split)",
             lambda: count(docs.extend(encoded_in_process(texts)) or docs)),
            (f"pack.write_shard of those ids at seq_len {seq_len} (pack, records, ArrayRecord)", packed)]
    timings, startups = [], {}
    for name, run in rows:
        timings.append((name, timed(run)))
        print(f"  {name}: {timings[-1][1].per_core_s / 1e6:.2f}M tokens/CPU s", flush=True)
    for n in sorted({1, workers}):
        startups[n], whole = encode_documents_timing(model_path, texts, n)
        timings.insert(-1, (f"data_prep.tokenizer.encode_documents, {n} worker process{'es' if n > 1 else ''}", whole))
        print(f"  {timings[-2][0]}: {whole.per_core_s / 1e6:.2f}M tokens/CPU s", flush=True)
    return timings, startups


def tokenizer_table(rows: Sequence[tuple[str, Timing]]) -> str:
    raw = dict(rows)["sentencepiece encode, all documents in one call, num_threads=1"]
    lines = ["| path | tokens | CPU s | wall s | tokens/s | tokens/s per core | >= 1M per core | per core vs raw "
             "list encode |", "|---|---:|---:|---:|---:|---:|---|---:|"]
    for name, t in rows:
        target = "-" if name.startswith("pack") else "yes" if t.per_core_s >= TOKENIZER_TARGET else "no"
        lines.append(f"| {name} | {t.tokens:,} | {t.cpu_s:.2f} | {t.wall_s:.2f} | {t.per_s / 1e6:.2f}M | "
                     f"{t.per_core_s / 1e6:.2f}M | {target} | {t.per_core_s / raw.per_core_s:.2f}x |")
    return "\n".join(lines)


def corpus_note(folders: dict[int, str], texts: Sequence[str]) -> str:
    parts = []
    for seq_len, folder in folders.items():
        train = records.read_metadata(folder).splits["train"]
        parts.append(f"{train.tokens:,} train tokens in {train.sequences:,} rows of {seq_len}")
    return (f"Data: the demo corpus (configs/data/demo.py, vocabulary 8,000) prepared into {', '.join(parts)}; "
            f"the tokenizer rows encode {len(texts)} of its documents ({sum(map(len, texts)) / 1e6:.1f}M "
            "characters) with the same tokenizer.model.")


def parse_shapes(text: str) -> list[tuple[int, int]]:
    try:
        shapes = [tuple(int(n) for n in shape.split("x")) for shape in text.split(",")]
    except ValueError:
        shapes = []
    if not shapes or any(len(s) != 2 or min(s) < 1 for s in shapes):
        raise argparse.ArgumentTypeError(f"--shapes wants BATCHxLENGTH,... (e.g. 8x512,4x1024), got {text!r}")
    return shapes


def parse_rates(text: str) -> dict[str, float]:
    try:
        return {name: float(rate) for name, rate in (pair.split("=") for pair in text.split(",") if pair)}
    except ValueError:
        raise argparse.ArgumentTypeError(f"--train_tokens_per_s wants CONFIG=TOKENS_PER_S,..., got {text!r}") from None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data_dir", default=DEFAULT_DATA_DIR, help="folder for the prepared corpora (seq{L}/)")
    parser.add_argument("--shapes", type=parse_shapes, default="8x512,4x1024,64x1024", help="BATCHxLENGTH,...")
    parser.add_argument("--threads", default="0,2", help="config.data.num_threads values, comma-separated")
    parser.add_argument("--batches", type=int, default=300, help="timed batches per round")
    parser.add_argument("--warmup", type=int, default=10, help="untimed batches first")
    parser.add_argument("--repeats", type=int, default=3, help="rounds per loader row (median reported)")
    parser.add_argument("--docs", type=int, default=None, help="tokenizer documents (default: the whole corpus)")
    parser.add_argument("--before", default=None,
                        help="also time pretrain_jax/input_pipeline.py at this git revision (before/after rows)")
    parser.add_argument("--train_tokens_per_s", type=parse_rates, default={},
                        help="CONFIG=TOKENS_PER_S,... instead of BENCHMARKS.md's training table")
    args = parser.parse_args()
    threads = [int(t) for t in args.threads.split(",")]
    if args.batches < 1 or args.warmup < 1 or args.repeats < 1 or min(threads) < 0:
        parser.error("--batches, --warmup and --repeats must be >= 1, --threads >= 0")

    start, busy_before = time.perf_counter(), busy_cpu_s()
    folders = prepared_all(args.data_dir, [seq_len for _, seq_len in args.shapes])
    with open(BENCHMARKS_FILE) as f:
        train = args.train_tokens_per_s or training_rates(f.read())
    codes = [LoaderCase.code] + ([args.before] if args.before else [])
    cases = [LoaderCase(b, s, t, code) for b, s in args.shapes for t in threads for code in codes]
    loader_results = measure_loader(cases, folders, args.batches, args.warmup, args.repeats)
    texts = stdlib_texts(args.docs)
    workers = len(os.sched_getaffinity(0))
    first = min(folders)
    token_rows, startups = tokenizer_rows(os.path.join(folders[first], tokenizer.TOKENIZER_FILE), texts, workers,
                                         first)
    tables = loader_table(loader_results, args.batches, train) + "\n\n" + tokenizer_table(token_rows)
    print(tables)

    command = (f"python benchmarks/input_pipeline.py --shapes {','.join(f'{b}x{s}' for b, s in args.shapes)} "
               f"--threads {args.threads} --batches {args.batches} --warmup {args.warmup} --repeats {args.repeats}"
               + (f" --docs {args.docs}" if args.docs else "") + (f" --before {args.before}" if args.before else "")
               + (f" --train_tokens_per_s {','.join(f'{k}={v:g}' for k, v in train.items())}"
                  if args.train_tokens_per_s else ""))
    notes = [corpus_note(folders, texts),
             f"Loader: median of {args.repeats} rounds of {args.batches} batches after {args.warmup} warm-up "
             "batches, the rows taking turns; per core is tokens over the CPU time of every thread of this "
             "process (time.process_time). Training consumes: "
             + ("--train_tokens_per_s" if args.train_tokens_per_s else
                f"the fastest JAX variant per config in \"{TRAINING_SECTION}\" above")
             + "; headroom is the loader's tokens/s (wall) over it; the share of a core is that rate over the "
             "loader's tokens/s per core.",
             *([f"Rows with code {args.before} run pretrain_jax/input_pipeline.py as of that git revision, taking "
                "turns with the working tree's: the same data, shapes and harness."] if args.before else []),
             targets_note(loader_results, token_rows),
             startup_note(startups, token_rows),
             "Tokenizer per core: tokens over the CPU time of this process and its worker processes (os.times "
             "children, counted once they end); one document per call, and a list of them, are the raw "
             "sentencepiece baselines for the project's wrapper.",
             f"{load_note(busy_before, time.perf_counter() - start)}"]
    text = "\n".join([
        *header(SECTION, command, f"Machine: {cpu_model()}, {workers} cores (os.sched_getaffinity). "
                f"{versions(PACKAGES)}.", start),
        tables, "", *[f"- {n}" for n in notes]]) + "\n"
    write_section(text, SECTION)


def targets_note(loader_results: dict[LoaderCase, Timing], token_rows: Sequence[tuple[str, Timing]]) -> str:
    """Which rows meet issue P5's targets, in one line."""
    ours = {case: t for case, t in loader_results.items() if case.code == LoaderCase.code}
    missed = [f"{c.shape} threads {c.threads}" for c, t in ours.items() if t.per_core_s < LOADER_TARGET]
    tokenizer_rows = [t for name, t in token_rows if not name.startswith("pack")]
    met = sum(t.per_core_s >= TOKENIZER_TARGET for t in tokenizer_rows)
    return (f"Targets: loader >= {LOADER_TARGET / 1e6:.0f}M tokens per CPU s met by {len(ours) - len(missed)} of "
            f"{len(ours)} working-tree rows" + (f" (missed: {', '.join(missed)})" if missed else "")
            + f"; tokenizer >= {TOKENIZER_TARGET / 1e6:.0f}M per CPU s met by {met} of {len(tokenizer_rows)} rows.")


def startup_note(startups: dict[int, Timing], rows: Sequence[tuple[str, Timing]]) -> str:
    """encode_documents' fixed cost (spawning workers that load the model), and its rates without it."""
    whole = {int(re.search(r"(\d+) worker", name).group(1)): t for name, t in rows if "encode_documents" in name}
    parts = [f"{n} worker{'s' if n > 1 else ''}: {s.cpu_s:.2f} CPU s, {s.wall_s:.2f} s wall; without it "
             f"{whole[n].tokens / (whole[n].cpu_s - s.cpu_s) / 1e6:.2f}M tokens per CPU s" for n, s in startups.items()]
    return ("encode_documents runs in a fresh interpreter (python -c): its spawned workers import only what they "
            "need (under `python -m data_prep` they also import the command's modules). Its start-up alone (one "
            "short document), included in its rows: " + "; ".join(parts) + ".")


if __name__ == "__main__":
    main()
