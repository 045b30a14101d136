"""Near-duplicate clusters split across workers are those of one union-find over every edge.

Real text with planted near-duplicates: stdlib docstrings, each of the first 150 followed
by a chain of edits (each variant edits the one before, so a cluster is a path, not a
star, and takes several large-star / small-star rounds), some exact copies, and an
earlier stage's cluster size on some documents. The reference is the single-worker
clustering the stage used before: one union-find over every verified band-collision
edge, the smallest id kept. Both runners, with 1, 2 and 3 workers, must give its
verdicts and cluster sizes exactly.
"""

import collections
import random

import apache_beam as beam
import numpy as np
import pytest
from apache_beam.options.pipeline_options import PipelineOptions
from apache_beam.testing.util import assert_that, equal_to
from ground_truth import perturb

from data_prep.dedup import CLUSTER_SIZE, DedupConfig, Duplicate, deduplicate, minhash
from data_prep.dedup.beam import NearDuplicates
from data_prep.dedup.buckets import RECORD, star_edges
from data_prep.dedup.clusters import clusters_from_edges, keeper
from data_prep.dedup.normalize import normalize_words
from data_prep.document import Document

FAMILIES = 150
CHAIN = 4  # edits in a row, each at EDIT_RATE of the one before
EDIT_RATE = 0.02
NEAR = DedupConfig(exact=False, near=True)


@pytest.fixture(scope="module")
def docs(distinct_docstrings) -> list[Document]:
    rng = random.Random(2)
    vocabulary = sorted({w for text in distinct_docstrings for w in text.split()})
    texts = {}
    for index, text in enumerate(distinct_docstrings[:600]):
        texts[f"d{index:04d}/v0"] = text
        for variant in range(1, CHAIN + 1 if index < FAMILIES else 1):
            text = texts[f"d{index:04d}/v{variant}"] = perturb(text, EDIT_RATE, vocabulary, rng)
        if index % 10 == 0:
            texts[f"d{index:04d}/copy"] = text
    ids = rng.sample(sorted(texts), len(texts))  # input order is not id order
    return [Document(doc_id, "stdlib", doc_id, texts[doc_id], {CLUSTER_SIZE: 3} if i % 7 == 0 else {})
            for i, doc_id in enumerate(ids)]


@pytest.fixture(scope="module")
def reference(docs) -> tuple[dict[str, Duplicate], dict[str, int]]:
    """Verdicts and cluster sizes of one union-find over all verified edges (the single-worker version)."""
    sigs = minhash.signatures([normalize_words(d.text) for d in docs], NEAR.num_perm, NEAR.ngram, NEAR.seed)
    keys = minhash.band_keys(sigs, NEAR.bands, NEAR.rows)
    records = np.empty(keys.size, RECORD)
    records["k0"] = np.tile(np.arange(NEAR.bands, dtype=np.uint64), len(docs))
    records["k1"], records["doc"] = keys.ravel(), np.repeat(np.arange(len(docs), dtype=np.uint64), NEAR.bands)
    edges = star_edges(records)
    edges = edges[minhash.estimated_jaccard(sigs, edges) >= NEAR.verify_threshold]
    ids = [d.id for d in docs]
    removed, sizes = {}, {}
    for cluster in clusters_from_edges([edges]):
        kept = keeper(cluster, ids)
        removed.update((ids[i], Duplicate(minhash.REMOVED, ids[kept])) for i in cluster if i != kept)
        sizes[ids[kept]] = sum(docs[i].metadata.get(CLUSTER_SIZE, 1) for i in cluster)
    chains = collections.Counter(d.kept_id for d in removed.values())
    assert len(chains) >= FAMILIES * 0.9 and max(chains.values()) >= CHAIN  # the planted clusters were found
    return removed, sizes


@pytest.mark.parametrize("workers", [1, 2, 3])
def test_local_workers_cluster_as_one_union_find(docs, reference, workers, tmp_path):
    config = DedupConfig(exact=False, near=True, num_workers=workers, pool_after_docs=0)  # processes from the start
    result = deduplicate(docs, str(tmp_path), config)
    assert (result.removed, result.cluster_sizes) == reference
    assert result.stats["rounds"] >= 2  # paths took rounds of large-star / small-star to become stars


@pytest.mark.parametrize("workers, rounds", [(1, NEAR.component_rounds), (2, NEAR.component_rounds), (3, 1)])
def test_beam_workers_cluster_as_one_union_find(docs, reference, workers, rounds):
    """3 workers with one round: the edges are not stars yet, and the rest meet in the union-find combine."""
    removed, sizes = reference
    options = PipelineOptions(["--runner=FnApiRunner", "--direct_running_mode=multi_processing",
                               f"--direct_num_workers={workers}"])
    config = DedupConfig(exact=False, near=True, component_rounds=rounds)
    with beam.Pipeline(options=options) as pipeline:
        verdicts, clusters = (pipeline | beam.Create([((0, 0, i), doc) for i, doc in enumerate(docs)])
                              | NearDuplicates(config))
        assert_that(verdicts, equal_to(list(removed.items())), label="Verdicts")
        assert_that(clusters | beam.Map(lambda c: (c[0], c[3])), equal_to(list(sizes.items())), label="Sizes")
