"""The pipeline: input files to curated documents, a tokenizer, and packed, sharded token sequences.

    read -> config.stages (curate.py: filters on all cores, corpus-level dedup)
         -> split by document -> train tokenizer (train split) -> tokenize (all cores)
         -> pack -> shards + metadata.json + report.json + timings.json + removed_samples.jsonl

Two passes. The first reads and curates every document once, accounts for it (kept,
or removed with its stage and reason), writes the kept texts of each split to a
work folder and samples the tokenizer's training text. The second tokenizes those
texts and packs them. Knowing each split's size before packing makes shards
contiguous, equal ranges of documents.

With a source mixture (config.mixture, see mixture.py) the train split is packed
per source (per source and bucket with the upsample stage: a mixture component each,
empty buckets left out): the num_train_shards are shared out in proportion to the
components' kept documents, at least one each (so never fewer than the components)
and none beyond a component's documents (see `_share_out`). metadata.json gives each
component's shards and sampling weight; validation stays one split over all sources,
so its loss is comparable across mixtures.

A run is resumable. Its work files, tokenizer and shard stats go to a folder in
output_dir named by the config's hash (PARTIAL_PREFIX), so a rerun with another
config starts over. Pass 1 with the tokenizer is one step (CURATED_FILE marks it
done), each shard another (its atomic rename marks it done); a rerun with the same
config skips finished steps and writes the same bytes. metadata.json is written
last: with it, output_dir holds a finished dataset, replaced only with overwrite.
"""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import functools
import glob
import hashlib
import itertools
import json
import os
import pickle
import shutil
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

import ml_collections
import sentencepiece as spm
from tqdm import tqdm

from data_prep import corpora, curate, mixture, pack, provenance, stages, tokenizer, workers

from data_prep.sampling import TRAIN, VALIDATION, HashSample, split_of
from data_prep.stages import upsample
from data_prep.stats import Ledger, SourceCounts
from pretrain_common import records
from pretrain_common.errors import ConfigError

SPLITS = (TRAIN, VALIDATION)
REPORT_FILE = "report.json"  # the counts: a resumed run writes the same bytes as an uninterrupted one
TIMINGS_FILE = "timings.json"  # where the run wrote, how long it and each stage took
SAMPLES_FILE = "removed_samples.jsonl"
RUN_KEYS = ("output_dir", "seconds", "timings", "docs_per_second")  # of a report: in TIMINGS_FILE
PARTIAL_PREFIX = ".partial-"  # + the config hash: an unfinished run's work files, tokenizer and shard stats
CURATED_FILE = "curated.pkl"  # the ledger and timings of pass 1, saved once it and the tokenizer are done

__all__ = ["ConfigError", "REPORT_FILE", "SAMPLES_FILE", "TIMINGS_FILE", "check_output_dir", "check_shardable",
           "joined_report", "kept_parts", "mixture_of", "num_shards", "part_name", "part_names", "partial_name",
           "prepare", "report_and_metadata", "report_files", "shard_sizes", "source_counts"]


def prepare(config: ml_collections.ConfigDict) -> dict[str, Any]:
    """Runs the pipeline (see the module docstring) and returns the report it wrote.

    Resumable: work goes to a folder in output_dir named by the config's hash; a rerun
    with the same config reuses the curation pass, the tokenizer and finished shards.
    """
    start = time.time()
    sources = checked_sources(config)
    ledger = Ledger(source_counts(sources), config.removed_samples_per_reason)
    mix = mixture_of(config, ledger.sources)
    num_workers = config.num_workers or len(os.sched_getaffinity(0))
    partial = _prepare_output_dir(config)
    ledger, timings = _curated(sources, config, ledger, mix, partial, num_workers)
    ledger.check()
    kept = kept_parts(ledger.parts, ledger.sources, mix)
    shards = num_shards(kept, config, mix)
    model_path = os.path.join(partial, tokenizer.TOKENIZER_FILE)
    parts = {part: _write_split(part, partial, kept[part], shards[part], model_path, config, num_workers)
             for part in kept if shards[part]}
    sp = tokenizer.load_tokenizer(model_path)
    with open(model_path, "rb") as f:  # a copy: the work folder keeps its own until the run is complete
        _write_atomically(os.path.join(config.output_dir, tokenizer.TOKENIZER_FILE), f.read())
    timings["total"] = time.time() - start  # of this run: a resumed one reports its own time
    report, metadata = report_and_metadata(config, sources, ledger, parts, mix, timings, sp)
    for name, data in report_files(report, ledger).items():
        _write_atomically(os.path.join(config.output_dir, name), data)
    shutil.rmtree(partial)
    records.write_metadata(config.output_dir, metadata)  # last: its presence means complete
    return report


def report_and_metadata(config: ml_collections.ConfigDict, sources: list[corpora.InputSource], ledger: Ledger,
                        parts: dict[str, records.SplitInfo], mix: mixture.Mixture | None, timings: dict[str, float],
                        sp: spm.SentencePieceProcessor) -> tuple[dict[str, Any], records.DatasetMetadata]:
    """A finished run's report and metadata, from its ledger and packed parts (both runners call this).

    `timings` has the run's "total" seconds; documents per second are over
    "read_and_curate" where the runner times that apart.
    """
    documents = ledger.check()
    splits, mixed = _mix(parts, mix, list(ledger.sources))
    sources_json = {name: c.to_json() for name, c in ledger.sources.items()}
    report = {"output_dir": config.output_dir, "seconds": timings["total"], "timings": timings,
              "docs_per_second": documents["input"] / timings.get("read_and_curate", timings["total"]),
              "documents": documents, "stages": _stage_reports(config.stages, ledger),
              "sources": sources_json, "splits": {s: dataclasses.asdict(i) for s, i in splits.items()},
              "mixture": {split: mixture.report(infos, mix) for split, infos in mixed.items()}}
    metadata = records.DatasetMetadata(
        seq_len=config.seq_len, vocab_size=sp.vocab_size(), eos_id=sp.eos_id(), bos_id=sp.bos_id(),
        tokenizer=tokenizer.TOKENIZER_FILE, splits=splits, sources=sources_json, mixture=mixed,
        provenance=provenance.record(config, sources))
    return report, metadata


def report_files(report: dict[str, Any], ledger: Ledger) -> dict[str, bytes]:
    """report.json, timings.json and removed_samples.jsonl, by file name.

    The report's counts and its timings go to two files, so that report.json, like
    the shards, has the same bytes whether the run was resumed or not; and wherever
    the dataset was written (`output_dir` is in timings.json).
    """
    counts = {key: value for key, value in report.items() if key not in RUN_KEYS}
    counts["stages"] = [{key: value for key, value in stage.items() if key != "seconds"} for stage in report["stages"]]
    timings = {**{key: report[key] for key in RUN_KEYS},
               "stage_seconds": {stage["stage"]: stage["seconds"] for stage in report["stages"]}}
    return {REPORT_FILE: json.dumps(counts, indent=2).encode("utf-8"),
            TIMINGS_FILE: json.dumps(timings, indent=2).encode("utf-8"),
            SAMPLES_FILE: "".join(ledger.sample_lines()).encode("utf-8")}


def joined_report(counts: dict[str, Any], timings: dict[str, Any]) -> dict[str, Any]:
    """The report that `report_files` wrote as report.json (`counts`) and timings.json (`timings`)."""
    stages = [{**stage, "seconds": timings["stage_seconds"][stage["stage"]]} for stage in counts["stages"]]
    return {**{key: timings[key] for key in RUN_KEYS}, **counts, "stages": stages}


def checked_sources(config: ml_collections.ConfigDict) -> list[corpora.InputSource]:
    """The config's inputs, once the checks that need no data pass: a bad config fails before any work."""
    if not config.inputs:
        raise ConfigError("config.inputs is empty: give folders, files or corpus names to read")
    _check_splits(config)
    stages.check(config)
    if config.tokenizer_model:
        tokenizer.check_model(config.tokenizer_model)
    return [corpora.resolve_input(spec) for spec in config.inputs]


def _check_splits(config: ml_collections.ConfigDict) -> None:
    """Validation documents exactly when there are validation shards, and at least one train shard."""
    fraction, shards = config.validation_fraction, config.num_validation_shards
    if not 0 <= fraction < 1:
        raise ConfigError(f"config.validation_fraction={fraction} is not in [0, 1)")
    if config.num_train_shards < 1:
        raise ConfigError(f"config.num_train_shards={config.num_train_shards}: the train split needs a shard")
    if (fraction > 0) != (shards > 0):
        raise ConfigError(f"config.validation_fraction={fraction} with config.num_validation_shards={shards}: "
                          f"set num_validation_shards=0 when validation_fraction is 0, else at least 1")


def _curated(sources: list[corpora.InputSource], config: ml_collections.ConfigDict, ledger: Ledger,
             mix: mixture.Mixture | None, partial: str, num_workers: int) -> tuple[Ledger, dict[str, float]]:
    """Pass 1 and the tokenizer, or what an earlier run of this config saved of them.

    Saved (pickled) only once the work files and tokenizer.model are complete, so a
    crash before that redoes the whole pass: the tokenizer sample is not kept on disk.
    """
    checkpoint = os.path.join(partial, CURATED_FILE)
    if os.path.exists(checkpoint):
        with open(checkpoint, "rb") as f:
            return pickle.load(f)
    start = time.time()
    texts = {part: os.path.join(partial, f"{part}.jsonl") for part in part_names(ledger.sources, mix)}
    with tempfile.TemporaryDirectory(dir=partial, prefix=".work-") as work, _stopped("curating the inputs", config):
        sample = _read_and_split(sources, config, texts, ledger, work, num_workers, mix)
    kept = kept_parts(ledger.parts, ledger.sources, mix)
    check_shardable(kept, num_shards(kept, config, mix))
    timings = {"read_and_curate": time.time() - start}
    if config.tokenizer_model:
        shutil.copyfile(config.tokenizer_model, os.path.join(partial, tokenizer.TOKENIZER_FILE))
    else:
        lines = tokenizer.training_lines(sample.texts(), config.tokenizer_max_lines)
        tokenizer.train_tokenizer(lines, partial, config.vocab_size, num_workers)
    timings["train_tokenizer"] = time.time() - start - timings["read_and_curate"]
    _write_atomically(checkpoint, pickle.dumps((ledger, timings)))
    return ledger, timings


def _write_atomically(path: str, data: bytes) -> None:
    """Under a temporary name first: a crash never leaves half a file under `path`."""
    with open(path + ".tmp", "wb") as f:
        f.write(data)
    os.replace(path + ".tmp", path)


def _stage_reports(names: tuple[str, ...], ledger: Ledger) -> list[dict[str, Any]]:
    """Per stage, in pipeline order: counts in and out, removals, and what it tallied."""
    reports = []
    for name in (curate.READ, *names):
        report = {"stage": name, **ledger.stage(name).to_json()}
        if name in ledger.summaries:
            report["built"] = ledger.summaries[name]
        if name in ledger.corpus_reports:
            report["corpus_pass"] = ledger.corpus_reports[name]
        reports.append(report)
    return reports


def source_counts(sources: list[corpora.InputSource]) -> dict[str, SourceCounts]:
    counts = {}
    for source in sources:
        if source.name in counts:
            raise ConfigError(f"two inputs are named {source.name!r}: name them apart as name=path")
        counts[source.name] = SourceCounts(input=source.spec, files=len(source.files))
    return counts


def _prepare_output_dir(config: ml_collections.ConfigDict) -> str:
    """The work folder of this config in output_dir: kept when resuming, else everything stale is removed.

    A finished dataset (metadata.json) is replaced only with config.overwrite; an
    unfinished one is resumed if its config matches, else started over.
    """
    output_dir = config.output_dir
    finished = check_output_dir(config, os.path.exists)
    try:
        os.makedirs(output_dir, exist_ok=True)
    except OSError as error:  # a parent that is a file, no permission, a read-only filesystem
        raise ConfigError(f"config.output_dir={output_dir!r} cannot be made: {error.strerror}") from None
    partial = os.path.join(output_dir, partial_name(config))
    if finished or config.overwrite or not os.path.isdir(partial):
        for stale in glob.glob(os.path.join(output_dir, PARTIAL_PREFIX + "*")):
            shutil.rmtree(stale)
        for stale in glob.glob(os.path.join(output_dir, "*.array_record")):
            os.remove(stale)
        with contextlib.suppress(FileNotFoundError):
            os.remove(os.path.join(output_dir, records.METADATA_FILE))
    os.makedirs(partial, exist_ok=True)
    return partial


def check_output_dir(config: ml_collections.ConfigDict, exists: Callable[[str], bool]) -> bool:
    """Whether output_dir holds a finished dataset, which only config.overwrite replaces (both runners).

    `exists` tests a path on output_dir's filesystem (Beam's may be gs://).
    """
    if not config.output_dir:
        raise ConfigError("config.output_dir is empty: say where to write the dataset")
    if os.path.isfile(config.output_dir):  # only ever true of a local path
        raise ConfigError(f"config.output_dir={config.output_dir!r} is a file, not a folder: name a folder")
    finished = exists(os.path.join(config.output_dir, records.METADATA_FILE))
    if finished and not config.overwrite:
        raise ConfigError(f"{config.output_dir} already holds a dataset; set config.overwrite=True to replace it")
    return finished


def partial_name(config: ml_collections.ConfigDict) -> str:
    """The work folder of an unfinished run of `config` in output_dir (both runners)."""
    return PARTIAL_PREFIX + _config_hash(config)


def _config_hash(config: ml_collections.ConfigDict) -> str:
    """Of every key that changes the output (not where it goes, nor how many cores make it), and of the inputs.

    An input file counts by its path, size and modification time, so a rerun after an
    input was rewritten, added or removed starts over. Not by its content: hashing it
    would read every input once more before any work (a crawl is terabytes), while a
    stat is cheap and changes whenever the file is written. A TFDS input counts by
    its spec, which names the dataset version. Files the config names (a tokenizer,
    a classifier, word and block lists) count the same way.
    """
    keys = {key: value for key, value in config.to_dict().items() if key not in provenance.NOT_RECORDED}
    paths = [path for spec in config.inputs for path in corpora.resolve_input(spec).files]
    files = [(path, *provenance.size_and_time(path)) for path in paths + provenance.model_files(config)]
    return hashlib.sha256(json.dumps([keys, files], sort_keys=True, default=repr).encode()).hexdigest()[:16]


def mixture_of(config: ml_collections.ConfigDict, names: Iterable[str]) -> mixture.Mixture | None:
    """config.mixture over the sources `names`, with the upsample stage's buckets when it runs (both runners)."""
    return mixture.from_config(config.mixture, names, upsample.bucket_copies(config))


def part_name(split: str, source: str, mix: mixture.Mixture | None, bucket: str | None = None) -> str:
    """Where a kept document goes (work file, shard names): its split, or split-component when mixed."""
    return f"{split}-{mix.component(source, bucket)}" if mix and split == TRAIN else split


def part_names(names: Iterable[str], mix: mixture.Mixture | None) -> list[str]:
    """Every part a kept document may go to, in split, source and bucket order."""
    return list(dict.fromkeys(f"{split}-{component}" if mix and split == TRAIN else split
                              for split in SPLITS for name in names
                              for component in (mix.components(name) if mix else [name])))


def kept_parts(counts: Mapping[str, int], names: Iterable[str], mix: mixture.Mixture | None) -> dict[str, int]:
    """Documents kept per part, in `part_names` order (both runners), from `counts` by part.

    An empty bucket is no part; a source whose buckets are all empty keeps them, for
    `check_shardable` to refuse as it refuses an empty source.
    """
    kept = {part: counts.get(part, 0) for part in part_names(names, mix)}
    if not (mix and mix.copies):
        return kept
    for name in names:
        buckets = {part_name(TRAIN, name, mix, bucket) for bucket in mix.copies}
        if any(kept[part] for part in buckets):
            kept = {part: n for part, n in kept.items() if n or part not in buckets}
    return kept


def _read_and_split(sources: list[corpora.InputSource], config: ml_collections.ConfigDict, texts: dict[str, str],
                    ledger: Ledger, work: str, num_workers: int, mix: mixture.Mixture | None) -> HashSample:
    """Pass 1: curates every document, writes kept texts per part, samples train texts."""
    sample = HashSample(config.tokenizer_sample_bytes, config.seed)
    with contextlib.ExitStack() as stack:
        outputs = {part: stack.enter_context(open(path, "w", encoding="utf-8")) for part, path in texts.items()}
        for doc in curate.curate(sources, config, work, ledger, num_workers):
            split = split_of(doc.id, config.validation_fraction, config.seed)
            part = part_name(split, doc.source, mix, doc.metadata.get(mixture.BUCKET_KEY))
            ledger.keep(doc.source, split, part)
            outputs[part].write(json.dumps(doc.text, ensure_ascii=False) + "\n")
            if split == TRAIN:
                sample.add(doc.id, doc.text)
    return sample


def num_shards(kept: dict[str, int], config: ml_collections.ConfigDict,
               mix: mixture.Mixture | None) -> dict[str, int]:
    """Shards per part: num_validation_shards, and num_train_shards, shared out among a mixture's sources."""
    if not mix:
        return {TRAIN: config.num_train_shards, VALIDATION: config.num_validation_shards}
    train = {part: count for part, count in kept.items() if part != VALIDATION}
    return {**_share_out(config.num_train_shards, train), VALIDATION: config.num_validation_shards}


def _share_out(total: int, counts: dict[str, int]) -> dict[str, int]:
    """`total` shards in proportion to `counts`, at least one each and no more than a part's count.

    Highest averages (Sainte-Lague): after one each, every next shard goes to the part
    with the largest count / (shards + 1/2), ties to the first. The shards sum to
    `total` unless there are more parts than that, or fewer documents.
    """
    shards = dict.fromkeys(counts, 1)
    for _ in range(total - len(counts)):
        open_parts = [part for part in counts if shards[part] < counts[part]]
        if not open_parts:
            break
        shards[max(open_parts, key=lambda part: counts[part] / (shards[part] + 0.5))] += 1
    return shards


def check_shardable(kept: dict[str, int], num_shards: dict[str, int]) -> None:
    for part, count in kept.items():
        split = part.partition("-")[0]
        if count < num_shards[part] or (count and not num_shards[part]):
            raise ConfigError(
                f"the {part} split has {count} documents for {num_shards[part]} shards: "
                f"every shard needs a document and every document a shard; change "
                f"num_{split}_shards, validation_fraction, the inputs or config.mixture")


def _mix(parts: dict[str, records.SplitInfo], mix: mixture.Mixture | None, names: list[str]
         ) -> tuple[dict[str, records.SplitInfo], dict[str, dict[str, records.SourceInfo]]]:
    """The splits (a mixed train split lists all its components' shards) and, when mixed, their weights."""
    if not mix:
        return parts, {}
    train = {component: parts[f"{TRAIN}-{component}"] for name in names for component in mix.components(name)
             if f"{TRAIN}-{component}" in parts}
    weights = mix.weights({name: info.tokens for name, info in train.items()})
    splits = {TRAIN: functools.reduce(records.SplitInfo.__add__, train.values()),
              **{split: info for split, info in parts.items() if split == VALIDATION}}
    sources = {name: records.SourceInfo(**dataclasses.asdict(info), weight=weights[name])
               for name, info in train.items()}
    return splits, {TRAIN: sources}


def shard_sizes(num_docs: int, num_shards: int) -> list[int]:
    """Documents per shard: contiguous ranges of the kept order, sizes differing by at most one."""
    return [(i + 1) * num_docs // num_shards - i * num_docs // num_shards for i in range(num_shards)]


def _write_split(part: str, partial: str, num_docs: int, num_shards: int, model_path: str,
                 config: ml_collections.ConfigDict, num_workers: int) -> records.SplitInfo:
    """Pass 2 for one part (split, or split-source): tokenizes its texts, packs contiguous ranges into shards.

    A shard is finished once it exists (an atomic rename, after its stats are saved);
    a rerun skips finished shards' texts and packs only the others.
    """
    counts = shard_sizes(num_docs, num_shards)
    names = [pack.shard_name(part, index, num_shards) for index in range(num_shards)]
    stats_paths = [os.path.join(partial, name + ".json") for name in names]
    finished = {index: pack.read_stats(path) for index, path in enumerate(stats_paths)
                if os.path.exists(os.path.join(config.output_dir, names[index]))}
    total = sum(finished.values(), pack.PackStats())
    with open(os.path.join(partial, f"{part}.jsonl"), encoding="utf-8") as f:
        texts = tqdm(_unfinished_texts(f, counts, finished), desc=f"tokenize {part}",
                     total=num_docs - total.documents, unit=" docs", mininterval=1)
        docs = tokenizer.encode_documents(model_path, texts, num_workers)
        for index in sorted(set(range(num_shards)) - set(finished)):
            with _stopped(f"writing {names[index]}", config):
                total += pack.write_shard(os.path.join(config.output_dir, names[index]),
                                          itertools.islice(docs, counts[index]), config.seq_len, stats_paths[index])
        if next(docs, None) is not None or f.readline():
            raise RuntimeError(f"the {part} split has more documents than the {num_docs} counted")
    return records.SplitInfo(shards=names, documents=total.documents, sequences=total.sequences,
                             tokens=total.tokens)


@contextlib.contextmanager
def _stopped(step: str, config: ml_collections.ConfigDict) -> Iterator[None]:
    """A worker process that died or a write that failed during `step`, as one line saying how to go on.

    Finished steps are kept (the curation pass once done, each shard once renamed), so
    the same command resumes after the cause is fixed.
    """
    resume = "then run the same command again: it resumes after the last finished step"
    try:
        yield
    except workers.BrokenProcessPool:
        raise ConfigError(f"a worker process died (killed, or out of memory) while {step}; {resume} (with a smaller "
                          f"config.num_workers={config.num_workers} if memory ran out)") from None
    except OSError as error:
        raise ConfigError(f"{step} failed: {error}; free space in config.output_dir={config.output_dir!r} "
                          f"or fix the cause, {resume}") from None


def _unfinished_texts(lines: Iterable[str], counts: list[int], finished: dict[int, pack.PackStats]) -> Iterator[str]:
    """The texts (one JSON string a line) of the shards not finished, in order."""
    lines = iter(lines)
    for index, count in enumerate(counts):
        shard = itertools.islice(lines, count)
        if index in finished:
            collections.deque(shard, maxlen=0)
        else:
            yield from (json.loads(line) for line in shard)
