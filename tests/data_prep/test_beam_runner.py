"""The Beam runner makes the local runner's dataset: same documents kept, same removals, same bytes.

Real input: six small Debian handbook pages in eight languages (untranslated pages
are exact copies of en-US; sect.role-of-distributions.html is nearly the same in
several), Python's json package sources, and a JSONL file with a broken line. Both
runners get one config (extract, langid, two filters, exact and MinHash dedup);
the Beam one runs on the in-memory DirectRunner.
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
from data_prep import beam_runner, corpora, prepare, records
from data_prep.dedup import DedupConfig, deduplicate, minhash
from data_prep.dedup.beam import NearDuplicates
from data_prep.document import Document

PAGES = ("sect.aptosid.html", "sect.kali.html", "sect.selected-approach.html", "preface.html",
         "case-study.html", "sect.role-of-distributions.html")
LANGUAGES = ("en-US", "cs-CZ", "da-DK", "el-GR", "fr-FR", "hr-HR", "ko-KR", "ro-RO")
# Their docstrings are prose: the notes source's documents.
DOCUMENTED_MODULES = (argparse, asyncio, collections, dataclasses, doctest, inspect, json, logging, tarfile, unittest)
STAGES = ("extract", "langid", "gopher_repetition", "pii", "exact_dedup", "minhash_dedup")


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
    return (f"handbook={folder}/debian-handbook-html", f"stdlib={root}/json", f"notes={folder}/notes.jsonl")


def _config(inputs, output_dir):
    config = base.get_config()
    config.update(dict(inputs=inputs, output_dir=str(output_dir), stages=STAGES, vocab_size=400, seq_len=64,
                       validation_fraction=0.2, num_train_shards=3, num_workers=1, removed_samples_per_reason=1000))  # all
    return config


@pytest.fixture(scope="module")
def both_runs(inputs, tmp_path_factory):
    local_dir, beam_dir = tmp_path_factory.mktemp("local"), tmp_path_factory.mktemp("beam")
    local = prepare.prepare(_config(inputs, local_dir))
    distributed = beam_runner.run(_config(inputs, beam_dir), ["--runner=DirectRunner"])
    return (local_dir, local), (beam_dir, distributed)


def test_same_removals_per_stage_and_reason(both_runs):
    (_, local), (_, distributed) = both_runs
    counts = lambda report: [(s["stage"], s["docs_in"], s["docs_out"], s["chars_in"], s["chars_out"],
                              s["removed"], s.get("corpus_pass")) for s in report["stages"]]
    assert counts(distributed) == counts(local)
    assert distributed["documents"] == local["documents"]
    assert distributed["sources"] == local["sources"]
    removed = {reason for s in local["stages"] for reason in s["removed"]}
    assert {"dedup:exact_duplicate", "dedup:near_duplicate", "read:malformed_json"} <= removed


def test_same_documents_removed_and_kept(both_runs):
    """Every removed document is listed (the per-reason sample holds all), so equal lists mean equal kept sets."""
    (local_dir, local), (beam_dir, _) = both_runs
    read = lambda folder: (folder / prepare.SAMPLES_FILE).read_bytes()
    assert read(beam_dir) == read(local_dir)
    removed = [json.loads(line)["id"] for line in read(local_dir).decode().splitlines()]
    assert len(set(removed)) == local["documents"]["removed"] > 0


def test_byte_identical_shards_tokenizer_and_metadata(both_runs):
    (local_dir, _), (beam_dir, _) = both_runs
    files = lambda folder: sorted(name for name in os.listdir(folder) if name != prepare.REPORT_FILE)
    assert files(beam_dir) == files(local_dir)
    assert len([name for name in files(local_dir) if name.endswith(".array_record")]) == 4  # 3 train + 1 validation
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
    with beam.Pipeline() as pipeline:
        verdicts, _ = (pipeline | beam.Create([((0, 0, i), doc) for i, doc in enumerate(docs)])
                       | NearDuplicates(config))
        assert_that(verdicts, equal_to(list(local.removed.items())))
    assert all(d.removed == minhash.REMOVED for d in local.removed.values())
