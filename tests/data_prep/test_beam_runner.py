"""The Beam runner makes the local runner's dataset: same documents kept, same removals, same bytes.

Real input: six small Debian handbook pages in eight languages (untranslated pages
are exact copies of en-US; sect.role-of-distributions.html is nearly the same in
several), Python's json package (sources and their .pyc files), and a JSONL file
of stdlib module docstrings with a broken line. Both runners get one config, in two
cases: extract, langid, two filters, exact and MinHash dedup; and a quality
classifier stage with a two-source mixture. The Beam one runs on the DirectRunner.
"""

import argparse
import asyncio
import collections
import dataclasses
import doctest
import inspect
import json
import logging
import os
import tarfile
import unittest

import apache_beam as beam
import numpy as np
import pytest
from apache_beam.testing.util import assert_that, equal_to

from configs.data import base
from data_prep import beam_runner, classifier, corpora, prepare
from data_prep.dedup import DedupConfig, deduplicate, minhash
from data_prep.dedup.beam import NearDuplicates, components
from data_prep.dedup.clusters import UnionFind
from data_prep.document import Document
from pretrain_common import records

PAGES = ("sect.aptosid.html", "sect.kali.html", "sect.selected-approach.html", "preface.html",
         "case-study.html", "sect.role-of-distributions.html")
LANGUAGES = ("en-US", "cs-CZ", "da-DK", "el-GR", "fr-FR", "hr-HR", "ko-KR", "ro-RO")
# Their docstrings are prose: the notes source's documents.
DOCUMENTED_MODULES = (argparse, asyncio, collections, dataclasses, doctest, inspect, json, logging, tarfile, unittest)
STAGES = ("extract", "langid", "gopher_repetition", "pii", "exact_dedup", "minhash_dedup")
# The quality stage (top half by a classifier's score) and a two-source mixture packed per source.
QUALITY_STAGES = ("extract", "langid", "quality", "exact_dedup")
MIXTURE = (("handbook", 0.7), ("notes", 0.3))


@pytest.fixture(scope="module")
def inputs(shared_corpora, tmp_path_factory):
    folder = tmp_path_factory.mktemp("inputs")
    with tarfile.open(shared_corpora / "debian-handbook-html.tar.xz", "r:xz") as tar:
        members = [m for m in tar.getmembers() if m.isfile() and m.name.split("/")[-2:][0] in LANGUAGES
                   and m.name.split("/")[-1] in PAGES]
        tar.extractall(folder, members=members, filter="data")
    root, _ = corpora.python_stdlib_files()
    lines = [json.dumps({"text": inspect.getdoc(module)}) for module in DOCUMENTED_MODULES]
    (folder / "notes.jsonl").write_text("\n".join([*lines, "{broken"]) + "\n")
    return {"handbook": f"handbook={folder}/debian-handbook-html", "stdlib": f"stdlib={root}/json",
            "notes": f"notes={folder}/notes.jsonl"}


@pytest.fixture(scope="module")
def quality_model(tmp_path_factory):
    """A classifier that prefers docstrings (label 1) to stdlib code (label 0)."""
    root, files = corpora.python_stdlib_files()
    code = [open(path, encoding="utf-8").read() for path in files if "/json/" in path]
    docs = [inspect.getdoc(module) or "" for module in (os, tarfile, argparse, logging, unittest)]
    path = str(tmp_path_factory.mktemp("model") / "quality.npz")
    classifier.train([*docs, *code], [1] * len(docs) + [0] * len(code)).save(path)
    return path


def _config(case, inputs, model, output_dir):
    config = base.get_config()
    config.update(dict(output_dir=str(output_dir), vocab_size=400, seq_len=64, validation_fraction=0.2,
                       num_train_shards=3, num_workers=1, removed_samples_per_reason=1000))  # all removals listed
    if case == "dedup":
        config.update(dict(inputs=tuple(inputs.values()), stages=STAGES))
    else:
        config.update(dict(inputs=(inputs["handbook"], inputs["notes"]), stages=QUALITY_STAGES))
        config.mixture.weights = MIXTURE
        config.classifier.update(dict(model=model, top_fraction=0.5, sample_bytes=20_000))
    return config


# DirectRunner first tries Prism, a binary it downloads; given none, it falls back at once
# to its in-process engine instead of waiting on a network this test may not have.
DIRECT_RUNNER = ["--runner=DirectRunner", "--prism_location=/nonexistent/prism"]


@pytest.fixture(scope="module", params=["dedup", "mixture_quality"])
def both_runs(request, inputs, quality_model, tmp_path_factory):
    local_dir, beam_dir = tmp_path_factory.mktemp("local"), tmp_path_factory.mktemp("beam")
    local = prepare.prepare(_config(request.param, inputs, quality_model, local_dir))
    distributed = beam_runner.run(_config(request.param, inputs, quality_model, beam_dir), DIRECT_RUNNER)
    return (local_dir, local), (beam_dir, distributed)


def test_same_removals_per_stage_and_reason(both_runs):
    (_, local), (_, distributed) = both_runs
    counts = lambda report: [{k: v for k, v in s.items() if k != "seconds"} for s in report["stages"]]
    assert counts(distributed) == counts(local)
    for key in ("documents", "sources", "splits", "mixture"):
        assert distributed[key] == local[key]
    removed = {reason for s in local["stages"] for reason in s["removed"]}
    assert {"dedup:exact_duplicate", "read:malformed_json"} <= removed
    assert {"dedup:near_duplicate", "quality:below_threshold"} & removed


def test_same_documents_removed_and_kept(both_runs):
    """Every removed document is listed (the per-reason sample holds all), so equal lists mean equal kept sets."""
    (local_dir, local), (beam_dir, _) = both_runs
    read = lambda folder: (folder / prepare.SAMPLES_FILE).read_bytes()
    assert read(beam_dir) == read(local_dir)
    removed = [json.loads(line)["id"] for line in read(local_dir).decode().splitlines()]
    assert len(set(removed)) == local["documents"]["removed"] > 0


@pytest.mark.parametrize("runner", ["local", "beam"])
def test_duplicate_removals_name_the_kept_document_so_clusters_can_be_rebuilt(both_runs, runner):
    """Each dedup removal names its cluster's keeper: the clusters rebuilt from removed_samples.jsonl
    are those the report counts."""
    folder, report = both_runs[runner == "beam"]
    samples = [json.loads(line) for line in (folder / prepare.SAMPLES_FILE).read_text().splitlines()]
    assert all((s["kept_id"] is not None) == s["reason"].startswith("dedup:") for s in samples)
    for stage in (s for s in report["stages"] if s["stage"] in ("exact_dedup", "minhash_dedup")):
        removed = [s for s in samples if s["reason"] in stage["removed"]]
        members = collections.Counter(s["kept_id"] for s in removed)
        sizes = collections.Counter(str(n + 1) for n in members.values())
        assert len(members) == stage["corpus_pass"]["clusters"] and sizes == stage["corpus_pass"]["cluster_sizes"]
        assert not set(members) & {s["id"] for s in removed}  # a keeper is not removed by its own stage


def test_byte_identical_shards_tokenizer_metadata_and_report(both_runs):
    (local_dir, _), (beam_dir, _) = both_runs
    files = lambda folder: sorted(name for name in os.listdir(folder) if name != prepare.TIMINGS_FILE)
    assert files(beam_dir) == files(local_dir)
    shards = [shard for info in records.read_metadata(str(local_dir)).splits.values() for shard in info.shards]
    assert sorted(shards) == [name for name in files(local_dir) if name.endswith(".array_record")]
    assert len(shards) >= 4  # 3 train (shared by the sources when mixed) + 1 validation
    for name in files(local_dir):
        assert (beam_dir / name).read_bytes() == (local_dir / name).read_bytes(), name


def test_same_kept_documents(both_runs, read_shard):
    (local_dir, local), (beam_dir, _) = both_runs
    metadata = records.read_metadata(str(beam_dir))
    eos = sum(int(np.sum(row == metadata.eos_id)) for name in os.listdir(beam_dir) if name.endswith(".array_record")
              for row in read_shard(str(beam_dir / name)))
    assert eos == local["documents"]["kept"] > 0


def _near_duplicate_docs():
    """Hand-built: a paragraph, two edits of it that chain (a ~ b ~ c), and an unrelated one."""
    words = ("the quick brown fox jumps over the lazy dog while the cat sleeps on the warm mat near "
             "the door and birds sing in the tall old tree behind the small house by the river").split()
    a = " ".join(words)
    b = " ".join(words[:-1] + ["lake"])
    c = " ".join(["a"] + words[1:-1] + ["lake"])
    other = " ".join(reversed(words))
    return [Document(f"s/{name}", "s", "", text) for name, text in (("b", b), ("a", a), ("c", c), ("z", other))]


def test_minhash_shuffle_clusters_as_the_local_dedup(tmp_path):
    docs = _near_duplicate_docs()
    config = DedupConfig(exact=False, near=True, num_workers=1, bands=16, rows=2)
    local = deduplicate(docs, str(tmp_path), config)
    assert local.removed  # the case is not trivial
    with beam.Pipeline("FnApiRunner") as pipeline:
        verdicts, _ = (pipeline | beam.Create([((0, 0, i), doc) for i, doc in enumerate(docs)])
                       | NearDuplicates(config))
        assert_that(verdicts, equal_to(list(local.removed.items())))
    assert all(d.removed == minhash.REMOVED for d in local.removed.values())


def test_partial_union_finds_merge_into_the_components_of_all_edges():
    """Beam merges per-bundle accumulators in any grouping: a chain split across them must still join."""
    edges = [(("d", (3,)), ("e", (4,))), (("a", (0,)), ("b", (1,))), (("b", (1,)), ("c", (2,))),
             (("c", (2,)), ("d", (3,))), (("x", (9,)), ("y", (8,)))]
    combine, whole = components(), UnionFind()
    for a, b in edges:
        whole.union(a, b)
    partial = [combine.create_accumulator() for _ in range(3)]
    for index, edge in enumerate(edges):
        combine.add_input(partial[index % 3], edge)
    merged = combine.extract_output(combine.merge_accumulators(partial))
    assert merged.clusters() == whole.clusters() and len(whole.clusters()) == 2
