"""Grain over packed shards: segment ids, positions, determinism and resumable iteration."""

import numpy as np

from data_prep import records
from pretrain_jax import input_pipeline

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


def test_train_batches_are_seeded_and_resume_from_a_saved_state(tiny_config, tiny_dataset):
    metadata = records.read_metadata(tiny_dataset)
    first = input_pipeline.train_iterator(tiny_config, metadata)
    head = take(first, 3)
    state = first.get_state()
    tail = take(first, 3)

    again = input_pipeline.train_iterator(tiny_config, metadata)
    np.testing.assert_array_equal(np.stack(take(again, 3)), np.stack(head))
    resumed = input_pipeline.train_iterator(tiny_config, metadata)
    resumed.set_state(state)
    np.testing.assert_array_equal(np.stack(take(resumed, 3)), np.stack(tail))

    tiny_config.seed = 1
    other_seed = input_pipeline.train_iterator(tiny_config, metadata)
    assert not np.array_equal(np.stack(take(other_seed, 3)), np.stack(head))


def test_train_batches_have_the_configured_shape(tiny_config, tiny_dataset):
    batch = next(input_pipeline.train_iterator(tiny_config, records.read_metadata(tiny_dataset)))
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
