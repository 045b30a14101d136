"""Throughput of each data_prep stage, and of the FineWeb recipe end to end, on real HTML.

Run (from the repository root):

    python benchmarks/data_prep_throughput.py [--pages N] [--workers W]

Input: ../shared/corpora/python-3.11-docs-html.tar.xz (530 pages) and
debian-handbook-html.tar.xz (3,302 pages). The default sample is every Python docs
page plus every 4th handbook page (1,356 pages); --pages N takes N of those, evenly
spaced. Each stage runs alone, in this process, on the same input: extraction on the
HTML, every other stage on the extracted text. CPU time (time.process_time) gives
documents/s per core; wall time is printed beside it, so a wall time well above the
CPU time shows a machine shared with other processes. The end-to-end row runs
data_prep.prepare.prepare with configs/data/fineweb.py on the sampled pages written to
a temp folder, with num_workers = --workers (default: every core); its per-core rate
is docs/s divided by the workers. The table is printed and replaces the section
"## data_prep throughput" in BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import cProfile
import dataclasses
import functools
import os
import pstats
import sys
import tarfile
import tempfile
import time
from collections.abc import Callable, Sequence

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)  # configs/ is not an installed package
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from configs.data import fineweb  # noqa: E402
from data_prep import extract, langid, pii, prepare  # noqa: E402
from data_prep.dedup import DedupConfig, deduplicate  # noqa: E402
from data_prep.document import Document  # noqa: E402
from data_prep.filters import c4_quality, fineweb_quality, gopher_quality, gopher_repetition  # noqa: E402
from data_prep.filters.text_stats import text_stats  # noqa: E402
from report import busy_cpu_s, cpu_model, header, load_note, versions, write_section  # noqa: E402

CORPORA_DIR = os.path.normpath(os.path.join(REPO, "..", "shared", "corpora"))
# (archive, keep every n-th page) of the default sample
CORPORA = (("python-3.11-docs-html.tar.xz", 1), ("debian-handbook-html.tar.xz", 4))
SECTION = "## data_prep throughput"
PACKAGES = ("resiliparse", "trafilatura", "datasketch", "fasttext-predict", "sentencepiece", "numpy")
# trafilatura's phases, as (module, function, what it is): where its extraction time goes (--profile).
TRAFILATURA_PHASES = (
    ("utils", "load_html", "parsing the HTML (lxml)"),
    ("main_extractor", "extract_content", "its own main-content extraction"),
    ("htmlprocessing", "prune_unwanted_nodes", "boilerplate XPath expressions, wherever called"),
    ("external", "compare_extraction", "the readability (and jusText) extraction it compares with"),
    ("core", "determine_returnstring", "writing the text out"),
)
# Settings the small sample needs to pass prepare's checks; curation is FineWeb's.
E2E_OVERRIDES = dict(vocab_size=1000, seq_len=128, validation_fraction=0.0, num_validation_shards=0,
                     num_train_shards=2)


@dataclasses.dataclass(frozen=True)
class Page:
    corpus: str  # archive name without .tar.xz
    path: str  # path inside the archive
    html: str


@dataclasses.dataclass(frozen=True)
class Row:
    stage: str
    docs: int
    cpu_s: float
    wall_s: float
    megabytes: float  # UTF-8 input of the stage

    @property
    def docs_per_core_s(self) -> float:
        return self.docs / self.cpu_s if self.cpu_s else float("nan")

    @property
    def mb_per_s(self) -> float:
        return self.megabytes / self.cpu_s if self.cpu_s else float("nan")


def read_pages(archive: str, every: int, folders: Sequence[str] | None = None) -> list[Page]:
    """Every `every`-th .html page of `archive`, by path order; only in `folders` (e.g. en-US) if given."""
    corpus = archive.removesuffix(".tar.xz")
    with tarfile.open(os.path.join(CORPORA_DIR, archive)) as tar:
        members = sorted((m for m in tar.getmembers() if m.isfile() and m.name.endswith(".html")
                          and (folders is None or m.name.split("/")[1] in folders)), key=lambda m: m.name)
        return [Page(corpus, m.name, tar.extractfile(m).read().decode("utf-8", "replace"))
                for m in members[::every]]


def sample_pages(limit: int | None, every_page: bool = False) -> list[Page]:
    """The default sample (or, with `every_page`, all pages of the archives), or `limit` of its
    pages evenly spaced (deterministic)."""
    if not os.path.isdir(CORPORA_DIR):
        sys.exit(f"error: corpus folder {CORPORA_DIR} not found; it should hold {', '.join(a for a, _ in CORPORA)}")
    pages = [page for archive, every in CORPORA for page in read_pages(archive, 1 if every_page else every)]
    if limit is None or limit >= len(pages):
        return pages
    return [pages[i * len(pages) // limit] for i in range(limit)]


def megabytes(texts: Sequence[str]) -> float:
    return sum(len(t.encode("utf-8")) for t in texts) / 1e6


def timed(run: Callable[[], object]) -> tuple[float, float]:
    """(CPU s, wall s) of `run()`."""
    cpu, wall = time.process_time(), time.perf_counter()
    run()
    return time.process_time() - cpu, time.perf_counter() - wall


def per_document(stage: str, function: Callable[[str], object], texts: Sequence[str]) -> tuple[Row, list]:
    """`function` over every text, after one warm-up call (model loads, imports), and its outputs."""
    function(texts[0])
    text_stats.cache_clear()  # the filters share a per-string tokenization cache: time each cold
    outputs = []
    cpu_s, wall_s = timed(lambda: outputs.extend(function(t) for t in texts))
    return Row(stage, len(texts), cpu_s, wall_s, megabytes(texts)), outputs


def dedup_row(texts: Sequence[str], pages: Sequence[Page]) -> Row:
    """Exact + MinHash dedup (FineWeb settings, per source) of the extracted texts, in this process."""
    docs = [Document(p.path, p.corpus, p.path, t) for p, t in zip(pages, texts)]
    config = DedupConfig(scope="source", num_workers=1)
    with tempfile.TemporaryDirectory() as workdir:
        cpu_s, wall_s = timed(lambda: deduplicate(docs, workdir, config))
    return Row("exact + minhash dedup", len(docs), cpu_s, wall_s, megabytes(texts))


def end_to_end_row(pages: Sequence[Page], workers: int) -> tuple[Row, dict]:
    """prepare() with the FineWeb recipe on the pages written to a temp folder."""
    with tempfile.TemporaryDirectory() as tmp:
        for page in pages:
            path = os.path.join(tmp, "in", page.corpus, page.path)
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, "w", encoding="utf-8") as f:
                f.write(page.html)
        config = fineweb.get_config()
        config.update(E2E_OVERRIDES)
        config.num_workers, config.output_dir = workers, os.path.join(tmp, "out")
        config.inputs = tuple(os.path.join(tmp, "in", c) for c in sorted({p.corpus for p in pages}))
        start = time.perf_counter()
        report = prepare.prepare(config)
        wall_s = time.perf_counter() - start
    # CPU time of worker processes is not this process's: count the wall time on `workers` cores.
    row = Row(f"end to end, FineWeb recipe ({workers} workers)", len(pages), wall_s * workers, wall_s,
              megabytes([p.html for p in pages]))
    return row, report


def stage_rows(pages: Sequence[Page]) -> list[Row]:
    """One row per stage, each on the same input."""
    htmls = [p.html for p in pages]
    engines = sorted(extract.ENGINES, key=lambda name: name != extract.DEFAULT_ENGINE)  # the default first
    extractions = [per_document(f"extract ({name})", functools.partial(extract.html_to_text, engine=name), htmls)
                   for name in engines]
    extracted = extractions[0][1]  # the later stages see the default engine's text
    pairs = [(p, t) for p, t in zip(pages, extracted) if t and t.strip()]
    kept_pages, texts = [p for p, _ in pairs], [t for _, t in pairs]
    text_stages = {"langid (fastText lid.176)": langid.identify, "gopher_repetition": gopher_repetition,
                   "gopher_quality": gopher_quality, "c4_quality": c4_quality, "fineweb_quality": fineweb_quality,
                   "pii (scrub_pii)": pii.scrub_pii}
    rows = [row for row, _ in extractions] + [per_document(name, fn, texts)[0] for name, fn in text_stages.items()]
    return rows + [dedup_row(texts, kept_pages)]


def trafilatura_profile(htmls: Sequence[str]) -> str:
    """A note: the share of trafilatura's extraction time in each of its phases (cProfile, cumulative)."""
    profile = cProfile.Profile()
    profile.runcall(lambda: [extract.html_to_text(html, engine="trafilatura") for html in htmls])
    stats = pstats.Stats(profile).stats  # {(file, line, function): (calls, primitive calls, self s, cumulative s, _)}
    total = sum(entry[2] for entry in stats.values())

    def cumulative(module: str, function: str) -> float:
        return sum(entry[3] for (file, _, name), entry in stats.items()
                   if name == function and file.endswith(os.path.join("trafilatura", f"{module}.py")))
    shares = "; ".join(f"{what} {100 * cumulative(m, f) / total:.0f}%" for m, f, what in TRAFILATURA_PHASES)
    return (f"Where trafilatura's time goes (cProfile of the trafilatura row's extraction, {total:.1f} s with the "
            f"profiler's overhead; a phase counts what it calls, so phases can overlap): {shares}.")


def format_table(rows: Sequence[Row]) -> str:
    lines = ["| stage | docs | CPU s | wall s | docs/s per core | MB/s per core |",
             "|---|---:|---:|---:|---:|---:|"]
    lines += [f"| {r.stage} | {r.docs} | {r.cpu_s:.2f} | {r.wall_s:.2f} | {r.docs_per_core_s:.1f} | {r.mb_per_s:.2f} |"
              for r in rows]
    return "\n".join(lines)


def section(command: str, table: str, notes: Sequence[str], start: float) -> str:
    setting = (f"Machine: {cpu_model()}, {len(os.sched_getaffinity(0))} cores (os.sched_getaffinity). "
               f"{versions(PACKAGES)}.")
    return "\n".join(header(SECTION, command, setting, start) + [table, ""] + [f"- {n}" for n in notes]) + "\n"


def notes(pages: Sequence[Page], report: dict, busy_before: tuple[float, float], total_s: float) -> list[str]:
    kept = report["documents"]["kept"]
    per_corpus = ", ".join(f"{c}: {sum(p.corpus == c for p in pages)}" for c in sorted({p.corpus for p in pages}))
    return [
        f"Sample: {len(pages)} pages ({per_corpus}). Per-stage rows run in one process on the same input "
        "(extraction on HTML, the rest on the extracted text of pages that have one); MB/s is of that input.",
        f"End to end: prepare() with configs/data/fineweb.py ({', '.join(f'{k}={v}' for k, v in E2E_OVERRIDES.items())}"
        f" for the small sample), read + curate + tokenizer + shards; its CPU s is wall s x workers. "
        f"Overall {len(pages) / report['seconds']:.1f} docs/s (wall); prepare's own read_and_curate rate "
        f"{report['docs_per_second']:.1f} docs/s; documents kept: {kept} of {len(pages)}.",
        load_note(busy_before, total_s) + " Where it was, wall s above CPU s shows where it slowed a stage.",
        "datatrove, running the same FineWeb-style pipeline on the same corpora, is measured side by side in "
        "\"data_prep vs datatrove\" (benchmarks/datatrove_compare.py).",
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pages", type=int, default=None, help="pages to sample (default: the full sample)")
    parser.add_argument("--workers", type=int, default=len(os.sched_getaffinity(0)),
                        help="num_workers of the end-to-end run (default: every core)")
    parser.add_argument("--profile", action="store_true",
                        help="add where trafilatura's extraction time goes (one more pass, under cProfile)")
    args = parser.parse_args()
    start, busy_before = time.perf_counter(), busy_cpu_s()
    pages = sample_pages(args.pages)
    print(f"{len(pages)} pages, {megabytes([p.html for p in pages]):.1f} MB of HTML", flush=True)
    rows = stage_rows(pages)
    e2e, report = end_to_end_row(pages, args.workers)
    table = format_table(rows + [e2e])
    print(table)
    profile = [trafilatura_profile([p.html for p in pages])] if args.profile else []
    print("\n".join(profile))
    command = ("python benchmarks/data_prep_throughput.py" + (f" --pages {args.pages}" if args.pages else "")
               + f" --workers {args.workers}" + (" --profile" if args.profile else ""))
    all_notes = notes(pages, report, busy_before, time.perf_counter() - start) + profile
    write_section(section(command, table, all_notes, start), SECTION)


if __name__ == "__main__":
    main()
