"""The acceptance test: near-duplicate recall and precision on perturbed real documents.

Each of 400 stdlib docstrings gets four copies edited at a random rate of up to 8% of
its words (insertions, deletions, substitutions, seeded); the other docstrings stand
alone. Ground truth is computed exactly on normalized 5-gram shingles:

- recall: of the pairs with true Jaccard >= 0.8, the fraction dedup puts in one cluster;
- precision: of the pairs dedup puts in one cluster, the fraction derived from the
  same docstring. (Pairs of one family below 0.8 are not errors: the LSH threshold
  is about 0.72, and a cluster joins copies through their original.)
"""

import itertools
import random

from ground_truth import jaccard, perturb, shingle_set

from data_prep.dedup import DedupConfig, deduplicate
from data_prep.document import Document

NUM_FAMILIES = 400
VARIANTS = 4
MAX_EDIT_RATE = 0.08  # 5-gram Jaccard falls to about 0.45 at 8% edited words


def test_recall_and_precision_on_perturbed_stdlib_docstrings(distinct_docstrings, tmp_path):
    rng = random.Random(1)
    vocabulary = sorted({w for text in distinct_docstrings for w in text.split()})
    family, texts = {}, {}
    for index, text in enumerate(distinct_docstrings):
        texts[f"d{index:04d}/v0"], family[f"d{index:04d}/v0"] = text, index
        for variant in range(1, VARIANTS + 1 if index < NUM_FAMILIES else 1):
            doc_id = f"d{index:04d}/v{variant}"
            texts[doc_id] = perturb(text, rng.uniform(0, MAX_EDIT_RATE), vocabulary, rng)
            family[doc_id] = index
    docs = [Document(doc_id, "stdlib", doc_id, text) for doc_id, text in texts.items()]
    result = deduplicate(docs, str(tmp_path), DedupConfig(num_workers=1))

    sets = {doc_id: shingle_set(text) for doc_id, text in texts.items()}
    cluster = {doc_id: result.representative(doc_id) for doc_id in texts}
    members = {}
    for doc_id, rep in cluster.items():
        members.setdefault(rep, []).append(doc_id)
    predicted = [pair for group in members.values() for pair in itertools.combinations(group, 2)]
    families = {}
    for doc_id, index in family.items():
        families.setdefault(index, []).append(doc_id)
    true_pairs = [(a, b) for group in families.values() for a, b in itertools.combinations(group, 2)
                  if jaccard(sets[a], sets[b]) >= 0.8]
    found = sum(cluster[a] == cluster[b] for a, b in true_pairs)
    correct = sum(family[a] == family[b] for a, b in predicted)
    high = sum(jaccard(sets[a], sets[b]) >= 0.5 for a, b in predicted)
    recall, precision = found / len(true_pairs), correct / max(1, len(predicted))
    message = (f"recall {recall:.4f} ({found}/{len(true_pairs)} pairs with J >= 0.8), precision {precision:.4f} "
               f"({correct}/{len(predicted)} clustered pairs of one family; {high} with J >= 0.5); "
               f"{len(docs)} docs, stats {result.stats}")
    print(message)
    assert len(true_pairs) >= 500, message
    assert recall >= 0.95, message
    assert precision >= 0.99, message
