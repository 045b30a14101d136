"""The local runner: documents through `config.stages` on every core, in a fixed order.

    read -> [per-document stages, in worker processes] -> spill -> corpus stage
         -> [its verdict, then the next per-document stages] -> ... -> kept documents

Per-document stages run in worker processes on chunks of documents; results come
back in submission order, so the output does not depend on scheduling or the number
of workers. Workers fork from a forkserver: a clean process, started once, that has
imported data_prep and nothing of the caller (forking a process whose JAX runtime
threads are running can deadlock the child), so the pool is safe in a notebook or
under pytest. Each worker receives the stages pickled once, as small recipes, and
loads models on first use (see stage.py).

A corpus stage (dedup, quality) splits the run: the documents reaching it are
written to a work file ("spilled"), read by the corpus stage, then read again
through its verdict and the stages after it. A dedup verdict alone is a lookup,
applied in this process. Memory holds a few chunks per worker, not the corpus.
Every removed document is handed to the Ledger with its stage and reason.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import itertools
import json
import multiprocessing
import os
import time
from collections.abc import Iterable, Iterator, Sequence, Sized

import ml_collections
from tqdm import tqdm

from data_prep import corpora, stages, workers
from data_prep.document import Document, Dropped
from data_prep.stage import CorpusStage, Step, run_document
from data_prep.stats import Ledger, Removal, StageStats

READ = "read"
CHUNK_DOCS = 32  # documents per task sent to a worker
CHUNKS_IN_FLIGHT = 4  # per worker: enough to keep it busy, few enough to bound memory

_worker_steps: Sequence[Step] = ()  # set in each worker by _init_worker


def curate(sources: Sequence[corpora.InputSource], config: ml_collections.ConfigDict, workdir: str,
           ledger: Ledger, num_workers: int) -> Iterator[Document]:
    """The documents that every stage keeps, in input order; removals go to `ledger`."""
    docs: Iterable[Document] = _read(sources, config.max_document_bytes, ledger)
    pending: list[Step] = []
    workers = num_workers  # of the pending pass: 1 while it only looks documents up in a verdict
    for stage in stages.build(config):
        if summary := stage.summary():
            ledger.summaries[stage.name] = summary
        if not isinstance(stage, CorpusStage):
            pending.append((stage.name, stage))
            workers = num_workers
            continue
        docs = _spill(_apply(docs, pending, ledger, workers), os.path.join(workdir, f"before-{stage.name}.jsonl"))
        start = time.time()
        verdict = stage.local(docs, workdir, num_workers)
        ledger.stage(stage.name).seconds += time.time() - start
        ledger.corpus_reports[stage.name] = verdict.report
        pending = [(stage.name, functools.partial(stage.apply, verdict.decide))]
        workers = 1 if verdict.in_process else num_workers
    return _apply(docs, pending, ledger, workers)


def _read(sources: Sequence[corpora.InputSource], max_bytes: int, ledger: Ledger) -> Iterator[Document]:
    """Every source's documents; unreadable and oversized ones are removed at the `read` stage.

    Progress is counted in files (the count known up front), so it has an end and an ETA.
    """
    stats = ledger.stage(READ)
    parts = [(source, part) for source in sources for part in range(source.parts)]
    with tqdm(parts, desc=READ, unit=" files", mininterval=1) as progress:
        for source, part in progress:
            for result in source.read(part, max_bytes):
                ledger.sources[source.name].read += 1
                stats.docs_in += 1
                if isinstance(result, Dropped):
                    stats.removed[str(result.removed)] += 1
                    ledger.remove(Removal(result.id, source.name, "", str(result.removed), ""))
                    continue
                stats.docs_out += 1
                stats.chars_out += len(result.text)
                yield result


class _Spill:
    """Documents written to a JSONL work file, readable any number of times; its length is known,
    so the passes over it show progress with an end."""

    def __init__(self, path: str, count: int):
        self.path, self.count = path, count

    def __len__(self) -> int:
        return self.count

    def __iter__(self) -> Iterator[Document]:
        with open(self.path, encoding="utf-8") as f:
            for line in f:
                yield Document(**json.loads(line))


def _spill(docs: Iterable[Document], path: str) -> _Spill:
    count = 0
    with open(path, "w", encoding="utf-8") as f:
        for count, doc in enumerate(docs, start=1):
            f.write(json.dumps(dataclasses.asdict(doc), ensure_ascii=False) + "\n")
    return _Spill(path, count)


def _apply(docs: Iterable[Document], steps: Sequence[Step], ledger: Ledger,
           num_workers: int) -> Iterator[Document]:
    """`docs` through the stages' `steps`, chunk by chunk, in order; removals go to `ledger`."""
    if not steps:
        yield from docs
        return
    label = "+".join(name for name, _ in steps)
    total = len(docs) if isinstance(docs, Sized) else None  # known after a spill; the first pass counts files
    with (_chunk_runner(steps, num_workers) as run,
          tqdm(desc=label, total=total, unit=" docs", mininterval=1) as progress):
        for outcomes, chunk_stats in run(_chunks(docs)):
            progress.update(len(outcomes))
            for name, stats in chunk_stats.items():
                total = ledger.stage(name)
                total += stats
            for outcome in outcomes:
                if isinstance(outcome, Removal):
                    ledger.remove(outcome)
                else:
                    yield outcome


def _chunks(docs: Iterable[Document]) -> Iterator[list[Document]]:
    docs = iter(docs)
    while chunk := list(itertools.islice(docs, CHUNK_DOCS)):
        yield chunk


@contextlib.contextmanager
def _chunk_runner(steps: Sequence[Step], num_workers: int):
    """A function from chunks to their results in order: worker processes, or in-process for one.

    The forkserver imports data_prep once per run; a pass's workers fork from it and
    load their models on their first chunk. Measured with 2 workers and the FineWeb
    stages on 2 cores shared with other jobs (load 9, 2026-12-01): 3.4 s for a run's
    first pass, 0.9 s for each later one (spawn, which imports data_prep in every
    worker, took 5 to 6 s per pass). The FineWeb recipe starts one pool, as dedup
    verdicts apply in this process: seconds of a run that takes minutes. A worker that dies (out of memory, say) raises
    BrokenProcessPool here rather than hanging the run; a main process that dies (kill -9) takes its workers,
    and so the forkserver and resource tracker, with it within a second (workers.py).
    """
    if num_workers <= 1:
        _init_worker(steps)
        yield lambda chunks: map(_run_chunk, chunks)
        return
    # the server imports data_prep once; workers fork from it
    multiprocessing.get_context("forkserver").set_forkserver_preload([__name__])
    with workers.pool(num_workers, "forkserver", _init_worker, (steps,)) as pool:
        yield lambda chunks: workers.ordered(pool, _run_chunk, chunks, num_workers * CHUNKS_IN_FLIGHT)


def _init_worker(steps: Sequence[Step]) -> None:
    """Sets the worker's stages."""
    global _worker_steps
    _worker_steps = steps


def _run_chunk(chunk: list[Document]) -> tuple[list[Document | Removal], dict[str, StageStats]]:
    """Each document through the worker's stages; per-stage counts for the chunk."""
    counts = {name: StageStats() for name, _ in _worker_steps}
    return [run_document(doc, _worker_steps, counts) for doc in chunk], counts
