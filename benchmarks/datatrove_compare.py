"""data_prep beside datatrove on the same HTML pages: throughput per stage and end to end, and filter agreement.

Run (from the repository root; datatrove comes with the bench extra, `pip install -e ".[bench]"`):

    python benchmarks/datatrove_compare.py [--pages N] [--workers 2] [--examples K]

Input: every .html page of ../shared/corpora/python-3.11-docs-html.tar.xz and
debian-handbook-html.tar.xz (3,832 pages), or --pages N of them evenly spaced, written
as .html files to a temp folder that both systems read.

The pipeline on both sides is FineWeb's without language ID (datatrove's fastText
model is downloaded at run time, so it cannot run offline) and without URL lists and
PII (no list ships; PII is not a filter): trafilatura extraction, Gopher repetition,
Gopher quality, C4 (no terminal-punctuation line rule, no bad words), FineWeb quality,
MinHash dedup (word 5-grams, 14 buckets x 8 hashes, 64-bit). Thresholds are the
published defaults on both sides. Trafilatura gets the same options on both sides
(favor precision, no trafilatura-internal dedup, our installed trafilatura).

- Per stage: each stage alone, in this process, on the same input (extraction on the
  HTML, each filter on our trafilatura text), after one warm-up call; CPU time is
  time.process_time, so "docs per CPU s" is documents/s per core.
- End to end: each system in a child process with --workers worker processes: ours is
  data_prep.curate.curate (read, stages, kept texts to JSONL; no tokenizer or shards),
  once with trafilatura (the FineWeb config) and once with resiliparse (our default
  engine); datatrove is LocalPipelineExecutor runs (read, extract, four filters,
  JsonlWriter; then MinHash stages 1-4). CPU s sums user+system time of the child and
  all its descendants, sampled from /proc every POLL_S seconds.
- Agreement: the per-stage filter runs give each system's keep/drop decision on
  identical text; the table counts them per filter, and the notes list the reasons
  of disagreements. --examples K prints K disagreeing documents per filter (not saved).

The tables are printed and replace the section "## data_prep vs datatrove" in BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import collections
import dataclasses
import functools
import importlib.util
import itertools
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Sequence

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)  # configs/ and benchmarks/ are not installed packages

from benchmarks.data_prep_throughput import Page, megabytes, sample_pages, timed  # noqa: E402
from benchmarks.report import (  # noqa: E402
    busy_cpu_s, cpu_model, header, load_note, process_tree, versions, write_section)
from configs.data import fineweb  # noqa: E402
from data_prep import corpora, curate, extract, langid, prepare  # noqa: E402
from data_prep.dedup import DedupConfig, deduplicate  # noqa: E402
from data_prep.document import Document  # noqa: E402
from data_prep.filters import c4_quality, fineweb_quality, gopher_quality, gopher_repetition  # noqa: E402
from data_prep.filters.fineweb import LINE_END_PUNCTUATION  # noqa: E402
from data_prep.filters.text_stats import text_stats  # noqa: E402
from data_prep.readers import Dropped  # noqa: E402
from data_prep.stats import Ledger  # noqa: E402

SECTION = "## data_prep vs datatrove"
PACKAGES = ("datatrove", "spacy", "trafilatura", "resiliparse", "datasketch", "numpy")
POLL_S = 0.1  # /proc sampling period for the CPU time of a child's process tree
OUR_STAGES = ("extract", "gopher_repetition", "gopher_quality", "c4", "fineweb_quality", "minhash_dedup")
FILTERS = ("gopher_repetition", "gopher_quality", "c4", "fineweb_quality")
# datatrove's Trafilatura step, set to our extract._trafilatura's options; a timeout well
# above any page's extraction time so that a busy machine drops no page on either side.
DATATROVE_TRAFILATURA = dict(favour_precision=True, deduplicate=False, timeout=60, include_tables=True)
SPEEDUP_TARGET, AGREEMENT_TARGET = 2.0, 0.99


def datatrove_minhash_config():
    """FineWeb's MinHash settings (datatrove's defaults: 5-grams, 14 x 8, 64-bit) with SHA-1 shingle
    hashes, as FineWeb was built: datatrove's xxhash option needs xxhash<4, our stack has xxhash 4."""
    from datatrove.pipeline.dedup.minhash import MinhashConfig
    from datatrove.utils.hashing import HashConfig

    return MinhashConfig(hash_config=HashConfig(precision=64, hash_fc="sha1"))


Decisions = dict[str, list[tuple[str | None, str | None]]]  # "filter / tokenizer" -> (ours, datatrove) per text


@dataclasses.dataclass(frozen=True)
class Timing:
    system: str
    stage: str
    docs: int  # documents in
    kept: int  # documents out (extraction: with a main text)
    cpu_s: float
    wall_s: float

    @property
    def docs_per_cpu_s(self) -> float:
        return self.docs / self.cpu_s if self.cpu_s else float("nan")


def fineweb_config(engine: str = "trafilatura"):
    """configs/data/fineweb.py with the compared stages and one dedup scope (datatrove has one)."""
    config = fineweb.get_config()
    config.stages, config.extract.engine, config.dedup.scope = OUR_STAGES, engine, None
    return config


# ---------------------------------------------------------------- the two systems' stages

# Our filters with a rule set to pick (gopher_quality and fineweb_quality, data_prep/filters).
RULE_SET_FILTERS = ("gopher_quality", "fineweb_quality")


def our_filters(rules: str = "fineweb") -> dict[str, Callable[[str], str | None]]:
    """Each filter with the FineWeb config's thresholds: text -> None (keep) or the reason.

    rules: "fineweb" (the config's default, as datatrove built FineWeb) or "datatrove" (as datatrove
    0.10 has them)."""
    config = fineweb_config()
    for name in RULE_SET_FILTERS:
        config[name].rules = rules
    return {"gopher_repetition": functools.partial(gopher_repetition, **config.gopher_repetition.to_dict()),
            "gopher_quality": functools.partial(gopher_quality, **config.gopher_quality.to_dict()),
            "c4": lambda text: c4_quality(text, **config.c4.to_dict()).reason,
            "fineweb_quality": functools.partial(fineweb_quality, **config.fineweb_quality.to_dict())}


def nltk_word_tokenizer():
    """NLTK's word_tokenize as a datatrove tokenizer, offline: the trained English punkt model is a
    download, so sentences are split by punkt with its untrained default parameters."""
    from datatrove.utils.word_tokenizers import WordTokenizer, strip_strings
    from nltk.tokenize import word_tokenize
    from nltk.tokenize.punkt import PunktSentenceTokenizer

    class OfflineNltkTokenizer(WordTokenizer):
        def __init__(self):
            super().__init__("en")
            self.punkt = PunktSentenceTokenizer()

        def word_tokenize(self, text: str) -> list[str]:
            return strip_strings([t for s in self.punkt.tokenize(text) for t in word_tokenize(s, preserve_line=True)])

        def sent_tokenize(self, text: str) -> list[str]:
            return strip_strings(self.punkt.tokenize(text))

        def span_tokenize(self, text: str) -> list[tuple[int, int]]:
            return list(self.punkt.span_tokenize(text))

    return OfflineNltkTokenizer()


def datatrove_filters(tokenizer: str = "spaCy") -> dict[str, object]:
    """datatrove's four filters as its FineWeb example sets them, splitting words with `tokenizer`:
    "spaCy" (datatrove 0.10's English default, spaCy's blank rules) or "NLTK" (what FineWeb used).

    FineWebQualityFilter gets FineWeb's five line-end characters: datatrove 0.10's default is a
    set of terminal marks of all scripts (FineWeb-2's)."""
    from datatrove.pipeline.filters import (C4QualityFilter, FineWebQualityFilter, GopherQualityFilter,
                                            GopherRepetitionFilter)
    from datatrove.utils.typeshelper import Languages

    language = {"spaCy": Languages.english, "NLTK": nltk_word_tokenizer()}[tokenizer]
    return {"gopher_repetition": GopherRepetitionFilter(language=language),
            "gopher_quality": GopherQualityFilter(language=language),
            "c4": C4QualityFilter(filter_no_terminal_punct=False, language=language),
            "fineweb_quality": FineWebQualityFilter(stop_chars=LINE_END_PUNCTUATION, language=language)}


def datatrove_verdict(step, text: str) -> str | None:
    """None if datatrove's filter `step` keeps `text`, else its reason."""
    from datatrove.data import Document as DatatroveDocument

    result = step.filter(DatatroveDocument(text=text, id=""))
    kept, reason = result if isinstance(result, tuple) else (result, None)
    return None if kept else reason or "dropped"


def clear_token_caches() -> None:
    """Both systems cache one text's tokens for the next filter: time each filter cold."""
    from datatrove.utils.text import split_into_parts

    text_stats.cache_clear()
    split_into_parts.cache_clear()


def timed_map(system: str, stage: str, function: Callable, inputs: Sequence) -> tuple[Timing, list]:
    """`function` over `inputs` in this process, after one warm-up call, and its outputs."""
    function(inputs[0])
    clear_token_caches()
    outputs: list = []
    cpu_s, wall_s = timed(lambda: outputs.extend(map(function, inputs)))
    kept = sum(o is None for o in outputs) if stage in FILTERS else sum(bool(o and o.strip()) for o in outputs)
    return Timing(system, stage, len(inputs), kept, cpu_s, wall_s), outputs


def our_minhash(texts: Sequence[str]) -> int:
    """Documents our MinHash dedup keeps, in this process."""
    docs = [Document(str(i), "web", str(i), t) for i, t in enumerate(texts)]
    with tempfile.TemporaryDirectory() as workdir:
        result = deduplicate(docs, workdir, DedupConfig(exact=False, num_workers=1))
    return len(docs) - len(result.removed)


def datatrove_minhash(texts: Sequence[str]) -> int:
    """Documents datatrove's MinHash stages 1-4 keep, one task each, in this process."""
    from datatrove.data import Document as DatatroveDocument
    from datatrove.pipeline.dedup.minhash import (MinhashDedupBuckets, MinhashDedupCluster, MinhashDedupFilter,
                                                  MinhashDedupSignature)

    config = datatrove_minhash_config()
    docs = [DatatroveDocument(text=t, id=str(i)) for i, t in enumerate(texts)]
    with tempfile.TemporaryDirectory() as tmp:
        sigs, buckets, removed = (os.path.join(tmp, name) for name in ("sigs", "buckets", "remove"))
        drain(MinhashDedupSignature(output_folder=sigs, config=config).run(iter(docs)))
        for bucket in range(config.num_buckets):
            drain(MinhashDedupBuckets(input_folder=sigs, output_folder=buckets, config=config)
                  .run(rank=bucket, world_size=config.num_buckets))
        drain(MinhashDedupCluster(input_folder=buckets, output_folder=removed, config=config).run())
        return sum(1 for _ in MinhashDedupFilter(input_folder=removed).run(iter(docs)))


def drain(result: Iterable | None) -> None:
    """Run a datatrove step whose `run` may be a generator."""
    for _ in result or ():
        pass


def stage_timings(pages: Sequence[Page]) -> tuple[list[Timing], Decisions, list[str]]:
    """Per-stage rows, each filter's (ours, datatrove) decisions per document, and the texts they judged."""
    from datatrove.pipeline.extractors import Trafilatura

    htmls = [p.html for p in pages]
    rows = []
    for engine in ("trafilatura", "resiliparse"):
        row, outputs = timed_map("data_prep", f"extract ({engine})",
                                 functools.partial(extract.html_to_text, engine=engine), htmls)
        rows.append(row)
        if engine == "trafilatura":
            texts = [t for t in outputs if t and t.strip()]
    rows.append(timed_map("datatrove", "extract (trafilatura)",
                          Trafilatura(**DATATROVE_TRAFILATURA).extract, htmls)[0])
    decisions = {}
    ours, theirs = our_filters(), datatrove_filters()
    for name in FILTERS:
        ours_row, ours_out = timed_map("data_prep", name, ours[name], texts)
        theirs_row, theirs_out = timed_map("datatrove", name, functools.partial(datatrove_verdict, theirs[name]),
                                           texts)
        rows += [ours_row, theirs_row]
        decisions[f"{name} / spaCy"] = list(zip(ours_out, theirs_out))
    for system, dedup in (("data_prep", our_minhash), ("datatrove", datatrove_minhash)):
        kept: list[int] = []
        cpu_s, wall_s = timed(lambda: kept.append(dedup(texts)))
        rows.append(Timing(system, "minhash dedup", len(texts), kept[0], cpu_s, wall_s))
    return rows, decisions, texts


def nltk_decisions(texts: Sequence[str], decisions: Decisions) -> Decisions:
    """Our decisions beside datatrove's filters splitting words with NLTK (untimed)."""
    theirs = datatrove_filters("NLTK")
    clear_token_caches()
    return {f"{name} / NLTK": [(ours, datatrove_verdict(theirs[name], text))
                               for (ours, _), text in zip(decisions[f"{name} / spaCy"], texts)] for name in FILTERS}


DATATROVE_RULES = ", rules=datatrove"


def datatrove_rules_decisions(texts: Sequence[str], decisions: Decisions) -> Decisions:
    """Our filters with rules="datatrove" beside datatrove's decisions on the same texts (untimed)."""
    ours = our_filters("datatrove")
    return {f"{name}{DATATROVE_RULES} / {tokenizer}": [(ours[name](text), theirs) for (_, theirs), text
                                                       in zip(decisions[f"{name} / {tokenizer}"], texts)]
            for tokenizer in ("spaCy", "NLTK") for name in RULE_SET_FILTERS}


# ---------------------------------------------------------------- end to end, in child processes

def run_ours(engine: str, input_dir: str, workdir: str, workers: int) -> int:
    """curate() over the input folders (one source each); writes the kept texts and returns their number."""
    config = fineweb_config(engine)
    sources = [corpora.resolve_input(os.path.join(input_dir, name)) for name in sorted(os.listdir(input_dir))]
    ledger = Ledger(prepare.source_counts(sources), 0)
    kept = 0
    with open(os.path.join(workdir, "kept.jsonl"), "w", encoding="utf-8") as out:
        for doc in curate.curate(sources, config, workdir, ledger, workers):
            out.write(json.dumps({"id": doc.id, "text": doc.text}) + "\n")
            kept += 1
    return kept


def run_datatrove(input_dir: str, workdir: str, workers: int) -> int:
    """datatrove's FineWeb example pipeline (without language ID), then its four MinHash stages."""
    from datatrove.executor import LocalPipelineExecutor
    from datatrove.pipeline.dedup.minhash import (MinhashDedupBuckets, MinhashDedupCluster, MinhashDedupFilter,
                                                  MinhashDedupSignature)
    from datatrove.pipeline.extractors import Trafilatura
    from datatrove.pipeline.readers import JsonlReader
    from datatrove.pipeline.readers.base import BaseDiskReader
    from datatrove.pipeline.writers import JsonlWriter

    class HtmlFileReader(BaseDiskReader):
        """One document per .html file, as data_prep reads a folder of pages."""

        name = "HTML files"

        def read_file(self, filepath: str):
            with self.data_folder.open(filepath, "r", encoding="utf-8") as f:
                doc = self.get_document_from_dict({"text": f.read(), "id": filepath}, filepath, 0)
            if doc:
                yield doc

    config = datatrove_minhash_config()
    path = functools.partial(os.path.join, workdir)

    def execute(pipeline: list, tasks: int, logs: str) -> None:
        LocalPipelineExecutor(pipeline, tasks=tasks, workers=min(workers, tasks), logging_dir=path("logs", logs)).run()

    execute([HtmlFileReader(input_dir, glob_pattern="**/*.html"), Trafilatura(**DATATROVE_TRAFILATURA),
             *datatrove_filters().values(), JsonlWriter(path("filtered"), compression=None)], workers, "filter")
    execute([JsonlReader(path("filtered"), compression=None),
             MinhashDedupSignature(output_folder=path("sigs"), config=config)], workers, "sigs")
    execute([MinhashDedupBuckets(input_folder=path("sigs"), output_folder=path("buckets"), config=config)],
            config.num_buckets, "buckets")
    execute([MinhashDedupCluster(input_folder=path("buckets"), output_folder=path("remove"), config=config)],
            1, "cluster")
    execute([JsonlReader(path("filtered"), compression=None), MinhashDedupFilter(input_folder=path("remove")),
             JsonlWriter(path("kept"), compression=None)], workers, "dedup")
    kept_dir = path("kept")
    return sum(sum(1 for _ in open(os.path.join(kept_dir, f))) for f in os.listdir(kept_dir))


def measured_child(argv: Sequence[str]) -> tuple[float, float, str]:
    """(CPU s of the child's process tree, wall s, its stdout); raises with its stderr if it fails."""
    seen: dict[tuple[int, str], int] = {}
    start = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    done = threading.Event()

    def sample() -> None:
        while not done.wait(POLL_S):
            seen.update({key: ticks for key, (_, ticks) in process_tree(proc.pid).items()})

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    stdout, stderr = proc.communicate()
    wall_s = time.perf_counter() - start
    done.set()
    sampler.join()
    if proc.returncode:
        raise RuntimeError(f"{' '.join(argv)} failed ({proc.returncode}):\n{stderr[-3000:]}")
    return sum(seen.values()) / os.sysconf("SC_CLK_TCK"), wall_s, stdout


def end_to_end(pages: Sequence[Page], workers: int) -> list[Timing]:
    """Each system's whole pipeline on the pages written as .html files, in a child process."""
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        input_dir = os.path.join(tmp, "in")
        for page in pages:
            path = os.path.join(input_dir, page.corpus, page.path)
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, "w", encoding="utf-8") as f:
                f.write(page.html)
        for system, label in (("ours-trafilatura", "data_prep, trafilatura (FineWeb config)"),
                              ("ours-resiliparse", "data_prep, resiliparse (default engine)"),
                              ("datatrove", "datatrove, trafilatura")):
            workdir = tempfile.mkdtemp(dir=tmp)
            print(f"end to end: {label} ...", flush=True)
            cpu_s, wall_s, out = measured_child([sys.executable, os.path.abspath(__file__), "--child", system,
                                                 "--input", input_dir, "--workdir", workdir,
                                                 "--workers", str(workers)])
            kept = json.loads(out.strip().splitlines()[-1])["kept"]
            rows.append(Timing(label, f"end to end ({workers} workers)", len(pages), kept, cpu_s, wall_s))
    return rows


def child_main(args: argparse.Namespace) -> None:
    if args.child == "datatrove":
        kept = run_datatrove(args.input, args.workdir, args.workers)
    else:
        kept = run_ours(args.child.removeprefix("ours-"), args.input, args.workdir, args.workers)
    print(json.dumps({"kept": kept}))


# ---------------------------------------------------------------- agreement and the report

def english(texts: Sequence[str]) -> list[bool]:
    """Which texts FineWeb's language stage keeps (ours, fastText lid.176: English above 0.65): the
    filters are English rules, and without language ID the sample's other languages reach them."""
    config = fineweb_config()
    keep = langid.language_filter(set(config.langid.languages), config.langid.min_score)
    return [not isinstance(keep(Document(str(i), "web", str(i), t)), Dropped) for i, t in enumerate(texts)]


def agreement_rows(decisions: Decisions, is_english: Sequence[bool]) -> list[str]:
    lines = ["| filter / datatrove's tokenizer | docs | agree | kept by both | removed by both "
             "| removed only by data_prep | removed only by datatrove | agree, English docs only |",
             "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for name, pairs in decisions.items():
        counts = collections.Counter((ours is None, theirs is None) for ours, theirs in pairs)
        agree = counts[True, True] + counts[False, False]
        en = [(o is None) == (t is None) for (o, t), e in zip(pairs, is_english) if e]
        lines.append(f"| {name} | {len(pairs)} | {agree / len(pairs):.2%} | {counts[True, True]} | "
                     f"{counts[False, False]} | {counts[False, True]} | {counts[True, False]} | "
                     f"{sum(en) / max(1, len(en)):.2%} of {len(en)} |")
    return lines


def disagreement_reasons(decisions: Decisions, top: int = 6) -> list[str]:
    """Per filter, the most common (data_prep reason / datatrove reason) pairs where they disagree."""
    notes = []
    for name, pairs in decisions.items():
        reasons = collections.Counter(f"{ours or 'kept'} / {theirs or 'kept'}" for ours, theirs in pairs
                                      if (ours is None) != (theirs is None))
        if reasons:
            notes.append(f"Disagreements of {name} (data_prep / datatrove): "
                         + "; ".join(f"{pair}: {n}" for pair, n in reasons.most_common(top)) + ".")
    return notes


def print_examples(decisions: Decisions, texts: Sequence[str], per_filter: int) -> None:
    """A few disagreeing documents per filter, to read (printed only, never written)."""
    for name, pairs in decisions.items():
        shown = [(i, o, t) for i, (o, t) in enumerate(pairs) if (o is None) != (t is None)][:per_filter]
        for i, ours, theirs in shown:
            print(f"--- {name} doc {i}: data_prep {ours or 'kept'}, datatrove {theirs or 'kept'}\n{texts[i][:600]!r}")


def throughput_table(rows: Sequence[Timing]) -> list[str]:
    lines = ["| system | stage | docs in | kept | CPU s | wall s | docs/s (wall) | docs per CPU s |",
             "|---|---|---:|---:|---:|---:|---:|---:|"]
    lines += [f"| {r.system} | {r.stage} | {r.docs} | {r.kept} | {r.cpu_s:.1f} | {r.wall_s:.1f} | "
              f"{r.docs / r.wall_s:.1f} | {r.docs_per_cpu_s:.1f} |" for r in rows]
    return lines


def verdicts(e2e: Sequence[Timing], decisions: Decisions, is_english: Sequence[bool]) -> list[str]:
    """The issue's two targets, as measured; agreement on every text and on the English ones."""
    *ours, theirs = e2e  # end_to_end runs datatrove last
    notes = [f"Target 1, end to end docs per CPU s: {r.system} is {r.docs_per_cpu_s / theirs.docs_per_cpu_s:.2f}x "
             f"datatrove's (target {SPEEDUP_TARGET:.0f}x); wall docs/s {r.wall_s and theirs.wall_s / r.wall_s:.2f}x."
             for r in ours]
    for rules, tokenizer in itertools.product(("fineweb", "datatrove"), ("spaCy", "NLTK")):
        suffix = DATATROVE_RULES if rules == "datatrove" else ""
        for texts, keep in (("texts", [True] * len(is_english)), ("English texts", is_english)):
            agreement = {}
            for name in FILTERS:
                pairs = decisions.get(f"{name}{suffix} / {tokenizer}") or decisions[f"{name} / {tokenizer}"]
                same = [(o is None) == (t is None) for (o, t), k in zip(pairs, keep) if k]
                agreement[name] = sum(same) / max(1, len(same))
            met = "met" if min(agreement.values()) >= AGREEMENT_TARGET else "not met"
            notes.append(f"Target 2, filter agreement of at least {AGREEMENT_TARGET:.0%} per filter on the "
                         f"{texts}, our rules {rules!r}, datatrove splitting words with {tokenizer}: {met} ("
                         + ", ".join(f"{name} {a:.2%}" for name, a in agreement.items()) + ").")
    return notes


def section(command: str, pages: Sequence[Page], rows: Sequence[Timing], agreement: Sequence[str],
            notes: Sequence[str], start: float) -> str:
    per_corpus = ", ".join(f"{c}: {sum(p.corpus == c for p in pages)}" for c in sorted({p.corpus for p in pages}))
    setting = (f"Machine: {cpu_model()}, {len(os.sched_getaffinity(0))} cores (os.sched_getaffinity). "
               f"{versions(PACKAGES)}.")
    lines = [*header(SECTION, command, setting, start),
             f"Input: {len(pages)} pages ({per_corpus}), {megabytes([p.html for p in pages]):.1f} MB of HTML.", "",
             *throughput_table(rows), "", *agreement, ""]
    return "\n".join(lines + [f"- {n}" for n in notes]) + "\n"


STANDING_NOTES = (
    "Same pipeline on both sides: trafilatura extraction, Gopher repetition, Gopher quality, C4 (lines without "
    "terminal punctuation kept, as FineWeb), FineWeb quality, MinHash (5-grams, 14 x 8, 64-bit, one dedup "
    "scope; datatrove hashes shingles with SHA-1, as FineWeb did, since its xxhash option needs xxhash<4). "
    "Language ID is left out of both: datatrove's LanguageFilter downloads its fastText model at run time; "
    "the agreement table's last column keeps the texts our langid stage calls English. No URL lists, no PII "
    "step, no bad-words list (datatrove's downloads its list).",
    "Offline configuration: in datatrove 0.10 the English word tokenizer of every filter and of MinHash is "
    "spaCy's blank `en` tokenizer (rules only, nothing downloaded); NLTK punkt is not used for English. "
    "data_prep tokenizes with one regex modeled on NLTK's word_tokenize (data_prep/filters/text_stats.py). "
    "The agreement table also runs datatrove's filters with NLTK's word_tokenize, the tokenizer FineWeb was "
    "built with, offline: punkt sentence splitting with untrained parameters (the trained model is a download).",
    "datatrove's Trafilatura step gets our options (favor_precision, deduplicate=False) and timeout=60 s "
    "instead of its 1 s default, which on a shared machine drops slow pages; it extracts in a sandbox "
    "process per task, whose CPU time the end-to-end rows count. trafilatura is ours (2.x); "
    "datatrove[processing] would pin trafilatura<1.12, so the bench extra installs datatrove without it.",
    "Per-stage rows run in this process; end-to-end rows run each system in a child process and count the "
    f"CPU time of its whole process tree (sampled from /proc every {POLL_S} s). data_prep end to end is "
    "curate() with the stages above, writing kept texts to JSONL (no tokenizer, no shards); datatrove's is "
    "five LocalPipelineExecutor runs writing JSONL, as its FineWeb example.",
    "data_prep's MinHash verifies candidate pairs (verify_threshold 0.72); datatrove keeps every bucket match.",
    "Why the filters disagree (read from --examples on the full sample): (1) word splitting: spaCy's rules "
    "split infix hyphens, underscores, `=` and `/` (`byte-code`, `__main__`, `x=y`), which NLTK and our regex "
    "keep in one token, so code-heavy pages get more punctuation tokens in datatrove: fewer tokens with a "
    "letter (gopher_below_alpha_threshold) and more repeated short n-grams (duplicated_5_n_grams); the NLTK "
    "rows show what is left without it. (2) Pages in Chinese and Japanese (the handbook's translations): we "
    "count one word per character (mean word length too short), spaCy one per run; FineWeb's language stage "
    "removes them first (last column). (3) datatrove 0.10 changed two filters since it built FineWeb: "
    "FineWebQualityFilter skips blank lines and keeps a value equal to a limit; GopherQualityFilter counts "
    "distinct stop words. data_prep keeps the FineWeb-era rules by default; `rules` = "
    "`datatrove` (config keys gopher_quality.rules and fineweb_quality.rules) follows datatrove 0.10; the rows "
    "marked rules=datatrove measure it. (4) C4 counts sentences with a regex, "
    "datatrove with spaCy's sentencizer or punkt: they differ on index pages of short items.",
    "Fixed on our side after this comparison: C4 now counts a line's unterminated tail as a sentence, as punkt "
    "and spaCy do (it removed 83 of 97 C4 disagreements on the full sample), and the typographic apostrophe is "
    "split as NLTK splits it.",
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pages", type=int, default=None, help="pages to sample (default: all 3,832)")
    parser.add_argument("--workers", type=int, default=2, help="worker processes of each end-to-end run")
    parser.add_argument("--examples", type=int, default=0, help="disagreeing documents to print per filter")
    parser.add_argument("--no-write", action="store_true", help="print only, leave BENCHMARKS.md as it is (trials)")
    parser.add_argument("--child", choices=("ours-trafilatura", "ours-resiliparse", "datatrove"),
                        help=argparse.SUPPRESS)
    parser.add_argument("--input", help=argparse.SUPPRESS)
    parser.add_argument("--workdir", help=argparse.SUPPRESS)
    args = parser.parse_args()
    missing = [name for name in ("datatrove", "spacy", "orjson") if importlib.util.find_spec(name) is None]
    if missing:
        sys.exit(f"error: {', '.join(missing)} not installed; install the bench extra: pip install -e '.[bench]'")
    if args.child:
        return child_main(args)
    start, busy_before = time.perf_counter(), busy_cpu_s()
    pages = sample_pages(args.pages, every_page=True)
    print(f"{len(pages)} pages, {megabytes([p.html for p in pages]):.1f} MB of HTML; per-stage runs ...", flush=True)
    rows, decisions, texts = stage_timings(pages)
    print("datatrove's filters with NLTK's tokenizer, for agreement ...", flush=True)
    decisions.update(nltk_decisions(texts, decisions))
    decisions.update(datatrove_rules_decisions(texts, decisions))
    is_english = english(texts)
    e2e = end_to_end(pages, args.workers)
    print("\n".join(throughput_table(rows + e2e)) + "\n\n" + "\n".join(agreement_rows(decisions, is_english)))
    if args.examples:
        print_examples(decisions, texts, args.examples)
    notes = [*verdicts(e2e, decisions, is_english), *disagreement_reasons(decisions), *STANDING_NOTES,
             load_note(busy_before, time.perf_counter() - start)]
    print("\n".join(f"- {n}" for n in notes))
    command = "python benchmarks/datatrove_compare.py" + (f" --pages {args.pages}" if args.pages else "") + \
        f" --workers {args.workers}"
    if not args.no_write:
        write_section(section(command, pages, rows + e2e, agreement_rows(decisions, is_english), notes, start),
                      SECTION)


if __name__ == "__main__":
    main()
