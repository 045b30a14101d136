"""A prepared dataset says how it was made (metadata.json's provenance: data_prep/provenance.py), and
`data-prep diff A B` shows what differs between two: the changed threshold beside the counts it moved."""

import hashlib
import json
import os
import subprocess
import sys

import pytest

from configs.data import base
from data_prep import prepare, provenance

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def prepared(output_dir, stdlib_folders, tokenizer_path, **gopher):
    """The json and email packages through Gopher's quality rules, those about prose off (they are Python), and a
    given tokenizer; `gopher` changes rules."""
    config = base.get_config()
    config.update(inputs=tuple(f for f in stdlib_folders if os.path.basename(f) in ("json", "email")),
                  output_dir=str(output_dir), seq_len=128, validation_fraction=0.2, num_workers=1,
                  stages=("extract", "gopher_quality"), tokenizer_model=tokenizer_path, num_train_shards=1)
    config.gopher_quality.update(min_stop_words=0, min_tokens_with_letter_fraction=0.0, max_symbols_per_token=1.0,
                                 max_mean_word_length=100, max_bullet_line_fraction=1.0, **gopher)
    prepare.prepare(config)
    return str(output_dir)


@pytest.fixture(scope="module")
def two_datasets(tmp_path_factory, stdlib_folders, tokenizer_path):
    root = tmp_path_factory.mktemp("provenance")
    return (prepared(root / "a", stdlib_folders, tokenizer_path),
            prepared(root / "b", stdlib_folders, tokenizer_path, min_words=400))


def test_metadata_records_the_config_the_files_the_inputs_and_the_versions(two_datasets, tokenizer_path):
    with open(os.path.join(two_datasets[0], "metadata.json")) as f:
        recorded = json.load(f)["provenance"]
    assert recorded["config"]["gopher_quality"]["min_words"] == 50
    assert recorded["config"]["stages"] == ["extract", "gopher_quality"]
    assert "output_dir" not in recorded["config"] and "num_workers" not in recorded["config"]
    with open(tokenizer_path, "rb") as f:
        assert recorded["files"][tokenizer_path]["sha256"] == hashlib.sha256(f.read()).hexdigest()
    inputs = list(recorded["inputs"].values())
    assert len(inputs) == 2 and all(i["files"] > 10 and i["bytes"] > 10_000 for i in inputs)
    assert recorded["versions"]["sentencepiece"] == "0.2.2" and recorded["versions"]["python"]


def test_diff_names_the_changed_threshold_and_the_counts_it_moved(two_datasets):
    found = {key: (a, b) for key, a, b in provenance.differences(*two_datasets)}
    assert found.pop("config.gopher_quality.min_words") == (50, 400)
    assert not [k for k in found if k.startswith(("config.", "files.", "inputs.", "versions."))], found
    removed = {k: v for k, v in found.items() if k.endswith("removed.gopher_quality:too_few_words")}
    assert removed and all((a or 0) < b for a, b in removed.values()), found
    assert found["splits.train.tokens"][0] > found["splits.train.tokens"][1]


def test_the_same_dataset_twice_has_no_differences(two_datasets):
    assert provenance.differences(two_datasets[0], two_datasets[0]) == []


def test_data_prep_diff_prints_them_and_a_missing_folder_is_one_line(two_datasets, tmp_path):
    command = [os.path.join(os.path.dirname(sys.executable), "data-prep"), "diff", *two_datasets]
    result = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    line = next(line for line in result.stdout.splitlines() if line.startswith("config.gopher_quality.min_words "))
    assert line.endswith(" 50 -> 400")
    missing = subprocess.run([*command[:2], two_datasets[0], str(tmp_path / "nothing")], cwd=REPO,
                             capture_output=True, text=True, timeout=120)
    assert missing.returncode == 1 and missing.stderr.startswith("FATAL ") and missing.stderr.count("\n") == 1
