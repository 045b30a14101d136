"""The decontaminate stage: removes documents, or only their paragraphs, that share n-grams with evaluation sets.

Settings from config.decontaminate. With remove="document" a document with any benchmark
n-gram is removed (decontaminate:ngram_overlap); with remove="paragraph" only the
paragraphs (blocks between blank lines) holding a word of a matched n-gram go, and a
document left with none is removed. The report counts, per benchmark, the documents and
n-grams matched, and gives the n-gram set's size under `built`.
"""

from __future__ import annotations

import dataclasses
import re
from typing import Any

import ml_collections
import numpy as np

from data_prep import eval_sets
from data_prep.contamination import MAX_BENCHMARKS, NgramIndex, build_index, normalized_words
from data_prep.document import Document, Result
from data_prep.stage import DocumentStage, Tallies, loaded, register
from pretrain_common.errors import ConfigError

FOUND_KEY = "contamination"  # metadata: matched n-grams per benchmark, on documents something was found in
REMOVE = ("document", "paragraph")
_PARAGRAPH_BREAK = re.compile(r"(\n[^\S\n]*\n\s*)")  # a blank line and the whitespace around it


def _index(specs: tuple[str, ...], n: int, max_ngrams: int) -> NgramIndex:
    """The n-gram index of the evaluation sets `specs`; a bad file or setting is a ConfigError."""
    key = "config.decontaminate.eval_sets"
    named = [eval_sets.parse_spec(spec) for spec in specs]
    if len(named) > MAX_BENCHMARKS:
        raise ConfigError(f"{key} names {len(named)} sets, over {MAX_BENCHMARKS}: merge some into one file")
    index = build_index(((name, eval_sets.read_texts(path, key)) for name, path in named), n)
    if len(index.hashes) > max_ngrams:
        raise ConfigError(f"{key} hold {len(index.hashes):,} distinct {n}-grams, over "
                          f"config.decontaminate.max_ngrams={max_ngrams:,} ({index.bytes:,} bytes): raise it")
    return index


@register
@dataclasses.dataclass(frozen=True)
class Decontaminate(DocumentStage):
    name = "decontaminate"
    group = "decontaminate"
    specs: tuple[str, ...]  # name=path of each evaluation set
    n: int
    remove: str
    max_ngrams: int

    @classmethod
    def from_config(cls, config: ml_collections.ConfigDict) -> Decontaminate:
        c = config.decontaminate
        if not c.eval_sets:
            raise ConfigError("the decontaminate stage needs config.decontaminate.eval_sets: name=path of each "
                              "evaluation set (task JSONL, lm-eval JSONL or Parquet, text)")
        if c.remove not in REMOVE:
            raise ConfigError(f"config.decontaminate.remove is {c.remove!r}; use one of {REMOVE}")
        if c.ngram < 1:
            raise ConfigError(f"config.decontaminate.ngram={c.ngram}: an n-gram has at least one word (GPT-3: 13)")
        stage = cls(tuple(c.eval_sets), c.ngram, c.remove, c.max_ngrams)
        stage.index()  # a bad file fails here, not in a worker
        return stage

    @classmethod
    def files(cls, config: ml_collections.ConfigDict) -> list[str]:
        return [eval_sets.parse_spec(spec)[1] for spec in config.decontaminate.eval_sets]

    def index(self) -> NgramIndex:
        return loaded(_index, self.specs, self.n, self.max_ngrams)

    def summary(self) -> dict[str, Any]:
        index = self.index()
        return {"ngram": self.n, "ngrams": len(index.hashes), "bytes": index.bytes, "benchmarks": index.counts}

    def decide(self, doc: Document) -> Result:
        pieces = _PARAGRAPH_BREAK.split(doc.text)  # paragraph, break, paragraph, ...
        words = [normalized_words(piece) if i % 2 == 0 else [] for i, piece in enumerate(pieces)]
        starts, masks = self.index().matches([w for piece in words for w in piece])
        if not len(starts):
            return doc
        found = self.index().benchmarks(masks)
        if self.remove == "document":
            return self.drop(doc, "ngram_overlap", **{FOUND_KEY: found})
        piece_of_word = np.repeat(np.arange(len(pieces)), [len(w) for w in words])
        covered = (starts[:, None] + np.arange(self.n)).ravel()  # every word of a matched n-gram
        hit = set(piece_of_word[covered].tolist())
        kept = [i for i in range(0, len(pieces), 2) if i not in hit]
        if not kept:
            return self.drop(doc, "ngram_overlap", **{FOUND_KEY: found})
        text = pieces[kept[0]] + "".join(pieces[i - 1] + pieces[i] for i in kept[1:])
        return dataclasses.replace(doc, text=text, metadata={**doc.metadata, FOUND_KEY: found,
                                                             "paragraphs_removed": len(hit)})

    def tally(self, result: Result) -> Tallies:
        """Per benchmark: documents with a matched n-gram (removed or cut), and the n-grams matched."""
        found = result.metadata.get(FOUND_KEY, {})
        tallies = {"contaminated_documents": dict.fromkeys(found, 1), "contaminated_ngrams": found}
        if "paragraphs_removed" in result.metadata:
            tallies["paragraphs_removed"] = {"total": result.metadata["paragraphs_removed"]}
        return tallies
