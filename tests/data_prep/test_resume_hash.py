"""Resuming: an unfinished run is picked up only while its config and its input files are unchanged."""

import inspect
import json
import os
import pathlib

import pytest

from configs.data import base
from data_prep import prepare


@pytest.fixture
def config(tmp_path):
    """Two real texts (stdlib modules) as the input folder."""
    folder = tmp_path / "in"
    folder.mkdir()
    for module in (json, inspect):
        (folder / f"{module.__name__}.txt").write_text(inspect.getsource(module))
    config = base.get_config()
    config.update(dict(inputs=(str(folder),), output_dir=str(tmp_path / "out")))
    return config


def _input(config, name="json.txt"):
    return os.path.join(config.inputs[0], name)


def test_the_hash_ignores_where_and_how_fast_the_output_is_made(config):
    before = prepare._config_hash(config)
    config.update(dict(output_dir="/elsewhere", num_workers=7, overwrite=True))
    assert prepare._config_hash(config) == before
    config.seq_len = 512
    assert prepare._config_hash(config) != before


@pytest.mark.parametrize("change", ["rewrite_same_size", "append", "add_file", "remove_file"])
def test_the_hash_changes_when_an_input_file_changes(config, change):
    before = prepare._config_hash(config)
    path = _input(config)
    stat = os.stat(path)
    if change == "rewrite_same_size":  # content swapped in place, as a copy job might
        with open(path, "r+") as f:
            f.write(f.read()[::-1])
        os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))
    elif change == "append":
        with open(path, "a") as f:
            f.write("\n# one more line\n")
    elif change == "add_file":
        pathlib.Path(_input(config, "new.txt")).touch()
    else:
        os.remove(path)
    assert prepare._config_hash(config) != before


def test_a_rerun_after_an_input_changed_starts_over(config):
    first = prepare._prepare_output_dir(config)
    pathlib.Path(first, "work-in-progress").touch()
    assert prepare._prepare_output_dir(config) == first  # unchanged: resumed, work kept
    assert os.listdir(first) == ["work-in-progress"]
    with open(_input(config), "a") as f:
        f.write("\n# edited\n")
    second = prepare._prepare_output_dir(config)
    assert second != first and not os.path.exists(first) and os.listdir(second) == []


def test_the_hash_changes_when_a_file_the_config_names_changes(config, tmp_path):
    model = tmp_path / "tokenizer.model"
    model.write_bytes(b"one")
    config.tokenizer_model = str(model)
    before = prepare._config_hash(config)
    model.write_bytes(b"other")
    assert prepare._config_hash(config) != before
