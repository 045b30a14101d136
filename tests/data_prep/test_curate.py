"""curate: stages run in worker processes inside a JAX-threaded process, with the in-process result.

The input is real: Debian handbook pages in three languages (HTML, so extraction and
language ID have work) beside a stdlib folder (plain text, which langid mostly drops).
"""

import multiprocessing
import pickle
import tarfile

import jax
import pytest

from configs.data import base
from data_prep import corpora, curate, stages
from data_prep.stage import DocumentStage
from data_prep.stats import Ledger, SourceCounts

LANGUAGES = ("en-US", "fr-FR", "de-DE")
PAGES = 12  # per language: every 10th page of the handbook
# Dedup first: the documents that come out then pass through the pool of the other stages.
STAGES = ("exact_dedup", "extract", "url", "langid", "gopher_quality", "pii")
MAX_PICKLED_BYTES = 2_000  # a stage travels as its settings and paths, not as a loaded model


@pytest.fixture(scope="module")
def inputs(shared_corpora, tmp_path_factory, stdlib_folders):
    folder = tmp_path_factory.mktemp("handbook")
    with tarfile.open(shared_corpora / "debian-handbook-html.tar.xz", "r:xz") as tar:
        members = [m for m in tar.getmembers() if m.name.endswith(".html") and m.name.split("/")[1] in LANGUAGES]
        names = sorted({m.name.rsplit("/", 1)[1] for m in members})[::10][:PAGES]
        tar.extractall(folder, members=[m for m in members if m.name.rsplit("/", 1)[1] in names], filter="data")
    return [f"handbook={folder}/debian-handbook-html", stdlib_folders[4]]  # stdlib json/


@pytest.fixture(scope="module")
def config(tmp_path_factory):
    blocklist = tmp_path_factory.mktemp("url") / "domains.txt"
    blocklist.write_text("example.com\n")
    config = base.get_config()
    config.stages = STAGES
    config.langid.languages = ("en",)
    config.url.domains_path = str(blocklist)
    return config


def _curate(inputs, config, workdir, num_workers):
    """Kept ids, the ledger, and the most worker processes seen alive while documents came out."""
    sources = [corpora.resolve_input(spec) for spec in inputs]
    ledger = Ledger({s.name: SourceCounts(s.spec, len(s.files)) for s in sources}, samples_per_reason=5)
    kept, most_children = [], 0
    for doc in curate.curate(sources, config, str(workdir), ledger, num_workers):
        kept.append(doc.id)
        ledger.keep(doc.source, "train", "train")
        most_children = max(most_children, len(multiprocessing.active_children()))
    return kept, ledger, most_children


def _counts(ledger):
    """Everything the report counts, without timings."""
    stage_counts = {name: {k: v for k, v in s.to_json().items() if k != "seconds"} for name, s in ledger.stages.items()}
    return stage_counts, {name: s.to_json() for name, s in ledger.sources.items()}, ledger.samples


@pytest.fixture(scope="module")
def runs(inputs, config, tmp_path_factory):
    jax.devices()  # the XLA runtime and its threads are up: forking now could deadlock a child
    return {n: _curate(inputs, config, tmp_path_factory.mktemp(f"work{n}"), n) for n in (1, 2)}


def test_every_document_stage_pickles_small(config):
    for stage in stages.build(config):
        if isinstance(stage, DocumentStage):
            assert len(pickle.dumps(stage)) < MAX_PICKLED_BYTES, stage.name


def test_two_workers_keep_what_one_process_keeps(runs):
    (kept1, ledger1, _), (kept2, ledger2, children) = runs[1], runs[2]
    assert children == 2  # both workers ran, in this JAX-threaded process
    assert kept1 == kept2 and 0 < len(kept1) < sum(s.read for s in ledger1.sources.values())
    assert _counts(ledger1) == _counts(ledger2)
    assert ledger1.check() == ledger2.check()


def test_language_histograms_cover_every_identified_document_and_the_kept_ones(runs):
    _, ledger, _ = runs[2]
    report = ledger.stage("langid").to_json()
    identified, kept = report["languages_identified"], report["languages_kept"]
    assert sum(identified.values()) == report["docs_in"] and sum(kept.values()) == report["docs_out"]
    assert set(kept) == {"en"} and {"fr", "de"} <= set(identified)  # removed languages are reported too
    assert identified["en"] >= kept["en"]


@pytest.mark.parametrize("group", ["gopher_quality", "fineweb_quality"])
def test_a_bad_filter_setting_fails_when_the_stage_is_built(group):
    config = base.get_config()
    config[group].rules = "fineweb-2"
    with pytest.raises(stages.ConfigError, match=f"config.{group}: rules must be one of"):
        stages.REGISTRY[group].from_config(config)
