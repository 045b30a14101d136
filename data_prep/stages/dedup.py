"""The dedup stages: exact_dedup and minhash_dedup (data_prep/dedup), both set by config.dedup.

Each keeper of a cluster gets the cluster's size in its metadata (dedup.CLUSTER_SIZE; a keeper
of an earlier dedup stage counts with its own), for the upsample stage's rehydration.
"""

from __future__ import annotations

import collections
import dataclasses
import functools
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, ClassVar

import ml_collections

from data_prep.dedup import CLUSTER_SIZE, DedupConfig, Duplicate, deduplicate
from data_prep.dedup.clusters import LARGEST_CLUSTERS
from data_prep.document import Document, Dropped, Result
from data_prep.stage import REGISTRY, CorpusStage, CorpusVerdict, register, settings
from pretrain_common.errors import ConfigError


@dataclasses.dataclass(frozen=True)
class Dedup(CorpusStage):
    """Removes exact (else MinHash near) duplicates, keeping the smallest id of each cluster."""

    group = "dedup"
    exact: ClassVar[bool]
    dedup_config: DedupConfig  # on one core: the local form sets its own

    @classmethod
    def from_config(cls, config: ml_collections.ConfigDict) -> Dedup:
        return cls(DedupConfig(exact=cls.exact, near=not cls.exact, num_workers=1,
                               **settings(DedupConfig, "dedup", config)))

    @classmethod
    def check(cls, config: ml_collections.ConfigDict, earlier: Sequence[str]) -> None:
        """dedup.scope names what every document reaching the stage has: else the pass would fail at its end."""
        scope = cls.from_config(config).dedup_config.scope
        if scope in (None, "source") or any(scope in REGISTRY[name].scope_keys for name in earlier):
            return
        keys = ", ".join(f"{key!r} after {name}" for name, stage in REGISTRY.items() for key in stage.scope_keys)
        raise ConfigError(f"config.dedup.scope is {scope!r}; use None (the whole corpus), 'source' (each input), "
                          f"or a metadata key set by an earlier stage: {keys}")

    def local(self, docs: Iterable[Document], workdir: str, num_workers: int) -> CorpusVerdict:
        result = deduplicate(docs, workdir, dataclasses.replace(self.dedup_config, num_workers=num_workers))
        members = collections.Counter(d.kept_id for d in result.removed.values())
        sizes = collections.Counter(n + 1 for n in members.values())
        report = {"clusters": len(members), "cluster_sizes": {str(k): v for k, v in sorted(sizes.items())},
                  "largest_clusters": [[kept, n + 1] for kept, n in members.most_common(LARGEST_CLUSTERS)]}
        return CorpusVerdict(functools.partial(_listed, result.removed, result.cluster_sizes), report, in_process=True)

    def beam(self, docs: Any) -> tuple[Any, Any]:
        """The same verdicts as shuffles (data_prep/dedup/beam.py), joined back to their documents by id."""
        import apache_beam as beam  # only where Beam runs

        from data_prep.dedup.beam import ExactDuplicates, NearDuplicates, cluster_report

        name = self.name
        find = ExactDuplicates if self.exact else NearDuplicates
        verdicts, clusters = docs | name >> find(self.dedup_config)
        sizes = clusters | f"{name} Sizes" >> beam.Map(lambda cluster: (cluster[0], cluster[3]))
        joined = ({"doc": docs | f"{name} ById" >> beam.Map(lambda od: (od[1].id, od)), "verdict": verdicts,
                   "size": sizes}
                  | f"{name} Join" >> beam.CoGroupByKey()
                  | f"{name} Verdict" >> beam.MapTuple(_joined))
        report = (clusters | f"{name} Clusters" >> beam.combiners.ToList()
                  | f"{name} Report" >> beam.Map(lambda c: (name, cluster_report(c))))
        return joined, report


def _listed(removed: Mapping[str, Duplicate], sizes: Mapping[str, int], doc: Document) -> Result:
    return _verdict(doc, removed.get(doc.id), sizes.get(doc.id))


def _joined(doc_id: str, joined: dict[str, list]) -> tuple[Any, Document, Result]:
    [(order, doc)], duplicate, size = joined["doc"], list(joined["verdict"]), list(joined["size"])
    return order, doc, _verdict(doc, duplicate[0] if duplicate else None, size[0] if size else None)


def _verdict(doc: Document, duplicate: Duplicate | None, size: int | None) -> Result:
    """Dropped naming the document kept instead; or kept, a cluster's keeper with the cluster's size."""
    if duplicate is not None:
        return Dropped(doc.id, duplicate.removed, duplicate.kept_id)
    return doc if size is None else dataclasses.replace(doc, metadata={**doc.metadata, CLUSTER_SIZE: size})


@register
class ExactDedup(Dedup):
    name = "exact_dedup"
    exact = True


@register
class MinhashDedup(Dedup):
    name = "minhash_dedup"
    exact = False
