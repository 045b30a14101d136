"""The training rows by position: data stages, per-stage proportions, batch-size ramps, skips and resumes."""

import dataclasses
import json
import shutil

import grain
import numpy as np
import pytest

from pretrain_common import records
from pretrain_jax import train_data


@pytest.mark.parametrize("proportions", [(1,), (1, 3), (5, 2, 3), (1, 1000)])
def test_split_counts_give_one_row_per_position_in_order_and_in_proportion(proportions):
    n = np.arange(0, 4000)
    counts = train_data.split_counts(n, proportions)
    np.testing.assert_array_equal(counts.sum(axis=-1), n)  # every row goes to exactly one source
    steps = np.diff(counts, axis=0)
    assert set(np.unique(steps)) <= {0, 1} and (steps.sum(axis=-1) == 1).all()  # each row: one source, next key
    total = sum(proportions)
    np.testing.assert_allclose(counts[-1] / n[-1], np.array(proportions) / total, atol=2 / n[-1])


def test_rows_between_follows_the_batch_schedule():
    schedule = [(0, 4), (3, 8), (5, 16)]
    assert train_data.rows_between(schedule, 0, 3) == 12
    assert train_data.rows_between(schedule, 0, 7) == 12 + 16 + 32
    assert train_data.rows_between(schedule, 4, 6) == 8 + 16
    assert [train_data.batch_size(schedule, s) for s in (0, 2, 3, 4, 5, 100)] == [4, 4, 8, 8, 16, 16]


def _shard_rows(data_dir, name=None, split="train"):
    metadata = records.read_metadata(data_dir)
    source = grain.sources.ArrayRecordDataSource(metadata.shard_paths(data_dir, split, name))
    return [np.maximum(records.decode_sequence(source[i]), 0).tobytes() for i in range(len(source))]


@pytest.fixture
def two_source_dataset(tiny_dataset, tmp_path):
    """The tiny dataset (real stdlib code) with its two train shards as two sources, "a" and "b", weighted 1:3."""
    data_dir = tmp_path / "mixed"
    shutil.copytree(tiny_dataset, data_dir)
    raw = json.loads((data_dir / records.METADATA_FILE).read_text())
    shards = raw["splits"]["train"]["shards"]
    raw["mixture"] = {"train": {name: {"shards": [shard], "documents": 0, "sequences": 0, "tokens": 0, "weight": w}
                                for name, shard, w in zip("ab", shards, (0.25, 0.75))}}
    (data_dir / records.METADATA_FILE).write_text(json.dumps(raw))
    return str(data_dir)


def _sources_of(batches, data_dir):
    source_of = {row: name for name in "ab" for row in _shard_rows(data_dir, name)}
    return [source_of[row.tobytes()] for batch in batches for row in batch["tokens"]]


def take(iterator, n):
    return [{k: v.copy() for k, v in next(iterator).items()} for _ in range(n)]


def test_each_stage_draws_its_sources_at_its_weights_and_sources_continue_across_stages(tiny_config,
                                                                                       two_source_dataset):
    tiny_config.data.dir = two_source_dataset
    tiny_config.num_train_steps = 200
    tiny_config.data.stages = ((40, (("a", 3), ("b", 1))), (80, (("a", 0), ("b", 1))))
    batches = take(train_data.TrainData(tiny_config, records.read_metadata(two_source_dataset)), 120)
    drawn = _sources_of(batches, two_source_dataset)
    rows = tiny_config.global_batch_size
    for (first, last), share_of_a in (((0, 40), 0.25), ((40, 80), 0.75), ((80, 120), 0.0)):
        stage = drawn[first * rows:last * rows]
        assert abs(stage.count("a") / len(stage) - share_of_a) < 0.03, (first, stage.count("a") / len(stage))
    # Source b continues in each stage where it stopped (a restart would repeat its first rows): within its
    # epoch (3,767 rows), none of its 640 rows repeats.
    b_rows = [row.tobytes() for batch in batches for row in batch["tokens"]]
    b_rows = [row for row, source in zip(b_rows, drawn) if source == "b"]
    assert len(b_rows) < len(_shard_rows(two_source_dataset, "b")) and len(set(b_rows)) == len(b_rows)


def test_a_stage_of_another_dataset_is_read_and_must_share_the_tokenizer(tiny_config, tiny_dataset,
                                                                       two_source_dataset, tmp_path):
    tiny_config.data.dir = two_source_dataset
    tiny_config.data.stages = ((3, (), tiny_dataset),)  # the unmixed copy of the same shards
    data = train_data.TrainData(tiny_config, records.read_metadata(two_source_dataset))
    batches = take(data, 6)
    assert data.get_state()["source_rows"] == {"0:a": 6, "0:b": 18}  # at stage 2's start: 24 rows of 1:3
    all_rows = set(_shard_rows(tiny_dataset))
    assert all(row.tobytes() in all_rows for batch in batches[3:] for row in batch["tokens"])

    other = tmp_path / "other"
    shutil.copytree(tiny_dataset, other)
    with open(other / "tokenizer.model", "ab") as f:
        f.write(b"\0")
    tiny_config.data.stages = ((3, (), str(other)),)
    with pytest.raises(ValueError, match=r"stages\[0\] reads .* another tokenizer"):
        train_data.TrainData(tiny_config, records.read_metadata(two_source_dataset))


@pytest.mark.parametrize("stages, message", [
    (((0, ()),), r"stages\[0\] starts at step 0, not after"),
    (((5, ()), (5, ())), r"stages\[1\] starts at step 5, not after"),
    (((5,),), r"stages\[0\]=\(5,\): a stage is"),
    (((5, (("a", 1), ("c", 1))),), r"stages\[0\] must name each of the sources \['a', 'b'\]"),
    (((5, (("a", -1), ("b", 1))),), r"stages\[0\] must be >= 0 with a positive sum"),
    (((5, (), "/no/such/dir"),), r"/no/such/dir/metadata.json not found"),
])
def test_bad_stages_are_refused_in_one_line(tiny_config, two_source_dataset, stages, message):
    tiny_config.data.dir = two_source_dataset
    tiny_config.data.stages = stages
    with pytest.raises((ValueError, FileNotFoundError), match=message):
        train_data.TrainData(tiny_config, records.read_metadata(two_source_dataset))


def test_a_resume_continues_exactly_across_a_stage_boundary_and_refuses_a_changed_past_stage(tiny_config,
                                                                                           two_source_dataset):
    tiny_config.data.dir = two_source_dataset
    tiny_config.data.stages = ((4, (("a", 1), ("b", 1))),)
    metadata = records.read_metadata(two_source_dataset)
    straight = take(train_data.TrainData(tiny_config, metadata), 8)
    first = train_data.TrainData(tiny_config, metadata)
    take(first, 3)
    state = json.loads(json.dumps(first.get_state()))  # as a checkpoint stores it
    resumed = train_data.TrainData(tiny_config, metadata)
    resumed.set_state(state)
    for a, b in zip(take(resumed, 5), straight[3:]):
        np.testing.assert_array_equal(a["tokens"], b["tokens"])

    tiny_config.data.stages = ((6, (("a", 1), ("b", 1))),)  # a later stage may change before it starts
    changed_ahead = train_data.TrainData(tiny_config, metadata)
    changed_ahead.set_state(state)
    take(first, 5)
    assert first.get_state()["stage"] == 1
    state_in_stage = json.loads(json.dumps(first.get_state()))
    with pytest.raises(ValueError, match="changes the stage that starts at step 4, which this run \\(at step 8\\)"):
        changed_ahead.set_state(state_in_stage)


def test_a_batch_ramp_takes_consecutive_rows_and_a_changed_batch_size_resumes_at_the_same_row(tiny_config):
    tiny_config.global_batch_schedule = ((0, 2), (2, 4), (4, 8))
    metadata = records.read_metadata(tiny_config.data.dir)
    data = train_data.TrainData(tiny_config, metadata)
    batches = take(data, 6)
    assert [len(b["tokens"]) for b in batches] == [2, 2, 4, 4, 8, 8]
    assert data.get_state()["row"] == 28
    tiny_config.global_batch_schedule = ()
    unramped = np.concatenate([b["tokens"] for b in take(train_data.TrainData(tiny_config, metadata), 5)])
    np.testing.assert_array_equal(np.concatenate([b["tokens"] for b in batches])[:28], unramped[:28])
    # Resumed with another batch size: the next rows, whatever size the batches now are.
    constant = train_data.TrainData(tiny_config, metadata)
    constant.set_state(json.loads(json.dumps(data.get_state())))
    np.testing.assert_array_equal(next(constant)["tokens"], unramped[28:36])


def test_skip_moves_past_whole_batches_without_advancing_the_step(tiny_config):
    metadata = records.read_metadata(tiny_config.data.dir)
    straight = take(train_data.TrainData(tiny_config, metadata), 6)
    data = train_data.TrainData(tiny_config, metadata)
    take(data, 2)
    data.skip(3)
    assert data.get_state()["step"] == 2 and data.get_state()["row"] == 5 * tiny_config.global_batch_size
    np.testing.assert_array_equal(next(data)["tokens"], straight[5]["tokens"])


def test_process_blocks_make_the_same_global_batch_for_any_process_count(tiny_config, monkeypatch):
    metadata = records.read_metadata(tiny_config.data.dir)
    whole = next(train_data.TrainData(tiny_config, metadata))["tokens"]
    parts = []
    for index in range(2):
        monkeypatch.setattr(train_data.jax, "process_index", lambda: index)
        monkeypatch.setattr(train_data.input_pipeline.jax, "process_count", lambda: 2)
        parts.append(next(train_data.TrainData(tiny_config, metadata))["tokens"])
    np.testing.assert_array_equal(np.concatenate(parts), whole)


def test_a_checkpoint_of_the_old_format_is_refused_in_one_line(tiny_config):
    data = train_data.TrainData(tiny_config, records.read_metadata(tiny_config.data.dir))
    with pytest.raises(ValueError, match="older version of pretrain_jax"):
        data.set_state({"next_index": 3})


def test_stage_metadata_keeps_prepared_weights_when_a_stage_gives_none(tiny_config, two_source_dataset):
    tiny_config.data.dir = two_source_dataset
    tiny_config.data.stages = ((2, ()),)
    data = train_data.TrainData(tiny_config, records.read_metadata(two_source_dataset))
    assert [dataclasses.asdict(s)["weights"] for s in data.stages] == [{"a": 0.25, "b": 0.75}] * 2
