"""sampling: splits and the tokenizer sample depend only on document ids and the seed."""

import random

import pytest

from data_prep import sampling

IDS = [f"src/file{i}.txt" for i in range(20_000)]


def _splits(ids, seed=0, fraction=0.1):
    return {i: sampling.split_of(i, fraction, seed) for i in ids}


def test_split_is_deterministic_and_independent_of_order():
    shuffled = random.Random(1).sample(IDS, len(IDS))
    assert _splits(IDS) == _splits(shuffled)


def test_validation_and_train_are_disjoint_and_cover_everything():
    splits = _splits(IDS)
    validation = {i for i, s in splits.items() if s == sampling.VALIDATION}
    train = {i for i, s in splits.items() if s == sampling.TRAIN}
    assert not validation & train and validation | train == set(IDS)


def test_validation_fraction_is_honored():
    fraction = sum(s == sampling.VALIDATION for s in _splits(IDS).values()) / len(IDS)
    assert fraction == pytest.approx(0.1, abs=0.01)


def test_the_seed_changes_the_split():
    assert _splits(IDS, seed=0) != _splits(IDS, seed=1)


def test_fraction_zero_puts_everything_in_train():
    assert set(_splits(IDS[:1000], fraction=0.0).values()) == {sampling.TRAIN}


def test_hash_sample_stays_within_budget_and_ignores_order():
    docs = [(f"d{i}", "x" * (i % 97 + 1)) for i in range(2000)]
    samples = []
    for order in (docs, docs[::-1]):
        sample = sampling.HashSample(max_bytes=10_000, seed=3)
        for doc_id, text in order:
            sample.add(doc_id, text)
        samples.append(sample.texts())
        assert 9_000 < sum(len(t) for t in sample.texts()) <= 10_000
    assert samples[0] == samples[1]




@pytest.mark.parametrize("seed", range(5))
def test_merged_partial_samples_equal_the_sample_of_everything(seed):
    """The Beam runner combines partial samples: merging, in any order, must give exactly the one-pass sample.

    Texts of very different sizes make a part keep a small text that the whole
    sample has no room for, once a larger text before it in hash order filled it.
    """
    rng = random.Random(seed)
    texts = {i: "x" * rng.choice((1, 5, 300)) for i in IDS[:400]}
    whole = sampling.HashSample(3_000, seed)
    owners = [rng.randrange(8) for _ in texts]
    for i, text in texts.items():
        whole.add(i, text)
    for order in (range(8), reversed(range(8))):
        parts = [sampling.HashSample(3_000, seed) for _ in range(8)]
        for owner, (i, text) in zip(owners, texts.items()):
            parts[owner].add(i, text)
        merged, *others = [parts[k] for k in order]
        for part in others:
            merged.merge(part)
        assert merged.texts() == whole.texts() and 0 < len(whole.texts()) < len(texts)
        assert merged.num_bytes == whole.num_bytes


def test_merge_keeps_out_what_another_part_had_no_room_for():
    """In hash order: 5 bytes, 6 bytes, 1 byte, budget 10: the sample is the first alone, however it is split."""
    first, second, third = sorted(IDS[:3], key=lambda i: sampling.unit_hash(i, 0))
    holds_two, holds_one = sampling.HashSample(10, 0), sampling.HashSample(10, 0)
    holds_two.add(first, "a" * 5)
    holds_two.add(second, "b" * 6)
    holds_one.add(third, "c")
    holds_one.merge(holds_two)
    assert holds_one.texts() == ["a" * 5]
