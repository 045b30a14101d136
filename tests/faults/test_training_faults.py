"""Faults a long training run meets: bad datasets, a missing config.

A bad dataset or config is one FATAL line naming the file, before the first step.
"""

import json
import os
import shutil
import subprocess
import sys
import types

import jax
import numpy as np
import pytest

from data_prep import records
from data_prep.errors import ConfigError
from pretrain_jax import evaluate, train, trained

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
ONE_DEVICE = jax.devices()[:1]
CLI_ENV = {**os.environ, "XLA_FLAGS": "", "JAX_PLATFORMS": "cpu"}  # one CPU device, as a user runs it


def assert_one_fatal_line(result, starts):
    assert result.returncode != 0
    assert "Traceback" not in result.stderr, result.stderr
    assert result.stderr.strip().splitlines()[-1].startswith(f"FATAL {starts}"), result.stderr


# --- a bad dataset or config: one FATAL line before the first step ---

def rewrite_shard(path, change):
    """Rewrites every record of an ArrayRecord shard through `change` (row of int32 ids -> bytes)."""
    import grain
    from array_record.python.array_record_module import ArrayRecordWriter

    rows = [records.decode_sequence(r) for r in grain.sources.ArrayRecordDataSource([path])]
    writer = ArrayRecordWriter(path, "group_size:1")
    for row in rows:
        writer.write(change(row))
    writer.close()


def edit_metadata(data_dir, change):
    path = os.path.join(data_dir, records.METADATA_FILE)
    raw = json.load(open(path))
    change(raw)
    json.dump(raw, open(path, "w"))


TRAIN_SHARD = "train-00001-of-00002.array_record"
VALIDATION_SHARD = "validation-00000-of-00001.array_record"
DATASET_PROBLEMS = {  # name: (what it does to a dataset folder, a pattern of the one line)
    "metadata.json is not JSON": (lambda d: open(os.path.join(d, "metadata.json"), "w").write("{not json"),
                                  r"metadata.json is not JSON"),
    "metadata.json lacks a key": (lambda d: edit_metadata(d, lambda m: m.pop("seq_len")),
                                  r"metadata.json: seq_len is missing, not an integer"),
    "metadata.json has a wrong type": (lambda d: edit_metadata(d, lambda m: m["splits"]["train"].update(shards="x")),
                                       r"metadata.json: splits.train.shards is 'x', not a list of file names"),
    "a shard is missing": (lambda d: os.remove(os.path.join(d, TRAIN_SHARD)), f"{TRAIN_SHARD} .*does not exist"),
    "a shard is unreadable": (lambda d: os.truncate(os.path.join(d, TRAIN_SHARD), 100),
                              f"{TRAIN_SHARD} .*cannot be read"),
    "records are not seq_len int32 rows": (lambda d: rewrite_shard(os.path.join(d, TRAIN_SHARD),
                                                                   lambda row: row.astype("<i2").tobytes()),
                                           f"{TRAIN_SHARD} holds records of 128 bytes, not 64 int32 tokens"),
    "shards of another tokenizer": (lambda d: rewrite_shard(os.path.join(d, TRAIN_SHARD),
                                                            lambda row: np.where(row >= 0, row + 600, row).tobytes()),
                                    f"{TRAIN_SHARD} holds token id \\d+, outside the 512 ids of .*tokenizer.model"),
    "the validation shard is missing": (lambda d: os.remove(os.path.join(d, VALIDATION_SHARD)),
                                        f"{VALIDATION_SHARD} .*does not exist"),
}


@pytest.fixture
def data_copy(tiny_dataset, tmp_path):
    data_dir = str(tmp_path / "data")
    shutil.copytree(tiny_dataset, data_dir)
    return data_dir


@pytest.mark.parametrize("where, problem", [("data.dir", p) for p in DATASET_PROBLEMS] + [
    ("a data stage", p) for p in DATASET_PROBLEMS if p != "the validation shard is missing"])  # a stage's is unread
def test_a_bad_dataset_stops_training_in_one_line_naming_the_file(tiny_config, data_copy, tmp_path, where, problem):
    damage, message = DATASET_PROBLEMS[problem]
    damage(data_copy)
    tiny_config.eval_every = 2  # validation on: its split is read too
    if where == "a data stage":
        tiny_config.data.stages = ((4, (), data_copy),)
    else:
        tiny_config.data.dir = data_copy
    with pytest.raises(ConfigError, match=message) as error:
        train.train(tiny_config, str(tmp_path / "run"), ONE_DEVICE)
    assert data_copy in str(error.value) and "\n" not in str(error.value)
    assert not os.path.exists(tmp_path / "run" / trained.CHECKPOINTS)


@pytest.mark.parametrize("problem", ["metadata.json is not JSON", "the validation shard is missing",
                                     "shards of another tokenizer"])
def test_evaluate_stops_in_one_line_on_a_bad_dataset(tiny_run, data_copy, problem):
    damage, message = DATASET_PROBLEMS[problem]
    if problem == "shards of another tokenizer":
        damage = lambda d: rewrite_shard(os.path.join(d, VALIDATION_SHARD),  # noqa: E731
                                         lambda row: np.where(row >= 0, row + 600, row).tobytes())
        message = f"{VALIDATION_SHARD} holds token id"
    damage(data_copy)
    args = types.SimpleNamespace(workdir=tiny_run, step=None, ema=False, task=[], fewshot_file="", heldout=True,
                                 data_dir=data_copy, max_batches=1, num_fewshot=0, seed=0)
    with pytest.raises(ConfigError, match=message):
        evaluate._evaluate_run(args)


@pytest.mark.parametrize("args, starts", [
    (["--config=configs/no_such_config.py", "--config.num_train_steps=2"],
     "--config: [Errno 2] No such file or directory: 'configs/no_such_config.py'"),
    (["--config=configs/tiny.py", "--config.data.dir={data}"], "shard {data}/" + TRAIN_SHARD),
], ids=["a missing config file with an override", "a deleted shard"])
def test_the_training_cli_says_what_is_wrong_in_one_fatal_line(data_copy, tmp_path, args, starts):
    os.remove(os.path.join(data_copy, TRAIN_SHARD))
    command = [sys.executable, "-m", "pretrain_jax.train", f"--workdir={tmp_path / 'run'}",
               *[a.format(data=data_copy) for a in args]]
    result = subprocess.run(command, cwd=REPO, env=CLI_ENV, capture_output=True, text=True, timeout=120)
    assert_one_fatal_line(result, starts.format(data=data_copy))
