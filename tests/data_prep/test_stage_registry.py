"""A stage is its own module: one defined and registered here, outside data_prep, runs in both runners.

`WordList` touches no table of data_prep: registered for the test, it runs on worker
processes in the local runner and inside the Beam runner's per-document step, after a
corpus stage; both write the same bytes, its tally is in the report, and the file it
declares is in the resume hash and the provenance record. The input is real: the
standard library's json package (sources, and .pyc files the reader removes).
"""

import dataclasses
import hashlib
import json
import os

import ml_collections
import pytest

from configs.data import base
from data_prep import beam_runner, corpora, prepare, stages
from data_prep.document import Document, Result
from data_prep.stage import REGISTRY, DocumentStage, Tallies, register
from pretrain_common import records
from pretrain_common.errors import ConfigError

WORDS = ("scanstring", "argparse", "JSONDecodeError")
DIRECT_RUNNER = ["--runner=DirectRunner", "--prism_location=/nonexistent/prism"]


@dataclasses.dataclass(frozen=True)
class WordList(DocumentStage):
    """Removes documents that contain a word of a list file; tallies the words found, by document."""

    name = "word_list"
    group = "word_list"
    path: str

    @classmethod
    def from_config(cls, config: ml_collections.ConfigDict) -> "WordList":
        if not os.path.isfile(config.word_list.path):
            raise ConfigError(f"config.word_list.path={config.word_list.path!r} is not a file")
        return cls(config.word_list.path)

    @classmethod
    def files(cls, config: ml_collections.ConfigDict) -> list[str]:
        return [config.word_list.path]

    def decide(self, doc: Document) -> Result:
        with open(self.path, encoding="utf-8") as f:
            found = sorted(word for word in f.read().split() if word in doc.text)
        return self.drop(doc, "listed_word", found=found) if found else doc

    def tally(self, result: Result) -> Tallies:
        return {"listed_words_found": dict.fromkeys(result.metadata.get("found", ()), 1)}


@pytest.fixture
def word_list():
    register(WordList)
    yield
    del REGISTRY[WordList.name]


@pytest.fixture
def config(tmp_path, stdlib_folders, word_list):
    words = tmp_path / "words.txt"
    words.write_text("\n".join(WORDS) + "\n")
    config = base.get_config()
    config.word_list = ml_collections.ConfigDict({"path": str(words)})  # the stage's config group
    config.update(dict(inputs=(stdlib_folders[4],), stages=("exact_dedup", "word_list"), vocab_size=400,
                       seq_len=64, validation_fraction=0.0, num_validation_shards=0, num_train_shards=1,
                       num_workers=2, removed_samples_per_reason=100))
    return config


def _expected_tally(folder):
    """Per listed word, the readable files of `folder` whose text contains it."""
    counts = {}
    for path in corpora.resolve_input(folder).files:
        try:
            text = open(path, encoding="utf-8").read()
        except UnicodeDecodeError:  # a .pyc file: removed as read:binary
            continue
        for word in WORDS:
            counts[word] = counts.get(word, 0) + (word in text)
    return {word: n for word, n in counts.items() if n}


def test_a_stage_registered_outside_data_prep_runs_in_both_runners_with_its_tally(config, tmp_path):
    config.output_dir = str(tmp_path / "local")
    local = prepare.prepare(config)
    beam_config = ml_collections.ConfigDict(config.to_dict())
    beam_config.output_dir = str(tmp_path / "beam")
    beam_runner.run(beam_config, DIRECT_RUNNER)
    [stage] = [s for s in local["stages"] if s["stage"] == "word_list"]
    assert stage["listed_words_found"] == _expected_tally(config.inputs[0]) and len(stage["listed_words_found"]) == 3
    assert stage["removed"] == {"word_list:listed_word": stage["docs_in"] - stage["docs_out"]} and stage["docs_out"]
    for name in os.listdir(tmp_path / "local"):
        if name != prepare.TIMINGS_FILE:
            assert (tmp_path / "beam" / name).read_bytes() == (tmp_path / "local" / name).read_bytes(), name


def test_its_declared_file_is_in_the_resume_hash_and_the_provenance(config, tmp_path):
    before = prepare._config_hash(config)
    with open(config.word_list.path, "a") as f:
        f.write("loads\n")
    assert prepare._config_hash(config) != before
    config.output_dir = str(tmp_path / "out")
    prepare.prepare(config)
    recorded = records.read_metadata(config.output_dir).provenance["files"][config.word_list.path]
    with open(config.word_list.path, "rb") as f:
        assert recorded["sha256"] == hashlib.sha256(f.read()).hexdigest()


def test_its_check_runs_up_front_and_it_is_known_by_name_only_while_registered(config):
    config.word_list.path = "/nonexistent/words.txt"
    with pytest.raises(ConfigError, match="config.word_list.path='/nonexistent/words.txt' is not a file"):
        stages.check(config)
    del REGISTRY[WordList.name]
    with pytest.raises(ConfigError, match=r"config.stages has unknown stages \['word_list'\]"):
        stages.check(config)
    register(WordList)  # for the fixture's teardown


def test_removed_documents_keep_what_the_stage_found(config):
    stage = stages.REGISTRY["word_list"].from_config(config)
    dropped = stage.decide(Document("a", "s", "", "def scanstring(argparse): pass"))
    assert str(dropped.removed) == "word_list:listed_word" and dropped.metadata["found"] == ["argparse", "scanstring"]
    assert json.loads(json.dumps(stage.tally(dropped))) == {"listed_words_found": {"argparse": 1, "scanstring": 1}}
