"""The quality stage: a classifier's score (data_prep/classifier.py) kept at or above a threshold.

The threshold is config.classifier.threshold, or, with top_fraction (DCLM: 0.1), the
score that keeps that fraction of a hash sample of the documents reaching the stage:
which is why it is a corpus stage. scikit-learn takes about 1 s to import, paid only
where this stage runs: data_prep.classifier is imported inside the methods.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Iterable, Sequence
from typing import Any

import ml_collections

from data_prep.document import Document, Dropped, Result
from data_prep.sampling import HashSample
from data_prep.stage import CorpusStage, CorpusVerdict, Decide, Tallies, loaded, register
from pretrain_common.errors import ConfigError


@register
@dataclasses.dataclass(frozen=True)
class Quality(CorpusStage):
    name = "quality"
    group = "classifier"
    model: str  # the .npz model file
    threshold: float
    top_fraction: float | None
    sample_bytes: int
    seed: int

    @classmethod
    def from_config(cls, config: ml_collections.ConfigDict) -> Quality:
        c = config.classifier
        return cls(c.model, c.threshold, c.top_fraction, c.sample_bytes, config.seed)

    @classmethod
    def check(cls, config: ml_collections.ConfigDict, earlier: Sequence[str]) -> None:
        """A model that loads, and a top_fraction it can keep."""
        from data_prep import classifier

        c = config.classifier
        if not c.model:
            raise ConfigError("the quality stage needs config.classifier.model (train one with train-classifier)")
        try:
            loaded(classifier.QualityModel.load, c.model)
        except (OSError, ValueError, KeyError) as error:
            raise ConfigError(f"config.classifier.model={c.model!r} is not a quality model: {error}") from error
        if c.top_fraction is not None and not (isinstance(c.top_fraction, (int, float)) and 0 < c.top_fraction <= 1):
            raise ConfigError(f"config.classifier.top_fraction must be None or in (0, 1], got {c.top_fraction!r}")

    @classmethod
    def files(cls, config: ml_collections.ConfigDict) -> list[str]:
        return [config.classifier.model] if config.classifier.model else []

    def tally(self, result: Result) -> Tallies:
        """Kept documents by score, in tenths: "0.7" counts scores in [0.7, 0.8)."""
        from data_prep import classifier

        if isinstance(result, Dropped):
            return {}
        return {"quality_scores_kept": {f"{min(int(result.metadata[classifier.SCORE_KEY] * 10), 9) / 10:.1f}": 1}}

    def local(self, docs: Iterable[Document], workdir: str, num_workers: int) -> CorpusVerdict:
        report = {"threshold": self.threshold, "sampled": 0}
        if self.top_fraction is not None:
            sample = HashSample(self.sample_bytes, self.seed)
            for doc in docs:
                sample.add(doc.id, doc.text)
            report = self.cut(sample.texts())
        return CorpusVerdict(functools.partial(self.judge, report["threshold"]), report)

    def beam(self, docs: Any) -> tuple[Any, Any]:
        """The threshold (a sample combined over workers, then cut) as a side input to scoring each document."""
        import apache_beam as beam  # only where Beam runs

        from data_prep.beam_combine import sample_texts

        if self.top_fraction is None:
            threshold = docs.pipeline | "quality Threshold" >> beam.Create(
                [{"threshold": self.threshold, "sampled": 0}])
        else:
            threshold = (docs | "quality Texts" >> beam.Map(lambda od: (od[1].id, od[1].text))
                         | "quality Sample" >> sample_texts(self.sample_bytes, self.seed)
                         | "quality Cut" >> beam.Map(self.cut))
        verdicts = docs | "quality Score" >> beam.Map(self._scored, beam.pvalue.AsSingleton(threshold))
        return verdicts, threshold | "quality Report" >> beam.Map(lambda cut: (self.name, cut))

    def cut(self, texts: list[str]) -> dict[str, Any]:
        """The threshold keeping top_fraction of `texts` (None for no texts), and how many were sampled."""
        from data_prep import classifier

        return classifier.top_fraction_cut(loaded(classifier.QualityModel.load, self.model), texts, self.top_fraction)

    def judge(self, threshold: float | None, doc: Document) -> Result:
        """Scored, and kept at or above `threshold`; with None (nothing reached the stage to sample), kept."""
        return doc if threshold is None else loaded(_scorer, self.model, threshold)(doc)

    def _scored(self, element: tuple[Any, Document], cut: dict[str, Any]) -> tuple[Any, Document, Result]:
        order, doc = element
        return order, doc, self.judge(cut["threshold"], doc)


def _scorer(model_path: str, threshold: float) -> Decide:
    from data_prep import classifier

    return classifier.quality_filter(loaded(classifier.QualityModel.load, model_path), threshold=threshold)
