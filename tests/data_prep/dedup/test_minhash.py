"""MinHash signatures estimate Jaccard similarity; bands turn equal signature parts into keys."""

import numpy as np
import pytest

from ground_truth import jaccard, shingle_set

from data_prep.dedup import minhash
from data_prep.dedup.normalize import normalize_words


def test_signatures_shape_dtype_and_determinism(distinct_docstrings):
    words = [normalize_words(t) for t in distinct_docstrings[:20]]
    sigs = minhash.signatures(words)
    assert sigs.shape == (20, 112) and sigs.dtype == np.uint32
    np.testing.assert_array_equal(sigs, minhash.signatures(words))
    assert not np.array_equal(sigs, minhash.signatures(words, seed=2))


def test_estimated_jaccard_is_close_to_the_true_one(distinct_docstrings):
    base = distinct_docstrings[0].split()
    texts = [" ".join(base), " ".join(base[: len(base) // 2] + ["inserted"] + base[len(base) // 2:])]
    texts.append(" ".join(base[: len(base) * 3 // 4]))
    sigs = minhash.signatures([normalize_words(t) for t in texts], num_perm=1024)
    edges = np.array([[0, 1], [0, 2]])
    estimated = minhash.estimated_jaccard(sigs, edges)
    true = [jaccard(shingle_set(texts[a]), shingle_set(texts[b])) for a, b in edges]
    np.testing.assert_allclose(estimated, true, atol=0.05)  # 3 standard errors at 1024 permutations


def test_band_keys_are_equal_exactly_where_bands_are():
    sigs = np.arange(2 * 112, dtype=np.uint32).reshape(2, 112)
    sigs[1, 8:16] = sigs[0, 8:16]  # band 1 shared
    keys = minhash.band_keys(sigs)
    assert keys.shape == (2, 14) and keys.dtype == np.uint64
    assert (keys[0] == keys[1]).tolist() == [i == 1 for i in range(14)]


def test_band_keys_reject_a_signature_that_does_not_split():
    with pytest.raises(ValueError, match="14 bands x 8 rows"):
        minhash.band_keys(np.zeros((1, 100), np.uint32))


def test_fineweb_bands_put_the_threshold_near_072():
    assert minhash.lsh_threshold() == pytest.approx(0.719, abs=1e-3)
