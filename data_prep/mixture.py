"""Source mixtures, as in the Llama data table: each source's sampling weight, from weights or target epochs.

`config.mixture.weights` gives the share of training rows drawn from each source
(Llama 1: CommonCrawl 0.67, C4 0.15, GitHub 0.045, ...). `config.mixture.epochs`
gives instead how often each source should be seen relative to the others, and
the weights follow from the sources' sizes: weight_s = epochs_s * tokens_s / sum.
Rows are full sequences, so a share of rows is also a share of training tokens.

With the upsample stage (data_prep/stages/upsample.py) each source's train split is
packed per bucket, a component "source@bucket" of its own, and a bucket of c copies
counts as c times its tokens: its weight is the source's weight times c x tokens over
the source's sum of copies x tokens (with epochs, epochs x c x tokens over the sum of
all). So each bucket is drawn c times as often per token as a bucket of 1 copy, as if
its documents were repeated c times, without writing them c times; the report gives
each bucket's tokens, weight and epochs. A mixture of buckets needs no source mixture:
with none, every source counts 1 epoch.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from typing import Any

import ml_collections

from pretrain_common import records
from pretrain_common.errors import ConfigError

# The report's implied epochs are per this many training tokens (1B): scale to a run's length.
REPORT_TRAINING_TOKENS = 1_000_000_000
BUCKET_KEY = "bucket"  # metadata key of a document's upsampling bucket, set by the upsample stage


@dataclasses.dataclass(frozen=True)
class Mixture:
    values: dict[str, float]  # per source: the configured weights or epochs, normalized to sum 1
    by_epochs: bool
    copies: dict[str, int] = dataclasses.field(default_factory=dict)  # per upsampling bucket; empty: none

    def components(self, source: str) -> list[str]:
        """The names `source`'s train split is packed and sampled under: itself, or one per bucket."""
        return [self.component(source, bucket) for bucket in self.copies] if self.copies else [source]

    def component(self, source: str, bucket: str | None) -> str:
        return f"{source}@{bucket}" if self.copies else source

    def weights(self, tokens: Mapping[str, int]) -> dict[str, float]:
        """Each component's sampling weight (summing to 1), given the train tokens of those packed (see above)."""
        if not self.by_epochs and not self.copies:
            return self.values
        mass = {(source, name): copies * tokens[name] for source in self.values
                for name, copies in zip(self.components(source), self.copies.values() or [1]) if name in tokens}
        if self.by_epochs:
            total = sum(self.values[source] * m for (source, _), m in mass.items())
            return {name: self.values[source] * m / total for (source, name), m in mass.items()}
        per_source = {source: sum(m for (s, _), m in mass.items() if s == source) for source in self.values}
        return {name: self.values[source] * (m / per_source[source]) for (source, name), m in mass.items()}


def from_config(config: ml_collections.ConfigDict, names: Iterable[str],
                copies: Mapping[str, int] | None = None) -> Mixture | None:
    """The mixture `config` (the `mixture` group) sets over the input sources `names`, with the upsample
    stage's `copies` per bucket; None: no mixture."""
    if config.weights and config.epochs:
        raise ConfigError("set config.mixture.weights or config.mixture.epochs, not both")
    key = "epochs" if config.epochs else "weights"
    if not config[key]:
        names = list(names)
        return Mixture(dict.fromkeys(names, 1 / len(names)), True, dict(copies)) if copies else None
    try:
        values = records.normalized_weights(config[key], names, f"config.mixture.{key}")
    except ValueError as e:
        raise ConfigError(str(e)) from None
    return Mixture(values, by_epochs=key == "epochs", copies=dict(copies or {}))


def report(sources: Mapping[str, records.SourceInfo], mix: Mixture) -> dict[str, dict[str, Any]]:
    """Per component: tokens, their share of the split, the sampling weight, the epochs it implies,
    and a bucket's copies."""
    total = sum(info.tokens for info in sources.values())
    copies = {mix.component(source, bucket): {"copies": n} for source in mix.values for bucket, n in mix.copies.items()}
    return {name: {"tokens": info.tokens, "share_of_tokens": info.tokens / total, "weight": info.weight,
                   "epochs_per_1b_training_tokens": info.weight * REPORT_TRAINING_TOKENS / info.tokens,
                   **copies.get(name, {})}
            for name, info in sources.items()}
