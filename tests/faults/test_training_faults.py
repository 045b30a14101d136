"""Faults a long training run meets: damaged checkpoints, a full disk, kill -9, bad datasets, a missing config.

A damaged checkpoint must never load silently: the trainer falls back to the newest
intact one with one warning line, or stops with one FATAL line when none is intact.
A bad dataset or config is one FATAL line naming the file, before the first step.
A run killed at any point and started again ends bitwise as one never interrupted.
"""

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import threading
import time

import jax
import numpy as np
import pytest

from pretrain_common import records
from pretrain_common.errors import ConfigError
from pretrain_jax import (average, checkpointing, cli, hooks, metrics, sharding, train, train_data,
                          train_state, trained)

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
ONE_DEVICE = jax.devices()[:1]
CLI_ENV = {**os.environ, "XLA_FLAGS": "", "JAX_PLATFORMS": "cpu"}  # one CPU device, as a user runs it


def train_command(data_dir, workdir, *overrides):
    return [sys.executable, "-m", "pretrain_jax.train", "--config=configs/tiny.py", f"--workdir={workdir}",
            f"--config.data.dir={data_dir}", *overrides]


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
    with pytest.raises(SystemExit, match=f"^FATAL .*{message}"):
        cli.main(["evaluate", f"--workdir={tiny_run}", f"--data_dir={data_copy}", "--max_batches=1"])


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


def assert_same(a, b, message=""):
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y), err_msg=message)


# --- damaging a checkpoint: tiny_run has steps 5 and 10 ---

def flip(path, count=48):
    """Inverts `count` bytes a third of the way into the file (a bad sector, a bit rot)."""
    data = bytearray(open(path, "rb").read())
    start = len(data) // 3
    data[start:start + count] = bytes(b ^ 0xFF for b in data[start:start + count])
    open(path, "wb").write(data)


def largest_state_file(step_dir):
    files = [os.path.join(root, name) for root, _, names in os.walk(os.path.join(step_dir, "state")) for name in names]
    return max(files, key=os.path.getsize)


def remove(path):
    (shutil.rmtree if os.path.isdir(path) else os.remove)(path)


DAMAGES = {  # name: what it does to a step's folder
    "truncate the largest state file": lambda d: os.truncate(largest_state_file(d), os.path.getsize(
        largest_state_file(d)) // 2),
    "flip 48 bytes in the largest state file": lambda d: flip(largest_state_file(d)),
    "delete state/_METADATA": lambda d: remove(os.path.join(d, "state", "_METADATA")),
    "delete state/manifest.ocdbt": lambda d: remove(os.path.join(d, "state", "manifest.ocdbt")),
    "delete the state item": lambda d: remove(os.path.join(d, "state")),
    "empty the data position": lambda d: open(os.path.join(d, "data", "metadata"), "w").close(),
    "delete the data position": lambda d: remove(os.path.join(d, "data")),
    "delete the checksums": lambda d: remove(os.path.join(d, checkpointing.MANIFEST)),
}


@pytest.fixture
def run_copy(tiny_run, tmp_path):
    """A copy of tiny_run (checkpoints at steps 5 and 10) to damage."""
    workdir = str(tmp_path / "run")
    shutil.copytree(tiny_run, workdir)
    return workdir


def step_dir(workdir, step):
    return os.path.join(workdir, trained.CHECKPOINTS, str(step))


def resume(config, workdir):
    """(state, next batch tokens) as the trainer resumes: a Checkpointer that sets damaged checkpoints aside."""
    setup = train_state.setup(config, ONE_DEVICE)
    data = train_data.TrainData(config, records.read_metadata(config.data.dir))
    ckpt = checkpointing.Checkpointer(os.path.join(workdir, trained.CHECKPOINTS), every=0, keep=None,
                                      set_aside_damaged=True)
    try:
        state = ckpt.restore(setup.abstract, data)
    finally:
        ckpt.close()
    return state, next(data)["tokens"]


@pytest.fixture
def pristine(tiny_config, tiny_run, restore):
    """{step: (state, next batch tokens)} of tiny_run's two checkpoints, read undamaged."""
    mesh = sharding.make_mesh(tiny_config.mesh, ONE_DEVICE)
    data = train_data.TrainData(tiny_config, records.read_metadata(tiny_config.data.dir))
    step5 = trained.restore_state(tiny_config, tiny_run, mesh, data, step=5)
    return {5: (step5, next(data)["tokens"]), 10: restore(tiny_config, tiny_run)}


@pytest.mark.parametrize("damage", DAMAGES)
def test_a_damaged_newest_checkpoint_falls_back_to_the_previous_one_with_one_warning(
        tiny_config, run_copy, pristine, capsys, damage):
    DAMAGES[damage](step_dir(run_copy, 10))
    state, tokens = resume(tiny_config, run_copy)
    warnings = [line for line in capsys.readouterr().out.splitlines() if line.startswith("WARNING")]
    assert len(warnings) == 1 and "checkpoint step 10 (" in warnings[0] and warnings[0].endswith(
        "resuming from step 5"), warnings
    assert_same(state, pristine[5][0])
    np.testing.assert_array_equal(tokens, pristine[5][1])
    # Set aside, so the run saves step 10 anew: the folder holds only the intact step.
    assert sorted(os.listdir(os.path.join(run_copy, trained.CHECKPOINTS))) == ["5"]
    assert os.listdir(os.path.join(run_copy, checkpointing.DAMAGED)) == ["10"]


def test_deleting_any_one_file_of_the_newest_checkpoint_loads_it_exactly_or_falls_back(
        tiny_config, tiny_run, tmp_path, pristine, capsys):
    """Orbax needs some files and not others (commit markers, its own step metadata): either way the values
    that load are the saved ones."""
    newest = step_dir(tiny_run, 10)
    names = sorted(os.path.relpath(os.path.join(root, name), newest)
                   for root, _, files in os.walk(newest) for name in files)
    outcomes = {}
    for i, name in enumerate(names):
        workdir = str(tmp_path / str(i))
        shutil.copytree(tiny_run, workdir)
        os.remove(os.path.join(step_dir(workdir, 10), name))
        state, tokens = resume(tiny_config, workdir)
        outcomes[name] = int(state.step)
        assert_same(state, pristine[outcomes[name]][0])
        np.testing.assert_array_equal(tokens, pristine[outcomes[name]][1])
        warned = "WARNING damaged checkpoint step 10 (" in capsys.readouterr().out
        assert warned == (outcomes[name] == 5), name
    needed = {"state/_METADATA", "state/manifest.ocdbt", "data/metadata", "checksums/metadata"}
    assert {name for name, step in outcomes.items() if step == 5} >= needed, outcomes


def test_no_intact_checkpoint_is_one_line_naming_each_and_leaves_them(tiny_config, run_copy):
    DAMAGES["flip 48 bytes in the largest state file"](step_dir(run_copy, 10))
    DAMAGES["empty the data position"](step_dir(run_copy, 5))
    with pytest.raises(ConfigError, match=r"^no intact checkpoint in .*: step 10 \((checksums differ for|its state "
                                          r"item: ).*\); step 5 \(its data item: .*\)\. Restore the files") as error:
        train.train(tiny_config, run_copy, ONE_DEVICE)
    assert "\n" not in str(error.value)
    assert sorted(os.listdir(os.path.join(run_copy, trained.CHECKPOINTS))) == ["10", "5"]


def test_a_run_resumed_past_a_damaged_checkpoint_ends_bitwise_as_the_undamaged_run(
        tiny_config, run_copy, pristine, restore, capsys):
    """The flipped bytes used to load silently (a head weight of 1.4e35, NaNs in Adam's second moment)."""
    DAMAGES["flip 48 bytes in the largest state file"](step_dir(run_copy, 10))
    train.train(tiny_config, run_copy, ONE_DEVICE)  # resumes at step 5, trains to 10 again
    output = capsys.readouterr().out
    assert f"resumed from {run_copy} at step 5" in output
    state, tokens = restore(tiny_config, run_copy)
    assert_same(state, pristine[10][0])
    np.testing.assert_array_equal(tokens, pristine[10][1])


def without_checksums(step_folder):
    """The step as an older version wrote it: no checksums item, no mark of one in orbax's step metadata."""
    remove(os.path.join(step_folder, checkpointing.MANIFEST))
    path = os.path.join(step_folder, checkpointing.STEP_METADATA)
    meta = json.load(open(path))
    meta["custom_metadata"] = {}
    json.dump(meta, open(path, "w"))


def test_a_checkpoint_of_an_older_version_loads_unverified_with_a_note(tiny_config, run_copy, pristine, capsys):
    without_checksums(step_dir(run_copy, 10))
    state, _ = resume(tiny_config, run_copy)
    assert_same(state, pristine[10][0])
    assert "NOTE checkpoint step 10 in " in capsys.readouterr().out


def damage_every_array(step_folder, every=512):
    """Inverts one byte in every `every` of each array data file: whatever the layout orbax chose, which
    varies from run to run, every array of more than `every` bytes is hit."""
    for root, _, names in os.walk(os.path.join(step_folder, "state", "ocdbt.process_0", "d")):
        for name in names:
            data = bytearray(open(os.path.join(root, name), "rb").read())
            data[every // 2::every] = bytes(b ^ 0xFF for b in data[every // 2::every])
            open(os.path.join(root, name), "wb").write(data)


def test_readers_of_a_workdir_verify_what_they_read(tiny_config, run_copy, tmp_path, capsys):
    """evaluate, generate and export (trained.load) fall back from a damaged newest checkpoint; a reader given
    the damaged step (--step, init_from, average) stops with the step and what is wrong."""
    damage_every_array(step_dir(run_copy, 10))
    assert trained.load(run_copy).step == 5
    assert "WARNING damaged checkpoint step 10 (" in capsys.readouterr().out
    damaged = r"checkpoint step 10 in .* is damaged: .*; read another step \(it has steps \[5, 10\]\)"
    with pytest.raises(checkpointing.DamagedCheckpoint, match=damaged):
        trained.load(run_copy, step=10)
    with pytest.raises(checkpointing.DamagedCheckpoint, match=damaged):
        average.average([f"{run_copy}@10"], str(tmp_path / "soup"))
    tiny_config.init.source = f"{run_copy}@10"
    with pytest.raises(checkpointing.DamagedCheckpoint, match=damaged):
        trained.state_from_source(tiny_config, train_state.setup(tiny_config, ONE_DEVICE))


def test_a_rollback_skips_a_damaged_checkpoint(tiny_config, run_copy, pristine, tmp_path, capsys):
    DAMAGES["truncate the largest state file"](step_dir(run_copy, 10))
    tiny_config.spike.rollback_batches = 1
    setup = train_state.setup(tiny_config, ONE_DEVICE)
    data = train_data.TrainData(tiny_config, records.read_metadata(tiny_config.data.dir))
    ckpt = checkpointing.Checkpointer(os.path.join(run_copy, trained.CHECKPOINTS), every=5, keep=None,
                                      set_aside_damaged=True)
    run = hooks.Run(tiny_config, run_copy, setup, setup.init(tiny_config), data, ckpt,
                    metrics.ScalarWriter(str(tmp_path / "tensorboard")), hooks.Progress(1.0, 1.0), step=12,
                    metrics={"spike": True, "rollbacks": 0})
    try:
        hooks.rollback(run, 12)
    finally:
        ckpt.close()
        run.writer.close()
    assert run.step == 5 and "WARNING damaged checkpoint step 10 (" in capsys.readouterr().out
    assert_same(run.state.params, pristine[5][0].params)


# --- a full disk while saving ---

def test_a_full_disk_while_saving_is_one_fatal_line_and_keeps_the_previous_checkpoint(
        tiny_config, run_copy, pristine, restore):
    """A file-size limit (RLIMIT_FSIZE, with SIGXFSZ ignored) makes the writes of step 15's larger files fail
    as a full disk does (EFBIG instead of ENOSPC; a tmpfs mount needs privileges CI lacks)."""
    limit = 300_000  # above config.json, tokenizer.model and the event file; below a step's array data file
    small_disk = ("import os, resource, signal, sys; signal.signal(signal.SIGXFSZ, signal.SIG_IGN); "
                  f"resource.setrlimit(resource.RLIMIT_FSIZE, ({limit}, {limit})); "
                  "os.execv(sys.executable, sys.argv[1:])")
    command = [sys.executable, "-c", small_disk, *train_command(tiny_config.data.dir, run_copy,
                                                                 "--config.num_train_steps=20")]
    result = subprocess.run(command, cwd=REPO, env=CLI_ENV, capture_output=True, text=True, timeout=300)
    assert_one_fatal_line(result, f"could not write checkpoint step 15 in {run_copy}/checkpoints: ")
    assert result.stderr.strip().endswith("The newest complete checkpoint is step 10: free space (or fix the "
                                          "folder's permissions) and run the same command again"), result.stderr
    assert "File too large" in result.stderr
    state, tokens = restore(tiny_config, run_copy)  # verified by its checksums
    assert_same(state, pristine[10][0])
    np.testing.assert_array_equal(tokens, pristine[10][1])


# --- kill -9 ---

def kill_9(command, workdir, when, delay=0.0):
    """Starts `command`, polls every millisecond until `when(lines, checkpoint folder names)` holds, waits
    `delay` seconds and kills it with SIGKILL; returns its output lines and the checkpoint folder's names then."""
    process = subprocess.Popen(command, cwd=REPO, env=CLI_ENV, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               text=True)
    lines = []
    reader = threading.Thread(target=lambda: lines.extend(process.stdout), daemon=True)
    reader.start()
    folder = os.path.join(workdir, trained.CHECKPOINTS)
    try:
        while process.poll() is None and not when(list(lines), os.listdir(folder) if os.path.isdir(folder) else []):
            time.sleep(0.001)
        time.sleep(delay)
        process.send_signal(signal.SIGKILL)
        left = sorted(os.listdir(folder)) if os.path.isdir(folder) else []
    finally:
        process.kill()
        process.wait()
        reader.join()
    return lines, left


def test_kill_9_at_random_points_and_resuming_is_bitwise_the_uninterrupted_run(tiny_config, tmp_path, restore):
    """Killed twice: while orbax writes a random step's checkpoint in the background (its temporary folder
    exists), then a random time after a random step's line; each time the same command starts it again."""
    steps, rng = 14, random.Random()
    seed = rng.randrange(2**32)
    rng.seed(seed)
    overrides = (f"--config.num_train_steps={steps}", "--config.checkpoint_every=2",
                 f"--config.optimizer.decay_steps={steps}")
    killed, straight = str(tmp_path / "killed"), str(tmp_path / "straight")
    command = train_command(tiny_config.data.dir, killed, *overrides)
    saving = f"{rng.randrange(2, steps // 2, 2)}.orbax-checkpoint-tmp"
    lines, left = kill_9(command, killed, lambda _, names: saving in names)
    assert saving in left, (seed, left, lines)  # killed while writing that checkpoint
    at, delay = rng.randrange(int(saving.split(".")[0]) + 1, steps), rng.uniform(0.0, 0.3)
    lines, _ = kill_9(command, killed, lambda out, _: any(line.startswith(f"step {at}/") for line in out), delay)
    assert not any("WARNING" in line or "Traceback" in line for line in lines), (seed, lines)
    for workdir in (killed, straight):
        result = subprocess.run(train_command(tiny_config.data.dir, workdir, *overrides), cwd=REPO, env=CLI_ENV,
                                capture_output=True, text=True, timeout=300)
        assert result.returncode == 0 and "WARNING" not in result.stdout, (seed, result.stdout, result.stderr)
    tiny_config.update(num_train_steps=steps, checkpoint_every=2)
    tiny_config.optimizer.decay_steps = steps
    (killed_state, killed_next), (straight_state, straight_next) = restore(tiny_config, killed), restore(
        tiny_config, straight)
    assert int(killed_state.step) == steps, seed
    assert_same(killed_state, straight_state, f"seed {seed}")
    np.testing.assert_array_equal(killed_next, straight_next, err_msg=f"seed {seed}")
