"""A config the pipeline cannot run fails before any document is read: a ConfigError naming the key.

Each case runs `prepare.prepare`, whose checks come before it creates output_dir, so
a missing output_dir shows the run stopped before any work; the CLI cases show the
one-line FATAL message and how `--config.KEY=None` is parsed.
"""

import os
import subprocess
import sys

import pytest

from configs.data import base
from data_prep import corpora, prepare, stages
from data_prep.document import Document, Removed
from data_prep.readers import Dropped
from pretrain_common import cli

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SCHEMA = os.path.join(REPO, "configs", "data", "base.py")


def _config(tmp_path, **overrides):
    config = base.get_config()
    config.update(dict(inputs=(corpora.PYTHON_STDLIB,), output_dir=str(tmp_path / "out")), **overrides)
    return config


def _fails_up_front(config, message):
    with pytest.raises(prepare.ConfigError, match=message):
        prepare.prepare(config)
    assert not os.path.exists(config.output_dir)


@pytest.mark.parametrize("fraction, shards", [(0.0, 1), (0.01, 0)])
def test_validation_documents_need_validation_shards_and_only_they(tmp_path, fraction, shards):
    config = _config(tmp_path, validation_fraction=fraction, num_validation_shards=shards)
    _fails_up_front(config, f"config.validation_fraction={fraction} with config.num_validation_shards={shards}")


def test_a_missing_input_path_is_named(tmp_path):
    _fails_up_front(_config(tmp_path, inputs=(f"web={tmp_path}/crawl",)), f"config.inputs: 'web={tmp_path}/crawl'")


def test_an_empty_bad_words_list_fails_even_after_a_corpus_stage(tmp_path):
    (tmp_path / "words").write_text("\n")
    config = _config(tmp_path, stages=("exact_dedup", "c4"))
    config.c4.bad_words_path = str(tmp_path / "words")
    _fails_up_front(config, "config.c4: no words in the bad-words list")


@pytest.mark.parametrize("scope, stage_list, ok", [
    (None, ("exact_dedup",), True),
    ("source", ("exact_dedup",), True),
    ("language", ("extract", "langid", "exact_dedup"), True),
    ("language", ("exact_dedup", "langid"), False),  # langid sets it only after dedup ran
    ("None", ("exact_dedup",), False),  # what the command line gave before None parsed
])
def test_dedup_scope_names_what_every_document_reaching_dedup_has(tmp_path, scope, stage_list, ok):
    config = _config(tmp_path, stages=stage_list)
    config.dedup.scope = scope
    if ok:
        stages.check(config)
    else:
        _fails_up_front(config, f"config.dedup.scope is {scope!r}")


def test_a_threshold_of_the_wrong_type_is_named(tmp_path):
    config = _config(tmp_path, stages=("exact_dedup", "gopher_quality"))
    config.gopher_quality.min_words = "fifty"
    _fails_up_front(config, r"config.gopher_quality.min_words must be int \| None, got 'fifty'")


def test_the_quality_stage_needs_a_model_that_loads(tmp_path):
    config = _config(tmp_path, stages=("exact_dedup", "quality"))
    config.classifier.model = str(tmp_path / "missing.npz")
    _fails_up_front(config, "config.classifier.model=.*missing.npz' is not a quality model")


def test_a_document_with_no_c4_line_left_is_removed_not_kept_empty():
    config = base.get_config()
    config.c4.min_sentences = None
    doc = Document(id="a", source="s", url="", text="No end mark\nTwo words.")
    assert stages.REGISTRY["c4"].from_config(config).decide(doc) == Dropped("a", Removed("c4", "no_lines"))


def _parsed(*overrides):
    """The data config as data_prep's command line loads it (pretrain_common/cli.py)."""
    return cli.load_config(SCHEMA, overrides)


def test_none_on_the_command_line_turns_a_rule_off():
    config = _parsed("--config.c4.min_sentences=None", "--config.dedup.scope=None",
                     "--config.gopher_quality.max_mean_word_length=None", "--config.classifier.top_fraction=None")
    assert config.c4.min_sentences is None and config.dedup.scope is None
    assert config.gopher_quality.max_mean_word_length is None and config.classifier.top_fraction is None
    stages.check(config)


def test_values_on_the_command_line_keep_their_types():
    config = _parsed("--config.c4.min_sentences=3", "--config.dedup.scope=source",
                     "--config.gopher_quality.min_mean_word_length=2.5", "--config.classifier.top_fraction=0.1")
    assert (config.c4.min_sentences, config.dedup.scope) == (3, "source")
    assert (config.gopher_quality.min_mean_word_length, config.classifier.top_fraction) == (2.5, 0.1)


def test_the_cli_reports_a_config_error_in_one_line(tmp_path):
    result = subprocess.run([sys.executable, "-m", "data_prep", "run", "--config=configs/data/demo.py",
                             f"--config.output_dir={tmp_path}/out", f"--config.inputs=('{tmp_path}/missing',)"],
                            cwd=REPO, capture_output=True, text=True)
    assert result.returncode != 0
    assert result.stderr.strip().splitlines() == [
        f"FATAL config.inputs: '{tmp_path}/missing' is not a file, a folder, a corpus (python-stdlib) or a tfds: "
        "dataset"]
