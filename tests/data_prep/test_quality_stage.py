"""The quality stage inside prepare: a classifier trained on real text keeps prose and removes code.

The model (conftest.py, prose_model) learns Language Reference prose against stdlib
source; the run reads other text (prose_and_code): held-out topics as one source and
the stdlib email package as another, so what the stage keeps shows the classifier at
work on unseen documents.
"""

import math

import pytest

from configs.data import base
from data_prep import prepare

@pytest.fixture(scope="module", params=[{"threshold": 0.5}, {"top_fraction": 0.3}], ids=["threshold", "top_fraction"])
def run(request, prose_model, prose_and_code, tmp_path_factory):
    config = base.get_config()
    config.update(dict(inputs=tuple(prose_and_code), output_dir=str(tmp_path_factory.mktemp("out")), stages=("quality",),
                       vocab_size=400, seq_len=128, validation_fraction=0.0, num_validation_shards=0,
                       num_train_shards=1, num_workers=2))
    config.classifier.model = prose_model
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
