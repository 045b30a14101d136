"""The upsample stage: how often each document is seen in training, by duplicate-cluster size and score.

FineWeb-2's "rehydration": dedup keeps one document of each cluster and records the
cluster's size (dedup.CLUSTER_SIZE); documents of mid-sized clusters, which lasted on
the web, are then repeated, those of huge clusters (boilerplate) are not. The default
table is FineWeb-2's (its README, "Deduplication"): size 1 -> 1 copy, 2 -> 2, 3-4 -> 3,
5-99 -> 5, 100-999 -> 8, 1000 and more -> 1. A table of classifier scores (the quality
stage's, as DCLM and FineWeb-Edu bucket theirs) repeats or drops by score the same way;
with both, a document's copies are the product. 0 copies removes the document.

The stage labels each document with its bucket (mixture.BUCKET_KEY); the copies take
effect through the mixture (data_prep/mixture.py): each source's train split is packed
per bucket and drawn in proportion to copies x tokens, so the report's mixture table
gives each bucket's tokens, weight and epochs. Validation is not upsampled.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from typing import Any

import ml_collections

from data_prep.dedup import CLUSTER_SIZE
from data_prep.document import Document, Dropped, Result
from data_prep.mixture import BUCKET_KEY
from data_prep.stage import DocumentStage, Tallies, register
from pretrain_common.errors import ConfigError

# FineWeb-2's rehydration weights: (smallest cluster size, copies), ascending.
FINEWEB2_CLUSTER_COPIES = ((1, 1), (2, 2), (3, 3), (5, 5), (100, 8), (1000, 1))
DEDUP_STAGES = ("exact_dedup", "minhash_dedup")  # the stages that set CLUSTER_SIZE
SCORE_STAGE = "quality"  # the stage that sets the classifier score


def _labels(table: Sequence[tuple[float, int]], name: str) -> list[tuple[float, str, int]]:
    """(lower bound, label, copies) of each bucket: "cluster_5-99", "cluster_1000+", "score_0.5-0.8"."""
    bounds = [bound for bound, _ in table]
    if name == "cluster":  # whole sizes: a bucket ends one below the next bound
        ends = [f"-{end - 1}" if end - 1 > start else "" for start, end in zip(bounds, bounds[1:])]
    else:
        ends = [f"-{end}" for end in bounds[1:]]
    return [(start, f"{name}_{start}{end}", copies) for start, end, (_, copies) in zip(bounds, [*ends, "+"], table)]


def _checked(table: Any, key: str, first: float, whole: bool) -> tuple[tuple[float, int], ...]:
    """`table` as ((bound, copies), ...): bounds ascending from `first`, copies whole and >= 0."""
    fix = (f"give ((lower bound, copies), ...) with bounds ascending from {first}"
           f"{', whole numbers' if whole else ''} and copies >= 0, or () for none")
    try:
        pairs = tuple((bound, copies) for bound, copies in table)
    except (TypeError, ValueError):
        raise ConfigError(f"config.upsample.{key}={table!r}: {fix}") from None
    bounds = [bound for bound, _ in pairs]
    if pairs and (bounds[0] != first or any(b >= a for a, b in zip(bounds[1:], bounds))
                  or any(not isinstance(b, int if whole else (int, float)) or isinstance(b, bool) for b in bounds)
                  or any(not isinstance(c, int) or isinstance(c, bool) or c < 0 for _, c in pairs)):
        raise ConfigError(f"config.upsample.{key}={table!r}: {fix}")
    return pairs


@register
@dataclasses.dataclass(frozen=True)
class Upsample(DocumentStage):
    name = "upsample"
    group = "upsample"
    clusters: tuple[tuple[float, str, int], ...]  # (smallest size, label, copies), ascending
    scores: tuple[tuple[float, str, int], ...]  # (lowest score, label, copies), ascending

    @classmethod
    def from_config(cls, config: ml_collections.ConfigDict) -> Upsample:
        c = config.upsample
        clusters = _checked(c.cluster_copies, "cluster_copies", 1, whole=True)
        scores = _checked(c.score_copies, "score_copies", 0.0, whole=False)
        if not clusters and not scores:
            raise ConfigError("the upsample stage needs config.upsample.cluster_copies or score_copies")
        return cls(tuple(_labels(clusters, "cluster")), tuple(_labels(scores, "score")))

    @classmethod
    def check(cls, config: ml_collections.ConfigDict, earlier: Sequence[str]) -> None:
        """Its tables well formed, and the stages that set what they read before it."""
        stage = cls.from_config(config)
        if stage.clusters and not set(DEDUP_STAGES) & set(earlier):
            raise ConfigError(f"config.upsample.cluster_copies needs {' or '.join(DEDUP_STAGES)} before upsample "
                              "in config.stages (they give cluster sizes), or set it to ()")
        if stage.scores and SCORE_STAGE not in earlier:
            raise ConfigError(f"config.upsample.score_copies needs the {SCORE_STAGE} stage before upsample in "
                              "config.stages (it gives the scores), or set it to ()")

    def decide(self, doc: Document) -> Result:
        found = []
        if self.clusters:
            found.append(_bucket(self.clusters, doc.metadata.get(CLUSTER_SIZE, 1)))
        if self.scores:
            from data_prep.classifier import SCORE_KEY  # scikit-learn: imported where the quality stage runs

            found.append(_bucket(self.scores, doc.metadata[SCORE_KEY]))
        label = ".".join(label for label, _ in found)
        if math.prod(copies for _, copies in found) == 0:
            return self.drop(doc, f"zero_copies_{label}", **{BUCKET_KEY: label})
        return dataclasses.replace(doc, metadata={**doc.metadata, BUCKET_KEY: label})

    def tally(self, result: Result) -> Tallies:
        """Documents per bucket, kept or removed."""
        return {"bucket_documents": {result.metadata[BUCKET_KEY]: 1}}

    def summary(self) -> dict[str, Any]:
        return {"copies": self.copies(kept_only=False)}

    def copies(self, kept_only: bool = True) -> dict[str, int]:
        """Copies per bucket label (with both tables, per pair), those above 0 unless `kept_only` is False."""
        clusters, scores = self.clusters or ((0, "", 1),), self.scores or ((0, "", 1),)
        table = {".".join(filter(None, (c, s))): n * m for _, c, n in clusters for _, s, m in scores}
        return {label: n for label, n in table.items() if n or not kept_only}


def _bucket(buckets: Sequence[tuple[float, str, int]], value: float) -> tuple[str, int]:
    """The (label, copies) of the last bucket whose lower bound is at most `value`."""
    return next((label, copies) for bound, label, copies in reversed(buckets) if bound <= value)


def bucket_copies(config: ml_collections.ConfigDict) -> dict[str, int]:
    """Copies per bucket that keeps documents, when config.stages runs upsample; else empty (no buckets)."""
    return Upsample.from_config(config).copies() if Upsample.name in config.stages else {}
