"""Beam combines built from a mutable accumulator, and the one both runners sample texts with.

Beam builds partial accumulators per bundle on the workers and merges them, so only
the merged one, not the inputs, ever meets on a single worker.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable
from typing import Any

import apache_beam as beam

from data_prep.sampling import HashSample


class Accumulate(beam.CombineFn):
    """A combine from a mutable accumulator: `make()` starts one, `add(acc, x)` and `merge(acc, other)` update it."""

    def __init__(self, make: Callable[[], Any], add: Callable[[Any, Any], Any], merge: Callable[[Any, Any], Any]):
        self.make, self.add, self.merge = make, add, merge

    def create_accumulator(self) -> Any:
        return self.make()

    def add_input(self, accumulator: Any, element: Any) -> Any:
        self.add(accumulator, element)
        return accumulator

    def merge_accumulators(self, accumulators: Iterable[Any]) -> Any:
        accumulators = iter(accumulators)
        merged = next(accumulators)
        for accumulator in accumulators:
            self.merge(merged, accumulator)
        return merged

    def extract_output(self, accumulator: Any) -> Any:
        return accumulator


def sample_texts(max_bytes: int, seed: int) -> beam.PTransform:
    """(id, text) pairs -> the texts of their HashSample, the sample the local runner takes of them."""
    combine = Accumulate(functools.partial(HashSample, max_bytes, seed), _add_to_sample, HashSample.merge)
    return beam.CombineGlobally(combine) | beam.Map(HashSample.texts)


def _add_to_sample(sample: HashSample, element: tuple[str, str]) -> None:
    sample.add(*element)
