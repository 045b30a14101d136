"""The pipeline of prepare.py as an Apache Beam pipeline: the same stages, counts and bytes, on many workers.

    input files (one element each) -> read (documents keyed by their order in the input)
      -> per segment of config.stages: [corpus stage verdict] -> per-document stages
         (removed documents go aside with stage and reason, counted)
      -> split -> tokenizer (a combine of the train sample, trained once)
      -> shard by contiguous ranges of the kept order -> per shard: its texts in order, to a work file
      -> the counts, removed samples and shard layout, to a checkpoint                 (pipeline 1)
    the shards not yet written -> per shard: tokenize, pack, write its stats, then it  (pipeline 2)
      -> report.json, timings.json, removed_samples.jsonl, then metadata.json          (this process)

Every step is the local runner's own code: per-document stages as they are, corpus
stages in the Beam form each declares (data_prep/stage.py; dedup runs as shuffles,
dedup/beam.py), tokenizer.py, pack.py. Each document carries its order
key (source index, file index, position in the file), which stands in for the
local runner's sequential order wherever order matters: the first document of a
band group, removed samples, and which shard a document lands in, so the output
is byte for byte that of `prepare.prepare` on the same config.

A run is resumable as the local one is, with the same work folder in output_dir
(prepare.partial_name: named by the config's hash): pipeline 1 ends by writing its
checkpoint (prepare.CURATED_FILE) after every shard's texts and the tokenizer; each
shard is finished once it exists in output_dir (written under a temporary name,
renamed after its stats). A rerun of the same command skips pipeline 1 if its
checkpoint exists and writes only the missing shards. Within a pipeline, the
runner retries failed bundles itself (Dataflow: 4 times per bundle in batch).

Inputs are read by the workers at the paths the launching machine listed, so on
several machines they must be on a shared mount; output_dir may be any Beam
filesystem path (gs://, hdfs://).
"""

from __future__ import annotations

import bisect
import collections
import contextlib
import dataclasses
import functools
import io
import itertools
import json
import os
import pickle
import re
import shlex
import shutil
import tempfile
import time
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import apache_beam as beam
import ml_collections
import numpy as np
import sentencepiece as spm
from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems
from apache_beam.options.pipeline_options import PipelineOptions, StandardOptions
from apache_beam.runners.runner import create_runner

from data_prep import corpora, curate, mixture, pack, prepare, stages, tokenizer
from data_prep.beam_combine import Accumulate, sample_texts
from data_prep.dedup.beam import Order
from data_prep.document import Document, Dropped, Result
from data_prep.sampling import TRAIN, split_of
from data_prep.stage import CorpusStage, DocumentStage, Stage, run_document
from data_prep.stats import Ledger, Removal, StageStats
from pretrain_common import records
from pretrain_common.errors import ConfigError

REMOVED, STATS, COUNTS = "removed", "stats", "counts"  # tagged outputs beside the kept documents
ENCODE_BATCH = 256  # documents per SentencePiece call
# How Beam names the failed step in an error's message; a traceback given as text (a worker's); the start
# of an exception's line in one (its type, maybe dotted); and our ConfigError's there.
STEP_NAME = re.compile(r" ?\[while running '([^']+)'\]")
TRACEBACK = "Traceback (most recent call last):"
ERROR_TYPE = re.compile(r"^[A-Za-z_][\w.]*(: |$)")
REMOTE_CONFIG_ERROR = f"{ConfigError.__module__}.{ConfigError.__qualname__}: "
# Runners that cannot run this pipeline, and why (checked with Beam 2.77 on a dask.distributed LocalCluster).
REFUSED_RUNNERS = {"DaskRunner": "Beam's DaskRunner hands every consumer of a multi-output DoFn all of its outputs, "
                                 "and recomputes a side input in each task that reads it"}


def run(config: ml_collections.ConfigDict, beam_args: Sequence[str] = ("--runner=FnApiRunner",)) -> dict[str, Any]:
    """Runs the pipelines on the runner `beam_args` choose (default: in this process); returns the report.

    Resumable (see the module docstring): a rerun does only what an earlier run of this config left undone.
    """
    start = time.time()
    sources = prepare.checked_sources(config)
    counts = prepare.source_counts(sources)
    mix = prepare.mixture_of(config, counts)
    partial = _prepare_output_dir(config)
    options = PipelineOptions(list(beam_args))
    checkpoint = _join(partial, prepare.CURATED_FILE)
    if not FileSystems.exists(checkpoint):
        resume = "it runs pipeline 1 again (nothing of it is kept before its checkpoint)"
        with _stopped("1 (curation, tokenizer, shard texts)", resume), beam.Pipeline(options=options) as pipeline:
            _build(pipeline, config, sources, mix, partial)
    curated = pickle.loads(_read(checkpoint))
    names = [pack.shard_name(part, index, n) for part, n in curated["layout"]["shards"].items() for index in range(n)]
    missing = [name for name in names if not FileSystems.exists(_join(config.output_dir, name))]
    if missing:
        step, resume = f"2 (writing {len(missing)} shard{'s' * (len(missing) > 1)})", "it writes the shards still missing"
        with _stopped(step, resume), beam.Pipeline(options=options) as pipeline:
            _ = pipeline | "Shards" >> beam.Create(missing) | "WriteShards" >> beam.ParDo(_WriteShard(config, partial))
    _write_dataset_files(config, sources, mix, start, curated, partial)
    read_json = lambda name: json.loads(_read(_join(config.output_dir, name)))
    return prepare.joined_report(read_json(prepare.REPORT_FILE), read_json(prepare.TIMINGS_FILE))


@contextlib.contextmanager
def _stopped(pipeline: str, resume: str) -> Iterator[None]:
    """A pipeline whose step failed, as one line: the step and the cause Beam reports, and how to go on.

    Beam has already logged the step's failure with its traceback; it raises it again as the
    step's error type or a RuntimeError, with the step's name in the message, and from worker
    processes with their traceback as text. A ConfigError of a step is its own line, as in
    the local runner. Anything else (building the pipeline, Beam itself) keeps its traceback.
    """
    try:
        yield
    except ConfigError as error:  # found while building, or in a step in this process (Beam added its name)
        raise ConfigError(STEP_NAME.sub("", str(error)).strip()) from None
    except Exception as error:  # noqa: BLE001 (a step's error of any type: all end the run the same way)
        message = str(error)
        step = STEP_NAME.search(message)
        if not (step or TRACEBACK in message or isinstance(error, OSError)):
            raise
        cause = _cause(error)
        if cause.startswith(REMOTE_CONFIG_ERROR):  # a ConfigError in a worker process, come back as text
            raise ConfigError(cause[len(REMOTE_CONFIG_ERROR):]) from None
        in_step = f" in step {step.group(1)!r}" if step else ""
        raise ConfigError(f"Beam pipeline {pipeline} failed{in_step}: {cause}; fix the cause and run the same "
                          f"command again: {resume}") from None


def _cause(error: Exception) -> str:
    """The failed step's error as `Type: first line of its message`: from the exception itself, or from the
    last traceback in its message (a worker's, as text), without Beam's step names or its RuntimeError wrapper."""
    message = STEP_NAME.sub("", str(error)).strip()
    if TRACEBACK in message:  # frames are indented; the exception's line is the first after them that is not
        lines = message.rsplit(TRACEBACK, 1)[1].splitlines()
        cause = next((line for line in lines[1:] if line.strip() and not line[0].isspace()), lines[-1]).strip()
    else:
        cause = f"{type(error).__name__}: {message.splitlines()[0]}" if message else type(error).__name__
    if cause.startswith("RuntimeError: ") and ERROR_TYPE.match(cause[len("RuntimeError: "):]):
        cause = cause[len("RuntimeError: "):]  # Beam's wrapper around an error it could not re-raise as its type
    return cause if len(cause) <= 500 else cause[:500] + "..."


def parse_beam_options(text: str) -> list[str]:
    """`--beam_options="--runner=FnApiRunner --direct_num_workers=2"` to Beam's argument list.

    Options Beam cannot take (a bad value, a runner it does not know) are a ConfigError with Beam's
    reason; a runner that cannot run this pipeline (REFUSED_RUNNERS), one naming the one to use.
    """
    said = io.StringIO()
    try:
        args = shlex.split(text)
        options = PipelineOptions(args)
        with contextlib.redirect_stderr(said):
            options.get_all_options()  # parses every option's value: argparse exits on a bad one
        runner = options.view_as(StandardOptions).runner or ""
        refused = REFUSED_RUNNERS.get(runner.rpartition(".")[2])
        if runner and not refused:
            create_runner(runner)
    except SystemExit:
        reason = said.getvalue().strip().splitlines()[-1] if said.getvalue().strip() else "not Beam's options"
        raise ConfigError(f"--beam_options={text!r}: {reason.partition('error: ')[2] or reason}") from None
    except (ValueError, ImportError) as error:  # unbalanced quotes, an unknown runner, a runner's missing extra
        raise ConfigError(f"--beam_options={text!r}: {error}") from None
    if refused:
        raise ConfigError(f"--beam_options={text!r}: {refused}; on one machine use "
                          f"--runner=FnApiRunner --direct_running_mode=multi_processing --direct_num_workers=N, "
                          f"on a cluster DataflowRunner, FlinkRunner or SparkRunner (docs/data_prep.md)")
    return args


def _build(pipeline: beam.Pipeline, config: ml_collections.ConfigDict, sources: list[corpora.InputSource],
           mix: mixture.Mixture | None, partial: str) -> None:
    """Pipeline 1: curation, the tokenizer and each shard's texts into `partial`, then the checkpoint."""
    inputs = [(s, part) for s, source in enumerate(sources) for part in range(source.parts)]
    read = (pipeline | "Inputs" >> beam.Create(inputs)
            | "Spread" >> beam.Reshuffle()  # else a runner may fuse Create with Read: every file on one worker
            | "Read" >> beam.ParDo(_Read(sources, config.max_document_bytes)).with_outputs(REMOVED, STATS, COUNTS,
                                                                                         main="kept"))
    removed, stats, counts, reports = [read[REMOVED]], [read[STATS]], [read[COUNTS]], []
    docs = read.kept
    built = stages.build(config)
    summaries = {stage.name: summary for stage in built if (summary := stage.summary())}
    for index, (corpus_stage, after) in enumerate(_segments(built)):
        if corpus_stage:
            verdicts, report = corpus_stage.beam(docs)
            reports.append(report)
        else:
            verdicts = docs | "NoVerdict" >> beam.Map(lambda od: (*od, od[1]))
        out = verdicts | f"Stages{index} {'+'.join(stage.name for stage in after)}" >> beam.ParDo(
            _DocumentStages(corpus_stage, after)).with_outputs(REMOVED, STATS, main="kept")
        docs = out.kept
        removed.append(out[REMOVED])
        stats.append(out[STATS])
    placed = docs | "Split" >> beam.Map(lambda od: (*od, split_of(od[1].id, config.validation_fraction, config.seed)))
    counts.append(placed | "KeptCounts" >> beam.Map(lambda p: (("kept", p[1].source, p[2]), 1)))
    model = placed | "Tokenizer" >> _TrainTokenizer(config, partial)
    layout, texts = placed | "ShardTexts" >> _ShardTexts(config, mix, [source.name for source in sources], partial)
    removed = removed | "AllRemoved" >> beam.Flatten()
    counts.append(removed | "RemovedCounts" >> beam.Map(lambda r: (("removed", r[1].source, r[1].reason), 1)))
    sum_stats = Accumulate(StageStats, StageStats.__iadd__, StageStats.__iadd__)
    side = dict(
        counts=beam.pvalue.AsList(counts | "AllCounts" >> beam.Flatten() | "Count" >> beam.CombinePerKey(sum)),
        stats=beam.pvalue.AsDict(stats | "AllStats" >> beam.Flatten() | "SumStats" >> beam.CombinePerKey(sum_stats)),
        reports=beam.pvalue.AsDict(tuple(reports) | "AllReports" >> beam.Flatten(pipeline=pipeline)),
        samples=beam.pvalue.AsDict(removed | "Samples" >> _Samples(config.removed_samples_per_reason)),
        layout=beam.pvalue.AsSingleton(layout), texts=beam.pvalue.AsList(texts), model=beam.pvalue.AsSingleton(model))
    _ = (pipeline | "Finish" >> beam.Create([None])
         | "WriteCheckpoint" >> beam.Map(_write_checkpoint, partial, summaries, **side))


def _write_checkpoint(_, partial: str, summaries: dict[str, dict[str, Any]], counts: list,
                      stats: dict[str, StageStats], reports: dict[str, Any], samples: dict[str, list],
                      layout: dict[str, Any], texts: list, model: bytes) -> None:
    """Pipeline 1's last step, once every shard's texts and the tokenizer are written: what the report needs."""
    checkpoint = dict(summaries=summaries, counts=counts, stats=stats, reports=reports, samples=samples,
                      layout=layout)
    _write(_join(partial, prepare.CURATED_FILE), pickle.dumps(checkpoint))


def _segments(built: Sequence[Stage]) -> list[tuple[CorpusStage | None, list[DocumentStage]]]:
    """The stages cut at each corpus stage: (corpus stage or None, the per-document stages after it)."""
    segments: list[tuple[CorpusStage | None, list[DocumentStage]]] = [(None, [])]
    for stage in built:
        if isinstance(stage, CorpusStage):
            segments.append((stage, []))
        else:
            segments[-1][1].append(stage)
    return segments


class _Read(beam.DoFn):
    """One input file (or TFDS split) to its documents, keyed by order; unreadable and oversized ones removed."""

    def __init__(self, sources: list[corpora.InputSource], max_bytes: int):
        self.sources, self.max_bytes = sources, max_bytes
        self.read = beam.metrics.Metrics.counter("data_prep", "documents_read")  # progress in the runner's UI

    def process(self, element: tuple[int, int]) -> Iterator[Any]:
        source_index, file_index = element
        source = self.sources[source_index]
        for position, result in enumerate(source.read(file_index, self.max_bytes)):
            order = (source_index, file_index, position)
            self.read.inc()
            stats = StageStats(docs_in=1)
            yield beam.pvalue.TaggedOutput(COUNTS, (("read", source.name, ""), 1))
            if isinstance(result, Dropped):
                stats.removed[str(result.removed)] += 1
                yield beam.pvalue.TaggedOutput(REMOVED, (order, Removal(result.id, source.name, "",
                                                                        str(result.removed), "")))
            else:
                stats.docs_out, stats.chars_out = 1, len(result.text)
                yield order, result
            yield beam.pvalue.TaggedOutput(STATS, (curate.READ, stats))


class _DocumentStages(beam.DoFn):
    """A corpus stage's verdict (when given), then per-document stages, as the local runner applies them."""

    def __init__(self, corpus_stage: CorpusStage | None, after: Sequence[DocumentStage]):
        self.corpus_stage, self.after = corpus_stage, list(after)

    def process(self, element: tuple[Order, Document, Result]) -> Iterator[Any]:
        order, doc, verdict = element
        steps = [(stage.name, stage) for stage in self.after]
        if self.corpus_stage:
            steps.insert(0, (self.corpus_stage.name, functools.partial(self.corpus_stage.apply, lambda _: verdict)))
        counts = {name: StageStats() for name, _ in steps}
        outcome = run_document(doc, steps, counts)
        for name, stats in counts.items():
            if stats.docs_in:
                yield beam.pvalue.TaggedOutput(STATS, (name, stats))
        if isinstance(outcome, Removal):
            yield beam.pvalue.TaggedOutput(REMOVED, (order, outcome))
        else:
            yield order, outcome


class _Samples(beam.PTransform):
    """(order, Removal) -> (reason, the first `n` removals of that reason in input order)."""

    def __init__(self, n: int):
        super().__init__()
        self.n = n

    def expand(self, removed):
        by_reason = removed | beam.Map(lambda r: (r[1].reason, r))
        if not self.n:
            return by_reason | beam.Filter(lambda _: False)
        return by_reason | beam.combiners.Top.SmallestPerKey(self.n, key=lambda r: r[0])


class _TrainTokenizer(beam.PTransform):
    """(order, doc, split) -> the bytes of tokenizer.model, trained once on the train split's hash sample
    and written to the work folder `partial`."""

    def __init__(self, config: ml_collections.ConfigDict, partial: str):
        super().__init__()
        self.config, self.partial = config, partial

    def expand(self, placed):
        c = self.config
        return (placed | beam.Filter(lambda p: p[2] == TRAIN) | beam.Map(lambda p: (p[1].id, p[1].text))
                | sample_texts(c.tokenizer_sample_bytes, c.seed)
                | beam.Map(_train_tokenizer, c, self.partial))


def _train_tokenizer(texts: list[str], config: ml_collections.ConfigDict, partial: str) -> bytes:
    """Trains as prepare.py does (or takes config.tokenizer_model), writes tokenizer.model to `partial`;
    returns its bytes."""
    num_threads = config.num_workers or len(os.sched_getaffinity(0))
    with tempfile.TemporaryDirectory() as work:
        path = config.tokenizer_model
        if not path:
            lines = tokenizer.training_lines(texts, config.tokenizer_max_lines)
            path = tokenizer.train_tokenizer(lines, work, config.vocab_size, num_threads)
        with open(path, "rb") as f:
            model = f.read()
    _write(_join(partial, tokenizer.TOKENIZER_FILE), model)
    return model


class _ShardTexts(beam.PTransform):
    """(order, doc, split) -> (the layout, the names of the shards whose texts were written to `partial`).

    A document's shard follows from its rank in its part's kept order: per (part,
    file) counts give each file's first rank, and the documents of one file are
    ranked by position; shard i takes ranks [i n / k, (i + 1) n / k) as in prepare.py.
    """

    def __init__(self, config: ml_collections.ConfigDict, mix: mixture.Mixture | None, names: list[str],
                 partial: str):
        super().__init__()
        self.config, self.mix, self.names, self.partial = config, mix, names, partial

    def expand(self, placed):
        by_file = placed | beam.Map(_by_file, self.mix)
        layout = (by_file | beam.combiners.Count.PerKey() | beam.combiners.ToList()
                  | beam.Map(_layout, self.config, self.mix, self.names))
        written = (by_file | "ByFile" >> beam.GroupByKey()
                   | beam.FlatMap(_assign_shards, beam.pvalue.AsSingleton(layout))
                   | "ByShard" >> beam.GroupByKey()
                   | beam.Map(_write_texts, beam.pvalue.AsSingleton(layout), self.partial))
        return layout, written


def _by_file(placed: tuple[Order, Document, str], mix: mixture.Mixture | None
             ) -> tuple[tuple[str, int, int], tuple[Order, str]]:
    """A kept document's (order, text), keyed by its part (prepare.part_name) and input file."""
    order, doc, split = placed
    part = prepare.part_name(split, doc.source, mix, doc.metadata.get(mixture.BUCKET_KEY))
    return (part, *order[:2]), (order, doc.text)


def _layout(file_counts: list[tuple[tuple[str, int, int], int]], config: ml_collections.ConfigDict,
            mix: mixture.Mixture | None, names: list[str]) -> dict[str, Any]:
    """Each part's documents and shards, and each (part, file)'s first rank in its part."""
    counts, offsets = collections.Counter(), {}
    for key, count in sorted(file_counts):
        offsets[key] = counts[key[0]]
        counts[key[0]] += count
    kept = prepare.kept_parts(counts, names, mix)
    shards = prepare.num_shards(kept, config, mix)
    prepare.check_shardable(kept, shards)
    sizes = {part: prepare.shard_sizes(kept[part], shards[part]) for part in kept}
    return {"kept": kept, "shards": shards, "offsets": offsets,
            "starts": {part: list(itertools.accumulate(s, initial=0)) for part, s in sizes.items()}}


def _assign_shards(group: tuple[tuple[str, int, int], Iterable[tuple[Order, str]]], layout: dict[str, Any]
                   ) -> Iterator[tuple[tuple[str, int], tuple[Order, str]]]:
    key, docs = group
    part, starts = key[0], layout["starts"][key[0]]
    for rank, doc in enumerate(sorted(docs, key=lambda d: d[0]), start=layout["offsets"][key]):
        yield (part, bisect.bisect_right(starts, rank) - 1), doc


def _write_texts(shard: tuple[tuple[str, int], Iterable[tuple[Order, str]]], layout: dict[str, Any],
                partial: str) -> str:
    """One shard's texts, in order, one JSON string a line, to `partial`; returns the shard's name."""
    (part, index), docs = shard
    name = pack.shard_name(part, index, layout["shards"][part])
    with _created(_join(partial, name + ".jsonl")) as f:
        for _, text in sorted(docs, key=lambda d: d[0]):
            f.write(json.dumps(text, ensure_ascii=False).encode("utf-8") + b"\n")
    return name


class _WriteShard(beam.DoFn):
    """Pipeline 2, per shard name: its texts from `partial` tokenized, packed, its stats saved, then the shard."""

    def __init__(self, config: ml_collections.ConfigDict, partial: str):
        self.config, self.partial = config, partial
        self.written = beam.metrics.Metrics.counter("data_prep", "shards_written")

    def setup(self) -> None:
        self.sp = spm.SentencePieceProcessor(model_proto=_read(_join(self.partial, tokenizer.TOKENIZER_FILE)))

    def process(self, name: str) -> None:
        with (FileSystems.open(_join(self.partial, name + ".jsonl"), compression_type=CompressionTypes.UNCOMPRESSED)
              as f, tempfile.TemporaryDirectory() as work):
            texts = (json.loads(line) for line in f)
            local = os.path.join(work, name)
            stats = pack.write_shard(local, self._encode(texts), self.config.seq_len)
            _write(_join(self.partial, name + ".json"), json.dumps(dataclasses.asdict(stats)).encode("utf-8"))
            with open(local, "rb") as shard, _created(_join(self.config.output_dir, name)) as out:
                shutil.copyfileobj(shard, out)
        self.written.inc()

    def _encode(self, texts: Iterator[str]) -> Iterator[np.ndarray]:
        for batch in iter(lambda: list(itertools.islice(texts, ENCODE_BATCH)), []):
            for ids in self.sp.encode(batch, add_eos=True):
                yield np.asarray(ids, dtype=np.int32)


def _write_dataset_files(config: ml_collections.ConfigDict, sources: list[corpora.InputSource],
                         mix: mixture.Mixture | None, start: float, curated: dict[str, Any], partial: str) -> None:
    """The end, in this process: the ledger from pipeline 1's checkpoint and the shards' stats, then the
    report files, the tokenizer, the work folder removed, and metadata.json last."""
    ledger = Ledger(prepare.source_counts(sources), config.removed_samples_per_reason)
    for (kind, source, key), n in curated["counts"]:
        counted = ledger.sources[source]
        if kind == "read":
            counted.read = n
        else:
            getattr(counted, kind)[key] = n
    ledger.stages.update(curated["stats"])
    ledger.summaries.update(curated["summaries"])
    ledger.corpus_reports.update(curated["reports"])
    ledger.samples.update({reason: [removal for _, removal in sorted(s, key=lambda r: r[0])]
                           for reason, s in curated["samples"].items()})
    parts = {}
    for part in prepare.part_names([s.name for s in sources], mix):
        if n := curated["layout"]["shards"].get(part):  # as prepare.py: parts in split, source and bucket order
            names = [pack.shard_name(part, index, n) for index in range(n)]
            total = sum((pack.PackStats(**json.loads(_read(_join(partial, name + ".json")))) for name in names),
                        pack.PackStats())
            parts[part] = records.SplitInfo(names, total.documents, total.sequences, total.tokens)
    model = _read(_join(partial, tokenizer.TOKENIZER_FILE))
    report, metadata = prepare.report_and_metadata(config, sources, ledger, parts, mix,
                                                   {"total": time.time() - start},
                                                   spm.SentencePieceProcessor(model_proto=model))
    for name, data in {**prepare.report_files(report, ledger), tokenizer.TOKENIZER_FILE: model}.items():
        _write(_join(config.output_dir, name), data)
    _delete_matching([partial, _join(partial, "*")])
    metadata_json = json.dumps(dataclasses.asdict(metadata), indent=2, sort_keys=True)  # as records.write_metadata
    _write(_join(config.output_dir, records.METADATA_FILE), metadata_json.encode("utf-8"))


def _prepare_output_dir(config: ml_collections.ConfigDict) -> str:
    """prepare.check_output_dir, then the work folder of this config: kept when resuming, else everything
    stale goes (other configs' work folders, shards, a replaced dataset's metadata.json)."""
    output_dir = config.output_dir
    finished = prepare.check_output_dir(config, FileSystems.exists)
    partial = _join(output_dir, prepare.partial_name(config))
    if finished or config.overwrite or not _matching(_join(partial, "*")):
        prefix = _join(output_dir, prepare.PARTIAL_PREFIX)
        stale = [prefix + "*", prefix + "*/*", _join(output_dir, "*.array_record")]
        _delete_matching(stale + [_join(output_dir, records.METADATA_FILE)] if finished else stale)
    if not FileSystems.exists(output_dir):
        try:
            FileSystems.mkdirs(output_dir)
        except OSError as error:  # a parent that is a file, no permission (Beam's message carries the cause)
            raise ConfigError(f"config.output_dir={output_dir!r} cannot be made: {error}") from None
    return partial


def _matching(pattern: str) -> list[str]:
    """The paths a glob pattern matches on its filesystem (none is not an error)."""
    return [m.path for result in FileSystems.match([pattern]) for m in result.metadata_list]


def _delete_matching(patterns: Sequence[str]) -> None:
    """Deletes what each pattern matches, in turn: a local folder takes its files with it, so the pattern for
    them then matches nothing; an object store (gs://) has files only."""
    for pattern in patterns:
        if paths := _matching(pattern):
            FileSystems.delete(paths)


def _join(folder: str, name: str) -> str:
    return FileSystems.join(folder, name)


@contextlib.contextmanager
def _created(path: str):
    """A file on any Beam filesystem, written under a temporary name and renamed once complete."""
    with FileSystems.create(path + ".tmp", compression_type=CompressionTypes.UNCOMPRESSED) as f:
        yield f
    FileSystems.rename([path + ".tmp"], [path])


def _write(path: str, data: bytes) -> None:
    with _created(path) as f:
        f.write(data)


def _read(path: str) -> bytes:
    with FileSystems.open(path, compression_type=CompressionTypes.UNCOMPRESSED) as f:
        return f.read()
