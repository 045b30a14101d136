"""Grain over packed shards: segment ids, positions, determinism and resumable iteration."""

import dataclasses
import json
import os

import grain
import numpy as np
import pytest

from pretrain_common import records
from pretrain_jax import input_pipeline, train_data

EOS, PAD = 2, records.PAD


def test_segments_and_positions_restart_after_each_separator_and_zero_the_padding():
    rows = np.array([[5, 6, EOS, 7, 8, 9, EOS, 10],
                     [11, 12, 13, EOS, 14, PAD, PAD, PAD]])
    batch = input_pipeline.segments_and_positions(rows, EOS)
    np.testing.assert_array_equal(batch["segment_ids"], [[1, 1, 1, 2, 2, 2, 2, 3],
                                                         [1, 1, 1, 1, 2, 0, 0, 0]])
    np.testing.assert_array_equal(batch["positions"][0], [0, 1, 2, 0, 1, 2, 3, 0])
    np.testing.assert_array_equal(batch["positions"][1][:5], [0, 1, 2, 3, 0])
    np.testing.assert_array_equal(batch["tokens"][1], [11, 12, 13, EOS, 14, 0, 0, 0])
    assert batch["tokens"].dtype == np.int32


def take(iterator, n):
    return [next(iterator)["tokens"].copy() for _ in range(n)]


def _rows(data_dir: str, shard: str) -> list[bytes]:
    """A shard's records as the batches show them: padding as 0."""
    source = grain.sources.ArrayRecordDataSource([os.path.join(data_dir, shard)])
    return [np.maximum(records.decode_sequence(source[i]), 0).tobytes() for i in range(len(source))]


@pytest.fixture
def mixed_metadata(tiny_dataset):
    """The tiny dataset with its two train shards as two sources, "a" and "b", weighted 1:3."""
    metadata = records.read_metadata(tiny_dataset)
    sources = {name: records.SourceInfo([shard], 0, len(_rows(tiny_dataset, shard)), 0, weight)
               for name, shard, weight in zip("ab", metadata.splits["train"].shards, (0.25, 0.75))}
    return dataclasses.replace(metadata, mixture={"train": sources})


@pytest.fixture(params=["single", "mixed"])
def train_metadata(request, tiny_dataset):
    return request.getfixturevalue("mixed_metadata") if request.param == "mixed" else records.read_metadata(tiny_dataset)


def test_train_batches_are_seeded_and_resume_from_a_saved_state(tiny_config, train_metadata):
    first = train_data.TrainData(tiny_config, train_metadata)
    head = take(first, 3)
    state = first.get_state()
    tail = take(first, 3)

    again = train_data.TrainData(tiny_config, train_metadata)
    np.testing.assert_array_equal(np.stack(take(again, 3)), np.stack(head))
    resumed = train_data.TrainData(tiny_config, train_metadata)
    resumed.set_state(state)
    np.testing.assert_array_equal(np.stack(take(resumed, 3)), np.stack(tail))

    tiny_config.seed = 1
    other_seed = train_data.TrainData(tiny_config, train_metadata)
    assert not np.array_equal(np.stack(take(other_seed, 3)), np.stack(head))


@pytest.mark.parametrize("override, share_of_a", [((), 0.25), ((("a", 1), ("b", 1)), 0.5), ((("a", 0), ("b", 1)), 0.0)])
def test_mixed_batches_draw_each_source_at_its_weight(tiny_config, tiny_dataset, mixed_metadata, override, share_of_a):
    source_of = {row: name for name, info in mixed_metadata.mixture["train"].items()
                 for row in _rows(tiny_dataset, info.shards[0])}
    tiny_config.data.mixture_weights = override
    rows = np.concatenate(take(train_data.TrainData(tiny_config, mixed_metadata), 100))
    drawn = [source_of[row.tobytes()] for row in rows]
    assert abs(drawn.count("a") / len(drawn) - share_of_a) < 0.02


def test_a_dataset_written_before_mixtures_still_reads(tiny_dataset, tmp_path):
    with open(os.path.join(tiny_dataset, records.METADATA_FILE)) as f:
        raw = json.load(f)
    del raw["mixture"]
    (tmp_path / records.METADATA_FILE).write_text(json.dumps(raw))
    assert records.read_metadata(str(tmp_path)) == records.read_metadata(tiny_dataset)


def test_train_batches_have_the_configured_shape(tiny_config, tiny_dataset):
    batch = next(train_data.TrainData(tiny_config, records.read_metadata(tiny_dataset)))
    assert set(batch) == {"tokens", "segment_ids", "positions"}
    for array in batch.values():
        assert array.shape == (tiny_config.global_batch_size, tiny_config.seq_len)


def test_evaluation_covers_the_split_once_and_pads_the_last_batch(tiny_config, tiny_dataset):
    metadata = records.read_metadata(tiny_dataset)
    batches = list(input_pipeline.eval_batches(tiny_config, metadata))
    rows = metadata.splits["validation"].sequences
    assert len(batches) == -(-rows // tiny_config.global_batch_size)
    real_rows = sum(int((b["segment_ids"] != 0).any(axis=1).sum()) for b in batches)
    assert real_rows == rows
    real_tokens = sum(int((b["segment_ids"] != 0).sum()) for b in batches)
    assert real_tokens == metadata.splits["validation"].tokens


def test_a_dataset_with_another_sequence_length_is_refused(tiny_config, tiny_dataset):
    tiny_config.seq_len = 128
    try:
        input_pipeline.check_compatible(records.read_metadata(tiny_dataset), tiny_config)
    except ValueError as e:
        assert "config.seq_len=128" in str(e)
    else:
        raise AssertionError("a sequence-length mismatch was accepted")
