"""Source mixtures, as in the Llama data table: each source's sampling weight, from weights or target epochs.

`config.mixture.weights` gives the share of training rows drawn from each source
(Llama 1: CommonCrawl 0.67, C4 0.15, GitHub 0.045, ...). `config.mixture.epochs`
gives instead how often each source should be seen relative to the others, and
the weights follow from the sources' sizes: weight_s = epochs_s * tokens_s / sum.
Rows are full sequences, so a share of rows is also a share of training tokens.
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


@dataclasses.dataclass(frozen=True)
class Mixture:
    values: dict[str, float]  # the configured weights or epochs, normalized to sum 1
    by_epochs: bool

    def weights(self, tokens: Mapping[str, int]) -> dict[str, float]:
        """Each source's sampling weight (summing to 1), given the train tokens it packed to."""
        if not self.by_epochs:
            return self.values
        total = sum(self.values[name] * tokens[name] for name in self.values)
        return {name: self.values[name] * tokens[name] / total for name in self.values}


def from_config(config: ml_collections.ConfigDict, names: Iterable[str]) -> Mixture | None:
    """The mixture `config` (the `mixture` group) sets over the input sources `names`; None: no mixture."""
    if config.weights and config.epochs:
        raise ConfigError("set config.mixture.weights or config.mixture.epochs, not both")
    key = "epochs" if config.epochs else "weights"
    if not config[key]:
        return None
    try:
        values = records.normalized_weights(config[key], names, f"config.mixture.{key}")
    except ValueError as e:
        raise ConfigError(str(e)) from None
    return Mixture(values, by_epochs=key == "epochs")


def report(sources: Mapping[str, records.SourceInfo]) -> dict[str, dict[str, Any]]:
    """Per source: tokens, their share of the split, the sampling weight, and the epochs it implies."""
    total = sum(info.tokens for info in sources.values())
    return {name: {"tokens": info.tokens, "share_of_tokens": info.tokens / total, "weight": info.weight,
                   "epochs_per_1b_training_tokens": info.weight * REPORT_TRAINING_TOKENS / info.tokens}
            for name, info in sources.items()}
