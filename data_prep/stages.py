"""Stage names to stages: the one table that turns `config.stages` into functions.

A per-document stage maps a Document to a Document or a Dropped and runs in worker
processes. A corpus stage (dedup, the quality classifier) must see every document
that reaches it before it can judge one: it reads them all, then returns the
per-document verdict that the next pass applies at its place in the order.
Each stage reads its settings from the config group of its name (data_prep/schema.py).

`check` builds every stage once before any document is read, so a bad setting is a
ConfigError up front. Built stages are pickled to worker processes (forked from
curate.py's forkserver, or Beam's), so they are module-level functions,
functools.partial objects or small classes holding settings and paths; models and
word lists are loaded on first use in each process (`_loaded`), never pickled.
"""

from __future__ import annotations

import collections
import dataclasses
import functools
import types
import typing
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, NamedTuple

import ml_collections

from data_prep import extract, langid, pii
from data_prep.dedup import DedupConfig, Duplicate, deduplicate
from data_prep.document import Document, Removed
from data_prep.filters import Cleaned, UrlBlocklist, c4_quality, fineweb_quality, gopher_quality, gopher_repetition
from data_prep.readers import Dropped, Result
from data_prep.sampling import HashSample
from pretrain_common.errors import ConfigError

Stage = Callable[[Document], Result]
PII_KEY = "pii"  # metadata: replacements by kind, only the kinds found


def _verdict(doc: Document, reason: str | None) -> Result:
    """A filter's answer (None or "filter:rule") as the pipeline's result."""
    return doc if reason is None else Dropped(doc.id, Removed(*reason.split(":", 1)))


def _check_text(check: Callable[..., str | None], thresholds: dict[str, Any], doc: Document) -> Result:
    return _verdict(doc, check(doc.text, **thresholds))


def _clean_c4(check: Callable[..., Cleaned], thresholds: dict[str, Any], doc: Document) -> Result:
    """C4 rewrites the text it keeps (only its clean lines); a document with no line left is removed."""
    cleaned = check(doc.text, **thresholds)
    return _verdict(doc, cleaned.reason) if cleaned.reason else dataclasses.replace(doc, text=cleaned.text)


def _text_filter(check: Callable[..., Any], group: str,
                 apply: Callable[..., Result] = _check_text) -> Callable[[ml_collections.ConfigDict], Stage]:
    """A builder for a filter of the text whose keyword thresholds are `config.<group>`."""
    def build(config: ml_collections.ConfigDict) -> Stage:
        thresholds = _settings(check, group, config)
        try:
            check("", **thresholds)  # a bad value or word list fails here, not in a worker on every document
        except (ValueError, OSError) as error:
            raise ConfigError(f"config.{group}: {error}") from error
        return functools.partial(apply, check, thresholds)
    return build


def _settings(function: Callable[..., Any], group: str, config: ml_collections.ConfigDict) -> dict[str, Any]:
    """`config.<group>` as keyword arguments of `function`, each checked against its type annotation.

    Keys that may be None are typed `object` in the config, so that the command line
    can give None (data_prep/schema.py); this is the type check they lack there.
    """
    values = config[group].to_dict()
    hints = typing.get_type_hints(function)
    for name, value in values.items():
        if not _is_a(value, hints[name]):
            raise ConfigError(f"config.{group}.{name} must be {hints[name]}, got {value!r}")
    return values


def _is_a(value: Any, hint: Any) -> bool:
    """isinstance for an annotation: any member of a union, generics by their outer type; an int is a float."""
    members = typing.get_args(hint) if typing.get_origin(hint) in (typing.Union, types.UnionType) else (hint,)
    return any(isinstance(value, typing.get_origin(member) or member) or (member is float and isinstance(value, int))
               for member in members)


@functools.cache
def _loaded(load: Callable[..., Any], *args: Any) -> Any:
    """`load(*args)` once per process: a stage pickles the arguments (paths), not what they load.

    A file rewritten under the same path while the process lives is not read again.
    """
    return load(*args)


def _check_url(domains_path: str | None, substrings_path: str | None, doc: Document) -> Result:
    return _verdict(doc, _loaded(UrlBlocklist.from_files, domains_path, substrings_path)(doc.url))


def _url_filter(config: ml_collections.ConfigDict) -> Stage:
    paths = (config.url.domains_path, config.url.substrings_path)
    try:
        _loaded(UrlBlocklist.from_files, *paths)  # a missing file fails here, not in a worker
    except OSError as error:
        raise ConfigError(f"config.url: {error}") from error
    return functools.partial(_check_url, *paths)


def _scrub(doc: Document) -> Document:
    scrubbed = pii.scrub_pii(doc.text)
    found = {kind: n for kind, n in scrubbed.counts.items() if n}
    return dataclasses.replace(doc, text=scrubbed.text, metadata={**doc.metadata, PII_KEY: found})


DOCUMENT_STAGES: dict[str, Callable[[ml_collections.ConfigDict], Stage]] = {
    "extract": lambda config: extract.extract_stage(config.extract.engine),
    "url": _url_filter,
    "langid": lambda config: langid.language_filter(set(config.langid.languages) or None, config.langid.min_score),
    "gopher_repetition": _text_filter(gopher_repetition, "gopher_repetition"),
    "gopher_quality": _text_filter(gopher_quality, "gopher_quality"),
    "c4": _text_filter(c4_quality, "c4", _clean_c4),
    "fineweb_quality": _text_filter(fineweb_quality, "fineweb_quality"),
    "pii": lambda config: _scrub,
}


def _languages(result: Result) -> dict[str, dict[str, int]]:
    """Every document langid identified, kept or removed, by language; and the kept ones."""
    if isinstance(result, Dropped):
        return {"languages_identified": {result.removed.language: 1}}
    language = result.metadata["language"]
    return {"languages_identified": {language: 1}, "languages_kept": {language: 1}}


def _pii_replaced(result: Result) -> dict[str, Mapping[str, int]]:
    return {"pii_replaced": result.metadata[PII_KEY]}  # pii never removes a document


def _quality_scores(result: Result) -> dict[str, dict[str, int]]:
    """Kept documents by classifier score, in tenths: "0.7" counts scores in [0.7, 0.8)."""
    from data_prep import classifier  # imported already where the quality stage ran

    if isinstance(result, Dropped):
        return {}
    return {"quality_scores_kept": {f"{min(int(result.metadata[classifier.SCORE_KEY] * 10), 9) / 10:.1f}": 1}}


# What a stage's report counts from each of its results, kept or removed: tally name -> counts.
TALLIES: dict[str, Callable[[Result], Mapping[str, Mapping[str, int]]]] = {
    "langid": _languages,
    "pii": _pii_replaced,
    "quality": _quality_scores,
}


class CorpusVerdict(NamedTuple):
    """What a corpus stage decided: the stage that applies it per document, and its report."""

    stage: Stage
    report: dict[str, Any]
    # Apply the verdict in the main process: a lookup costs less than sending a document to a worker.
    in_process: bool = False


def _drop_listed(removed: Mapping[str, Duplicate], doc: Document) -> Result:
    return dedup_verdict(doc, removed.get(doc.id))


def dedup_verdict(doc: Document, duplicate: Duplicate | None) -> Result:
    """A dedup stage's result for `doc` (shared with Beam): kept, or dropped naming the document kept instead."""
    return doc if duplicate is None else Dropped(doc.id, duplicate.removed, duplicate.kept_id)


# Metadata keys that dedup.scope may name, beside None and "source": each is set on
# every document by the stage named, which must come before the dedup stage.
SCOPE_KEYS = {"language": "langid"}


def dedup_settings(config: ml_collections.ConfigDict, exact: bool, num_workers: int) -> DedupConfig:
    """config.dedup, and which dedup pass runs on how many cores (shared with Beam)."""
    return DedupConfig(exact=exact, near=not exact, num_workers=num_workers, **_settings(DedupConfig, "dedup", config))


def _check_dedup(config: ml_collections.ConfigDict, earlier: Sequence[str]) -> None:
    """dedup.scope names what every document reaching the stage has: else the pass would fail at its end."""
    scope = dedup_settings(config, exact=True, num_workers=1).scope
    if scope in (None, "source") or SCOPE_KEYS.get(scope) in earlier:
        return
    keys = ", ".join(f"{key!r} after {stage}" for key, stage in SCOPE_KEYS.items())
    raise ConfigError(f"config.dedup.scope is {scope!r}; use None (the whole corpus), 'source' (each input), "
                      f"or a metadata key set by an earlier stage: {keys}")


def _dedup(exact: bool) -> Callable[[ml_collections.ConfigDict, Iterable[Document], str, int], CorpusVerdict]:
    """A corpus stage removing exact (else MinHash near) duplicates, settings from `config.dedup`."""

    def run(config: ml_collections.ConfigDict, docs: Iterable[Document], workdir: str,
            num_workers: int) -> CorpusVerdict:
        result = deduplicate(docs, workdir, dedup_settings(config, exact, num_workers))
        members = collections.Counter(d.kept_id for d in result.removed.values())
        sizes = collections.Counter(n + 1 for n in members.values())
        report = {"clusters": len(members), "cluster_sizes": {str(k): v for k, v in sorted(sizes.items())},
                  "largest_clusters": [[kept, n + 1] for kept, n in members.most_common(5)]}
        return CorpusVerdict(functools.partial(_drop_listed, result.removed), report, in_process=True)

    return run


def _quality_filter(model_path: str, threshold: float) -> Stage:
    from data_prep import classifier  # scikit-learn: about 1 s to import, paid only where this stage runs

    return classifier.quality_filter(_loaded(classifier.QualityModel.load, model_path), threshold=threshold)


def _check_quality(model_path: str, threshold: float, doc: Document) -> Result:
    return _loaded(_quality_filter, model_path, threshold)(doc)


def _quality(config: ml_collections.ConfigDict, docs: Iterable[Document], workdir: str,
             num_workers: int) -> CorpusVerdict:
    """The classifier stage; with `top_fraction`, its threshold comes from a hash sample of `docs`."""
    from data_prep import classifier  # see _quality_filter

    c = config.classifier
    report = {"threshold": c.threshold, "sampled": 0}
    if c.top_fraction is not None:
        sample = HashSample(c.sample_bytes, config.seed)
        for doc in docs:
            sample.add(doc.id, doc.text)
        report = classifier.top_fraction_cut(_loaded(classifier.QualityModel.load, c.model), sample.texts(),
                                             c.top_fraction)
    if report["threshold"] is None:
        return CorpusVerdict(functools.partial(_drop_listed, {}), report)
    return CorpusVerdict(functools.partial(_check_quality, c.model, report["threshold"]), report)


def _check_classifier(config: ml_collections.ConfigDict, earlier: Sequence[str]) -> None:
    """The quality stage has a model that loads, and a top_fraction it can keep."""
    from data_prep import classifier  # see _quality_filter

    c = config.classifier
    if not c.model:
        raise ConfigError("the quality stage needs config.classifier.model (train one with train-classifier)")
    try:
        _loaded(classifier.QualityModel.load, c.model)
    except (OSError, ValueError, KeyError) as error:
        raise ConfigError(f"config.classifier.model={c.model!r} is not a quality model: {error}") from error
    if c.top_fraction is not None and not (isinstance(c.top_fraction, (int, float)) and 0 < c.top_fraction <= 1):
        raise ConfigError(f"config.classifier.top_fraction must be None or in (0, 1], got {c.top_fraction!r}")


CORPUS_STAGES: dict[str, Callable[[ml_collections.ConfigDict, Iterable[Document], str, int], CorpusVerdict]] = {
    "exact_dedup": _dedup(exact=True),
    "minhash_dedup": _dedup(exact=False),
    "quality": _quality,
}


# What each corpus stage checks of its settings, given the stages before it, before any document is read.
CORPUS_CHECKS: dict[str, Callable[[ml_collections.ConfigDict, Sequence[str]], None]] = {
    "exact_dedup": _check_dedup,
    "minhash_dedup": _check_dedup,
    "quality": _check_classifier,
}


def check(config: ml_collections.ConfigDict) -> None:
    """Every stage of `config.stages` known, listed once and built once (corpus stages checked), so a
    bad name or setting fails before any document is read, not after a pass over the corpus."""
    names = list(config.stages)
    known = [*DOCUMENT_STAGES, *CORPUS_STAGES]
    unknown = [name for name in names if name not in known]
    if unknown:
        raise ConfigError(f"config.stages has unknown stages {unknown}; known: {known}")
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise ConfigError(f"config.stages lists {repeated} more than once")
    for index, name in enumerate(names):
        if name in DOCUMENT_STAGES:
            DOCUMENT_STAGES[name](config)
        else:
            CORPUS_CHECKS[name](config, names[:index])
