"""Real prose for the dedup tests: long docstrings of this Python's standard library."""

import collections
import random
import re

import pytest
from ground_truth import shingle_set

from data_prep import corpora

DOCSTRING = re.compile(r'"""(.*?)"""', re.S)
MIN_WORDS = 80  # long enough that a few edits leave most 5-grams intact


@pytest.fixture(scope="session")
def distinct_docstrings() -> list[str]:
    """Stdlib docstrings of 80+ words, shuffled, none sharing 30% of its 5-grams with another.

    Real documents repeat each other (codecs, copied docstrings); dropping those
    makes "derived from the same docstring" the ground truth for near-duplicates.
    """
    root, files = corpora.python_stdlib_files()
    texts = []
    for path in files:
        with open(path, encoding="utf-8", errors="replace") as f:
            texts += [d for d in DOCSTRING.findall(f.read()) if len(d.split()) >= MIN_WORDS]
    random.Random(0).shuffle(texts)
    kept, sizes, postings = [], [], collections.defaultdict(list)  # postings: shingle -> kept indices
    for text in texts:
        s = shingle_set(text)
        shared = collections.Counter(i for shingle in s for i in postings[shingle])
        if all(n / (len(s) + sizes[i] - n) < 0.3 for i, n in shared.items()):  # exact Jaccard
            for shingle in s:
                postings[shingle].append(len(kept))
            kept.append(text)
            sizes.append(len(s))
    return kept
