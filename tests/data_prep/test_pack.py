"""pack: documents laid end to end in records of exactly seq_len tokens, padded only at the end."""

import os

import numpy as np
import pytest

from data_prep import pack

from pretrain_common import records

EOS = 2
SEQ_LEN = 16


def _docs(lengths, seed=0):
    """Documents of the given lengths (separator included), with ids that are never EOS or PAD."""
    rng = np.random.default_rng(seed)
    return [np.append(rng.integers(3, 1000, n - 1), EOS).astype(np.int32) for n in lengths]


LENGTHS = {
    "one short document": [5],
    "exact fit": [8, 8],
    "a document longer than two records": [3, 40, 4],
    "many small documents": [1, 2, 3, 4, 5, 6, 7] * 5,
}


@pytest.mark.parametrize("lengths", LENGTHS.values(), ids=LENGTHS.keys())
def test_all_tokens_are_kept_in_order(lengths):
    docs = _docs(lengths)
    sequences = list(pack.pack(docs, SEQ_LEN))
    assert np.array_equal(np.concatenate(sequences), np.concatenate(docs))


@pytest.mark.parametrize("lengths", LENGTHS.values(), ids=LENGTHS.keys())
def test_only_the_last_sequence_is_short(lengths):
    sequences = list(pack.pack(_docs(lengths), SEQ_LEN))
    assert all(len(s) == SEQ_LEN for s in sequences[:-1])
    assert 0 < len(sequences[-1]) <= SEQ_LEN


def test_a_long_document_continues_into_the_next_records():
    sequences = list(pack.pack(_docs([3, 40]), SEQ_LEN))
    assert len(sequences) == 3  # 43 tokens
    assert sequences[0][2] == EOS and EOS not in sequences[1] and sequences[2][-1] == EOS


def test_nothing_in_nothing_out():
    assert list(pack.pack([], SEQ_LEN)) == []


@pytest.fixture
def shard(tmp_path):
    docs = _docs([3, 40, 4, 9, 1])
    path = str(tmp_path / pack.shard_name("train", 0, 1))
    return docs, path, pack.write_shard(path, iter(docs), SEQ_LEN)


def test_shard_records_are_exactly_seq_len_and_padded_only_at_the_end(shard, read_shard):
    docs, path, _ = shard
    rows = read_shard(path)
    assert all(len(row) == SEQ_LEN for row in rows)
    flat = np.concatenate(rows)
    real = sum(len(d) for d in docs)
    assert np.array_equal(flat[:real], np.concatenate(docs))
    assert np.all(flat[real:] == records.PAD) and len(flat) - real < SEQ_LEN


def test_shard_counts_match_its_contents(shard, read_shard):
    docs, path, stats = shard
    rows = read_shard(path)
    flat = np.concatenate(rows)
    assert stats == pack.PackStats(documents=len(docs), sequences=len(rows), tokens=int(np.sum(flat != records.PAD)))
    assert np.sum(flat == EOS) == len(docs)  # exactly one separator per document


def test_a_shard_appears_only_when_complete(tmp_path):
    path = str(tmp_path / "train-00000-of-00001.array_record")

    def failing_docs():
        yield from _docs([20, 20])
        raise RuntimeError("tokenizer crashed")

    with pytest.raises(RuntimeError):
        pack.write_shard(path, failing_docs(), SEQ_LEN)
    assert os.listdir(tmp_path) == []  # neither the shard nor its temporary file
    pack.write_shard(path, iter(_docs([5])), SEQ_LEN)
    assert os.listdir(tmp_path) == [os.path.basename(path)]


def test_shard_names_follow_the_format():
    assert pack.shard_name("validation", 3, 8) == "validation-00003-of-00008.array_record"
