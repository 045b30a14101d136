"""The quality stage inside prepare: a classifier trained on real text keeps prose and removes code.

The model learns Language Reference prose (`pydoc_data.topics`, 70% of topics by id
hash) against blank-line blocks of stdlib source (asyncio, importlib). The run reads
other text: the held-out topics as one source and the stdlib email package as
another, so what the stage keeps shows the classifier at work on unseen documents.
"""

import json
import math
import re

import pytest
from pydoc_data.topics import topics

from configs.data import base
from data_prep import classifier, prepare, readers
from data_prep.sampling import TRAIN, split_of

HELDOUT_FRACTION = 0.3


def _blocks(text):
    return [block for block in re.split(r"\n\s*\n", text) if len(block.split()) >= 15]


@pytest.fixture(scope="module")
def model_path(tmp_path_factory, stdlib_folders):
    prose = [b for name, text in sorted(topics.items()) if split_of(name, HELDOUT_FRACTION, 0) == TRAIN
             for b in _blocks(text) if not b[0].isspace()]
    code = [b for folder in (stdlib_folders[0], stdlib_folders[3])
            for doc in readers.read_files("stdlib", *readers.list_files(folder))
            if isinstance(doc, readers.Document) for b in _blocks(doc.text)]
    path = str(tmp_path_factory.mktemp("quality") / "quality.npz")
    classifier.train(prose + code, [1] * len(prose) + [0] * len(code)).save(path)
    return path


@pytest.fixture(scope="module")
def inputs(tmp_path_factory, stdlib_folders):
    folder = tmp_path_factory.mktemp("prose")
    heldout = [text for name, text in sorted(topics.items()) if split_of(name, HELDOUT_FRACTION, 0) != TRAIN]
    (folder / "topics.jsonl").write_text("".join(json.dumps({"text": text}) + "\n" for text in heldout))
    return [f"prose={folder}", f"code={stdlib_folders[1]}"]  # email/


@pytest.fixture(scope="module", params=[{"threshold": 0.5}, {"top_fraction": 0.3}], ids=["threshold", "top_fraction"])
def run(request, model_path, inputs, tmp_path_factory):
    config = base.get_config()
    config.update(dict(inputs=tuple(inputs), output_dir=str(tmp_path_factory.mktemp("out")), stages=("quality",),
                       vocab_size=400, seq_len=128, validation_fraction=0.0, num_validation_shards=0,
                       num_train_shards=1, num_workers=2))
    config.classifier.model = model_path
    config.classifier.update(request.param)
    return request.param, prepare.prepare(config)


def _quality(report):
    return next(stage for stage in report["stages"] if stage["stage"] == "quality")


def test_every_removal_is_accounted_to_the_stage_and_the_sources(run):
    _, report = run
    quality = _quality(report)
    removed = quality["removed"].get("quality:below_threshold", 0)
    read = report["stages"][0]  # removes unreadable files (email/__pycache__)
    assert quality["docs_in"] == read["docs_out"] == quality["docs_out"] + removed
    assert 0 < removed < quality["docs_in"] and quality["removed"].keys() == {"quality:below_threshold"}
    assert sum(s["removed"].get("quality:below_threshold", 0) for s in report["sources"].values()) == removed
    assert report["documents"]["kept"] == quality["docs_out"] == report["splits"]["train"]["documents"]


def test_prose_is_kept_and_code_removed(run):
    settings, report = run
    kept = {name: sum(s["kept"].values()) for name, s in report["sources"].items()}
    assert kept["prose"] > 3 * kept["code"], kept
    if "threshold" in settings:
        assert kept["prose"] > 0.8 * report["sources"]["prose"]["documents"], kept


def test_the_report_gives_the_threshold_and_the_kept_scores(run, tmp_path):
    settings, report = run
    quality = _quality(report)
    threshold = quality["corpus_pass"]["threshold"]
    scores = quality["quality_scores_kept"]
    assert sum(scores.values()) == quality["docs_out"]
    assert min(float(tenth) for tenth in scores) >= math.floor(threshold * 10) / 10
    if "threshold" in settings:
        assert threshold == settings["threshold"] and quality["corpus_pass"]["sampled"] == 0
    else:  # every document fits in the sample: the top 30% of them are kept, ties included
        assert quality["corpus_pass"]["sampled"] == quality["docs_in"]
        assert quality["docs_out"] >= math.ceil(0.3 * quality["docs_in"])
        assert quality["docs_out"] <= math.ceil(0.3 * quality["docs_in"]) + 2
