"""A curation stage: everything a runner needs to know of it, declared in one class, and the registry.

As in datatrove's BaseFilter, a stage writes only its decision (`decide`: the document,
maybe rewritten, or a `Dropped`); the base counts documents and characters in and out,
times the decision, tallies it and counts the drop by its reason (`apply`), the same
way in both runners. A stage declares:

    name        its name in config.stages, the report and removal reasons
    group       the config group it reads (data_prep/schema.py); None: no settings
    from_config how it is built from the config: a bad setting is a ConfigError
    check       what it checks before any document is read (default: that it builds)
    files       the files its result depends on, beside the config: the resume hash
                and the provenance record hash them (data_prep/provenance.py)
    tally       what the report counts of each of its results, kept or removed
    summary     what the report says of it as built, before any document (decontaminate: its n-gram set)
    scope_keys  metadata keys it sets on every document it keeps, which dedup.scope may name

A `DocumentStage` decides one document at a time, in worker processes. A
`CorpusStage` (dedup, the classifier with a top fraction) must see every document
that reaches it first: its `local` form reads them all and returns the per-document
decision applied at its place in the order; its `beam` form computes that decision
per document in a Beam pipeline. Both forms decide alike, so both runners write the
same bytes.

`register` adds a stage class to REGISTRY; data_prep/stages/ holds one module per stage
and registers them all. Built stages are pickled to worker processes, so they hold
settings and paths; models and word lists are loaded on first use in each process
(`loaded`), never pickled.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import time
import types
import typing
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, ClassVar, NamedTuple

import ml_collections

from data_prep.document import Document, Dropped, Removed, Result
from data_prep.stats import SAMPLE_CHARS, Removal, StageStats
from pretrain_common.errors import ConfigError

Tallies = Mapping[str, Mapping[str, int]]  # tally name -> key -> count
Decide = Callable[[Document], Result]


class Stage:
    """What every stage declares (see the module docstring); subclasses are DocumentStage and CorpusStage."""

    name: ClassVar[str]
    group: ClassVar[str | None] = None
    scope_keys: ClassVar[tuple[str, ...]] = ()

    @classmethod
    def from_config(cls, config: ml_collections.ConfigDict) -> Stage:
        return cls()

    @classmethod
    def check(cls, config: ml_collections.ConfigDict, earlier: Sequence[str]) -> None:
        """Raises ConfigError for a setting that would fail later; `earlier` names the stages before it."""
        cls.from_config(config)

    @classmethod
    def files(cls, config: ml_collections.ConfigDict) -> list[str]:
        return []

    def tally(self, result: Result) -> Tallies:
        return {}

    def summary(self) -> dict[str, Any]:
        return {}

    def drop(self, doc: Document, rule: str, **metadata: Any) -> Dropped:
        """`doc` removed by this stage's `rule`; `metadata`: what the stage found, for its tallies."""
        return Dropped(doc.id, Removed(self.name, rule), metadata=metadata)

    def apply(self, decide: Decide, doc: Document, stats: StageStats) -> Result:
        """`decide(doc)`, counted into `stats`: documents and characters in and out, seconds, tallies, reason."""
        stats.docs_in += 1
        stats.chars_in += len(doc.text)
        start = time.perf_counter()
        result = decide(doc)
        stats.seconds += time.perf_counter() - start
        stats.count(self.tally(result))
        if isinstance(result, Dropped):
            stats.removed[str(result.removed)] += 1
        else:
            stats.docs_out += 1
            stats.chars_out += len(result.text)
        return result


class DocumentStage(Stage):
    """A stage that decides each document on its own."""

    def decide(self, doc: Document) -> Result:
        raise NotImplementedError

    def __call__(self, doc: Document, stats: StageStats) -> Result:
        return self.apply(self.decide, doc, stats)


class CorpusVerdict(NamedTuple):
    """What a corpus stage's local form decided: the per-document decision, and its report."""

    decide: Decide
    report: dict[str, Any]
    # Apply the decision in the main process: a lookup costs less than sending a document to a worker.
    in_process: bool = False


class CorpusStage(Stage):
    """A stage that decides only after it has seen every document reaching it."""

    def local(self, docs: Iterable[Document], workdir: str, num_workers: int) -> CorpusVerdict:
        """Reads `docs` (any number of times) with up to `num_workers` processes and scratch space in `workdir`."""
        raise NotImplementedError

    def beam(self, docs: Any) -> tuple[Any, Any]:
        """Beam: a PCollection of (order, doc) -> ((order, doc, its Result), one (name, report))."""
        raise NotImplementedError


REGISTRY: dict[str, type[Stage]] = {}
StageClass = typing.TypeVar("StageClass", bound=type[Stage])


def register(cls: StageClass) -> StageClass:
    """A class decorator: the stage becomes known by its name to config.stages and both runners."""
    if cls.name in REGISTRY and REGISTRY[cls.name] is not cls:
        raise ValueError(f"two stages are named {cls.name!r}: {REGISTRY[cls.name]} and {cls}")
    REGISTRY[cls.name] = cls
    return cls


Step = tuple[str, Callable[[Document, StageStats], Result]]  # a stage's name, and its counted decision


def run_document(doc: Document, steps: Sequence[Step], counts: dict[str, StageStats]) -> Document | Removal:
    """`doc` through `steps` in order, counted into `counts` by stage name (both runners)."""
    for name, step in steps:
        result = step(doc, counts[name])
        if isinstance(result, Dropped):
            return Removal(doc.id, doc.source, doc.url, str(result.removed), doc.text[:SAMPLE_CHARS], result.kept_id)
        doc = result
    return doc


def filter_verdict(doc: Document, reason: str | None) -> Result:
    """A filter's answer (data_prep/filters: None, or "filter:rule") as a stage's result."""
    return doc if reason is None else Dropped(doc.id, Removed(*reason.split(":", 1)))


def settings(function: Callable[..., Any], group: str, config: ml_collections.ConfigDict) -> dict[str, Any]:
    """`config.<group>` as keyword arguments of `function`, each checked against its type annotation.

    Keys that may be None are typed `object` in the config, so that the command line
    can give None (data_prep/schema.py); this is the type check they lack there.
    """
    return checked_keywords(function, config[group].to_dict(), f"config.{group}")


def checked_keywords(function: Callable[..., Any], values: Mapping[str, Any], where: str) -> dict[str, Any]:
    """`values`, each a keyword argument of `function` of its annotated type; else a ConfigError naming `where`."""
    hints = typing.get_type_hints(function)
    known = [name for name, parameter in inspect.signature(function).parameters.items()
             if parameter.default is not parameter.empty]
    for name, value in values.items():
        if name not in known:
            raise ConfigError(f"{where} has no key {name!r}; known: {known}")
        if not _is_a(value, hints[name]):
            raise ConfigError(f"{where}.{name} must be {hints[name]}, got {value!r}")
    return dict(values)


def _is_a(value: Any, hint: Any) -> bool:
    """isinstance for an annotation: any member of a union, generics by their outer type; an int is a float."""
    members = typing.get_args(hint) if typing.get_origin(hint) in (typing.Union, types.UnionType) else (hint,)
    return any(isinstance(value, typing.get_origin(member) or member) or (member is float and isinstance(value, int))
               for member in members)


@functools.cache
def loaded(load: Callable[..., Any], *args: Any) -> Any:
    """`load(*args)` once per process: a stage pickles the arguments (paths), not what they load.

    A file rewritten under the same path while the process lives is not read again.
    """
    return load(*args)
