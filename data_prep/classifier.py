"""Model-based quality filtering, DCLM style: a linear classifier on hashed word n-grams.

DCLM (Li et al. 2024, section 4.4) trains fastText on word bigrams, positives from
curated text (OpenHermes-2.5, ELI5) against random web pages (RefinedWeb), and keeps
the top 10% of the pool by P(high quality). fastText cannot be trained here (only
`fasttext-predict` is packaged), so the same model, a logistic regression on hashed
word uni- and bigrams, is built from scikit-learn: its n-gram analyzer, FeatureHasher
(MurmurHash3, seed 0, stable across platforms and releases) and SGDClassifier. That
is maintained and CPU-fast, and adds about 60 MB (scikit-learn, joblib, threadpoolctl,
narwhals) beside the scipy that jax already requires: lighter than owning a
hand-written tokenizer, hasher and optimizer. Measured on one core, 2026-11-23:
about 3.5 MB of text per second, that is 5,000 paragraphs of 640 characters per
second in batches, 2,000 per second one at a time in the stage.

A model is saved as one `.npz` file: the weights, the bias and the feature settings
as JSON, read back with `allow_pickle=False`, so loading a model runs no code.
"""

from __future__ import annotations

import collections
import dataclasses
import functools
import itertools
import json
import math
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import NamedTuple

import numpy as np
import scipy.sparse
from scipy.special import expit
from sklearn.feature_extraction import FeatureHasher
from sklearn.feature_extraction.text import HashingVectorizer
from sklearn.linear_model import SGDClassifier
from sklearn.metrics import precision_recall_fscore_support, roc_auc_score

from data_prep import extract, readers
from data_prep.document import Document, Dropped, Removed, Result
from pretrain_common.errors import ConfigError

STAGE = "quality"
SCORE_KEY = "quality_score"  # metadata key of P(high quality), in [0, 1]
LABEL_FIELD = "label"  # in labeled JSONL: 1 = high quality, 0 = low


@dataclasses.dataclass(frozen=True)
class Features:
    """How text becomes a sparse vector; saved with the model so scoring matches training."""

    max_ngram: int = 2  # word n-grams from 1 to this (DCLM: fastText with wordNgrams=2)
    num_buckets: int = 2**20  # hash buckets; collisions are rare below a few million n-grams
    lowercase: bool = True

    @functools.cached_property
    def _analyzer(self) -> Callable[[str], list[str]]:
        # Whitespace tokens, as fastText splits, so punctuation and code symbols stay features.
        return HashingVectorizer(token_pattern=r"\S+", ngram_range=(1, self.max_ngram),
                                 lowercase=self.lowercase).build_analyzer()

    @functools.cached_property
    def _hasher(self) -> FeatureHasher:
        return FeatureHasher(self.num_buckets, input_type="string", alternate_sign=False, dtype=np.float32)

    def matrix(self, texts: Iterable[str]) -> scipy.sparse.csr_matrix:
        """(len(texts), num_buckets) n-gram counts, each row scaled to unit L2 norm.

        HashingVectorizer(norm="l2") computes the same, but its input checks on each
        call cost more than the work on one document, which is how the stage scores.
        """
        counts = self._hasher.transform(map(self._analyzer, texts))
        rows = np.repeat(np.arange(counts.shape[0]), np.diff(counts.indptr))  # the row of each entry
        counts.data /= np.sqrt(np.bincount(rows, weights=np.square(counts.data, dtype=np.float64)))[rows]
        return counts


@dataclasses.dataclass(frozen=True, eq=False)
class QualityModel:
    """Logistic regression on hashed n-grams: P(high quality) = sigmoid(x . weights + bias)."""

    weights: np.ndarray  # (num_buckets,) float32, one per hash bucket
    bias: float
    features: Features

    def scores(self, texts: Sequence[str]) -> np.ndarray:
        """P(high quality) of each text, float64 of shape (len(texts),)."""
        return expit(self.features.matrix(texts) @ self.weights + self.bias)

    def save(self, path: str) -> None:
        with open(path, "wb") as f:  # a file object: numpy would append .npz to a path
            np.savez_compressed(f, weights=self.weights, bias=np.float64(self.bias),
                                features=np.str_(json.dumps(dataclasses.asdict(self.features))))

    @classmethod
    def load(cls, path: str) -> QualityModel:
        with np.load(path, allow_pickle=False) as data:
            return cls(data["weights"], float(data["bias"]), Features(**json.loads(str(data["features"]))))


def train(texts: Sequence[str], labels: Sequence[int], features: Features = Features(),
          epochs: int = 10, alpha: float = 1e-5, seed: int = 0) -> QualityModel:
    """A model fit to `texts` labeled 1 (high quality) or 0, by SGD on the logistic loss.

    Args:
      texts: training examples; their features are held in memory at once, about
        20 bytes per distinct n-gram of each text (with SGD's float64 copy).
      labels: 1 or 0 per text; both must occur. Classes are weighted to count equally.
      features: the n-gram hashing settings.
      epochs: passes over the shuffled examples.
      alpha: L2 regularization strength, per example.
      seed: of the shuffling; the same inputs and seed give the same weights.
    """
    labels = np.asarray(labels)
    if np.unique(labels).tolist() != [0, 1]:
        raise ValueError(f"labels must include both 0 and 1 and nothing else, got {np.unique(labels).tolist()}")
    sgd = SGDClassifier(loss="log_loss", alpha=alpha, max_iter=epochs, tol=None,
                        class_weight="balanced", random_state=seed)
    sgd.fit(features.matrix(texts), labels)
    return QualityModel(sgd.coef_[0].astype(np.float32), float(sgd.intercept_[0]), features)


def threshold_for_top_fraction(scores: np.ndarray, fraction: float) -> float:
    """The score that `score >= threshold` keeps the top `fraction` of `scores` with.

    That is the k-th highest score, k = ceil(fraction * len(scores)); ties at it are
    all kept, so slightly more than the fraction may pass.
    """
    if not 0 < fraction <= 1 or not len(scores):
        raise ValueError(f"need a fraction in (0, 1] and some scores, got {fraction} and {len(scores)}")
    k = math.ceil(fraction * len(scores))
    return float(np.partition(scores, len(scores) - k)[len(scores) - k])


def top_fraction_cut(model: QualityModel, sample: Sequence[str], fraction: float) -> dict[str, float | int | None]:
    """The quality stage's report for keeping the top `fraction` (DCLM: 0.10) of the corpus: its threshold,
    placed on `sample`, texts of the corpus as they reach the stage, and the sample's size (both runners).

    From a uniform sample of n texts, the share of the corpus kept errs by about
    sqrt(f * (1 - f) / n): half a point for f = 0.10 and n = 3,000. With no text to
    sample the threshold is None: nothing reached the stage, it keeps everything.
    """
    if not sample:
        return {"threshold": None, "sampled": 0}
    return {"threshold": threshold_for_top_fraction(model.scores(sample), fraction), "sampled": len(sample)}


def quality_filter(model: QualityModel, threshold: float) -> Callable[[Document], Result]:
    """A stage that writes each document's score to metadata and keeps scores >= `threshold`."""

    def stage(doc: Document) -> Result:
        score = float(model.scores([doc.text])[0])
        if score < threshold:
            return Dropped(doc.id, Removed(STAGE, "below_threshold"))
        return dataclasses.replace(doc, metadata={**doc.metadata, SCORE_KEY: score})

    return stage


class Examples(NamedTuple):
    """Labeled texts, and why the documents that could not be used were lost."""

    texts: list[str]
    labels: np.ndarray  # (len(texts),) int, 1 = high quality
    removed: collections.Counter  # removal reason -> documents


def read_examples(labeled: Sequence[str] = (), positives: Sequence[str] = (), negatives: Sequence[str] = (),
                  engine: str = extract.DEFAULT_ENGINE) -> Examples:
    """Examples from JSONL files with `text` and `label` fields, and from files or folders
    of positives and negatives in any format `data_prep.readers` reads.

    HTML is extracted with `engine`, config.extract.engine, so the classifier learns
    from the text that the quality stage will score. Lines and files that cannot be
    read are counted by reason, as the pipeline's read stage counts them.
    """
    pairs: list[tuple[str, int]] = []
    removed: collections.Counter = collections.Counter()
    streams = ([_read_labeled(path) for path in labeled] + [_read_unlabeled(path, 1) for path in positives]
               + [_read_unlabeled(path, 0) for path in negatives])
    for result, label in itertools.chain.from_iterable(streams):
        if isinstance(result, Document):
            result = extract.extract(result, engine)
        if isinstance(result, Dropped):
            removed[str(result.removed)] += 1
        else:
            pairs.append((result.text, label))
    return Examples([text for text, _ in pairs], np.array([label for _, label in pairs], dtype=int), removed)


def _read_unlabeled(path: str, label: int) -> Iterator[tuple[Result, int]]:
    root, files = readers.list_files(path)
    return ((result, label) for result in readers.read_files(path, root, files))


def _read_labeled(path: str) -> Iterator[tuple[Result, int | None]]:
    """Each line's document (or why it was dropped) and label; a label other than 0 or 1 is a ConfigError.

    Lines are parsed as the JSONL reader parses them, so a malformed line is a removal
    with the reader's reason.
    """
    with open(path, "rb") as f:
        for number, line in enumerate(f, start=1):
            if not line.strip():
                continue
            location = f"{path}:{number}"
            record = readers.json_object(line)
            result = (Dropped(location, record) if isinstance(record, Removed)
                      else readers.record_document(path, location, location, record, readers.TEXT_FIELD))
            if isinstance(result, Dropped):
                yield result, None
                continue
            if record.get(LABEL_FIELD) not in (0, 1):
                raise ConfigError(f"{location}: {LABEL_FIELD!r} must be 0 or 1, got {record.get(LABEL_FIELD)!r}")
            yield result, int(record[LABEL_FIELD])


@dataclasses.dataclass(frozen=True)
class Evaluation:
    """How well scores separate labeled examples, at one threshold and over all of them."""

    threshold: float
    positives: int
    negatives: int
    precision: float  # of the examples kept (score >= threshold), the share labeled 1
    recall: float  # of the examples labeled 1, the share kept
    f1: float
    roc_auc: float  # P(a random positive scores above a random negative), ties count half

    def format(self) -> str:
        return (f"{self.positives} positives, {self.negatives} negatives; at threshold {self.threshold:.3f}: "
                f"precision {self.precision:.3f}, recall {self.recall:.3f}, F1 {self.f1:.3f}; "
                f"ROC AUC {self.roc_auc:.4f}")


def evaluate(scores: np.ndarray, labels: np.ndarray, threshold: float = 0.5) -> Evaluation:
    """Precision, recall and F1 of keeping `scores >= threshold`, and the ROC AUC of `scores`."""
    labels = np.asarray(labels)
    precision, recall, f1, _ = precision_recall_fscore_support(
        labels, np.asarray(scores) >= threshold, average="binary", zero_division=0.0)
    return Evaluation(threshold, int(labels.sum()), int((labels == 0).sum()), float(precision), float(recall),
                      float(f1), float(roc_auc_score(labels, scores)))
