"""The quality classifier's commands: fit it on labeled examples, and measure it on held-out ones.

    data-prep train-classifier --config=FILE --config.classifier.model=/data/quality.npz \
        --config.classifier.train.positives='("/data/curated",)' --config.classifier.train.negatives='("/data/web",)'
    data-prep eval-classifier --config=FILE --config.classifier.model=/data/quality.npz \
        --config.classifier.heldout.labeled='("/data/heldout.jsonl",)'

Both read `config.classifier` (model path, example inputs, feature and training
settings, threshold) and `config.seed`; `data_prep.classifier` says what each means.
"""

from __future__ import annotations

import ml_collections

from data_prep import classifier
from pretrain_common.errors import ConfigError


def train_classifier(config: ml_collections.ConfigDict) -> classifier.QualityModel:
    """Trains on `classifier.train`, saves the model to `classifier.model`, and prints its fit."""
    c = config.classifier
    if not c.model:
        raise ConfigError("config.classifier.model is empty: say where to write the model (.npz)")
    examples = _read(c.train, "config.classifier.train", config.extract.engine)
    model = classifier.train(examples.texts, examples.labels,
                             classifier.Features(c.max_ngram, c.num_buckets, c.lowercase),
                             epochs=c.epochs, alpha=c.alpha, seed=config.seed)
    model.save(c.model)
    fit = classifier.evaluate(model.scores(examples.texts), examples.labels, c.threshold)
    print(f"wrote {c.model}; on its training examples: {fit.format()}")
    return model


def eval_classifier(config: ml_collections.ConfigDict) -> classifier.Evaluation:
    """Scores `classifier.heldout` with the model at `classifier.model` and prints the metrics."""
    c = config.classifier
    if not c.model:
        raise ConfigError("config.classifier.model is empty: say which model (.npz) to evaluate")
    examples = _read(c.heldout, "config.classifier.heldout", config.extract.engine)
    evaluation = classifier.evaluate(classifier.QualityModel.load(c.model).scores(examples.texts),
                                     examples.labels, c.threshold)
    print(evaluation.format())
    return evaluation


def _read(inputs: ml_collections.ConfigDict, key: str, engine: str) -> classifier.Examples:
    """The examples that `inputs` (labeled, positives, negatives) name, HTML extracted with `engine`
    (config.extract.engine, as the quality stage sees it); both labels must occur."""
    try:
        examples = classifier.read_examples(inputs.labeled, inputs.positives, inputs.negatives, engine)
    except FileNotFoundError as error:
        raise ConfigError(f"{key}: {error}") from None
    positives = int(examples.labels.sum())
    if not positives or positives == len(examples.labels):
        raise ConfigError(f"{key} needs examples of both labels (1 = high quality, 0 = low), got "
                          f"{positives} labeled 1 and {len(examples.labels) - positives} labeled 0")
    if examples.removed:
        print(f"{key}: {sum(examples.removed.values())} documents not used: {dict(examples.removed)}")
    return examples
