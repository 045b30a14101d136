"""Fine-tune a pretrained run (either objective) as a text classifier (`pretrain-jax finetune`:
pretrain_jax/cli/finetune.py).

Each JSONL line is {"text": "...", "label": ...}, the labels strings or integers;
they are numbered in sorted order and the list is saved. A malformed line is an
error naming its file and line number.

Classifier: the pretrained network up to its final norm, the mean of those hidden
states over the document's tokens (the text and its end-of-document token, read as
up to `windows` rows of the pretraining sequence length, each starting at position
0 as a document continued from the previous row did in pretraining), standardized,
and a linear layer to the classes.
Mean pooling serves both objectives: a bidirectional encoder has no single summary
token, and for a causal model it uses every position rather than only the last (a
weakly trained decoder's last state is a poor summary). Pooled states share a large
common component and differ little between texts, so each feature is centred and
scaled by its mean and standard deviation over the training texts under the
pretrained backbone, computed once and kept fixed; the linear layer then starts
well conditioned. `--train=head` updates the linear layer alone (the backbone is
frozen: no gradient is taken through it); `--train=all` updates the backbone too.
AdamW with warmup and linear decay to 0, as BERT fine-tuning.

DIR receives classifier.safetensors (backbone/..., standardize/... and head/... tensors),
finetune.json (labels in index order, held-out accuracy, chance level = the
held-out majority-class rate) and the run's config.json and tokenizer.model, so
`load_classifier(DIR)` needs nothing else.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import sys
from collections import Counter
from collections.abc import Sequence
from typing import Any, Union

import flax.traverse_util
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
import safetensors.flax
import sentencepiece as spm

from pretrain_common import tokenizer as tokenizer_lib
from pretrain_jax import metrics, model, optimizer, trained

Label = Union[str, int]
PARAMS_FILE = "classifier.safetensors"
INFO_FILE = "finetune.json"
MAX_REPORTED_ERRORS = 10


# --- data ---

def read_examples(path: str) -> tuple[list[str], list[Label]]:
    """(texts, labels) of a JSONL file; every malformed line is reported at once, by line number."""
    texts, labels, errors = [], [], []
    with open(path, encoding="utf-8") as f:
        for number, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as e:
                errors.append(f"{path}:{number}: not JSON ({e.msg})")
                continue
            problem = _example_problem(record)
            if problem:
                errors.append(f"{path}:{number}: {problem}")
                continue
            texts.append(record["text"])
            labels.append(record["label"])
    if errors:
        more = f"\n... and {len(errors) - MAX_REPORTED_ERRORS} more" if len(errors) > MAX_REPORTED_ERRORS else ""
        raise ValueError(f"{len(errors)} malformed line(s); each must be {{\"text\": string, \"label\": string or "
                         "integer}:\n" + "\n".join(errors[:MAX_REPORTED_ERRORS]) + more)
    if not texts:
        raise ValueError(f"{path} holds no examples")
    return texts, labels


def _example_problem(record: Any) -> str | None:
    if not isinstance(record, dict):
        return f"a JSON object is expected, got {type(record).__name__}"
    if not isinstance(record.get("text"), str):
        return "no string field \"text\""
    label = record.get("label")
    if isinstance(label, bool) or not isinstance(label, (str, int)):
        return f"\"label\" must be a string or an integer, got {label!r}"
    return None


def label_list(labels: Sequence[Label]) -> list[Label]:
    """The distinct labels in index order: integers, then strings, each sorted."""
    return sorted(set(labels), key=lambda label: (isinstance(label, str), label))


def label_indices(labels: Sequence[Label], names: Sequence[Label], path: str) -> np.ndarray:
    index = {name: i for i, name in enumerate(names)}
    unknown = sorted({repr(label) for label in labels if label not in index})
    if unknown:
        raise ValueError(f"{path}: labels {', '.join(unknown)} do not occur in the training data {list(names)}")
    return np.array([index[label] for label in labels], np.int32)


def encode(tokenizer: spm.SentencePieceProcessor, texts: Sequence[str], length: int,
           windows: int) -> dict[str, np.ndarray]:
    """Each document as pretraining saw documents (ids + eos), in `windows` rows of `length`, cut and padded.

    tokens, segment_ids (1 on the document, 0 on padding), positions (0.. in every row):
    [len(texts), windows, length] int32.
    """
    docs = tokenizer.encode(list(texts), add_eos=True)
    tokens = np.zeros((len(docs), windows * length), np.int32)
    segment_ids = np.zeros((len(docs), windows * length), np.int32)
    for i, ids in enumerate(docs):
        ids = ids[:windows * length]
        tokens[i, :len(ids)] = ids
        segment_ids[i, :len(ids)] = 1
    shape = (len(docs), windows, length)
    positions = np.broadcast_to(np.arange(length, dtype=np.int32), shape).copy()
    return {"tokens": tokens.reshape(shape), "segment_ids": segment_ids.reshape(shape), "positions": positions}


# --- model ---

def _is_final_norm(module: Any, method_name: str) -> bool:
    return module.name == "final_norm" and method_name == "__call__"


def pooled_features(model_cfg: ml_collections.ConfigDict, backbone: Any, batch: dict[str, jax.Array]) -> jax.Array:
    """[batch, dim] float32: the final-norm hidden states averaged over each document's tokens in all its windows.

    batch: tokens, segment_ids, positions [batch, windows, length]. The language-model
    head's logits are not used, so jit drops their computation.
    """
    batch_size, windows, length = batch["tokens"].shape
    rows = {k: v.reshape(batch_size * windows, length) for k, v in batch.items()}
    _, state = model.Transformer(model_cfg).apply(
        {"params": backbone}, rows["tokens"], rows["segment_ids"], rows["positions"],
        capture_intermediates=_is_final_norm)
    hidden = state["intermediates"]["final_norm"]["__call__"][0].astype(jnp.float32)  # [rows, length, dim]
    hidden = hidden.reshape(batch_size, windows * length, -1)
    weights = (batch["segment_ids"] != 0).reshape(batch_size, windows * length, 1).astype(jnp.float32)
    return jnp.sum(hidden * weights, axis=1) / jnp.maximum(jnp.sum(weights, axis=1), 1.0)


def init_head(dim: int, num_classes: int) -> dict[str, jax.Array]:
    """A zero linear layer: the classifier starts at uniform predictions."""
    return {"kernel": jnp.zeros((dim, num_classes), jnp.float32), "bias": jnp.zeros((num_classes,), jnp.float32)}


def standardizer(features: np.ndarray) -> dict[str, np.ndarray]:
    """{"mean", "inv_std"} [dim] of pooled features [examples, dim]: the fixed centring and scaling."""
    return {"mean": features.mean(0), "inv_std": 1.0 / (features.std(0) + 1e-6)}


def classify(model_cfg: ml_collections.ConfigDict, params: Any, batch: dict[str, jax.Array]) -> jax.Array:
    """Class logits [batch, classes] from params {"backbone", "standardize", "head"}."""
    features = pooled_features(model_cfg, params["backbone"], batch)
    features = (features - params["standardize"]["mean"]) * params["standardize"]["inv_std"]
    return features @ params["head"]["kernel"] + params["head"]["bias"]


# --- training ---

@dataclasses.dataclass(frozen=True)
class Hyperparameters:
    train: str = "head"  # head | all
    windows: int = 1  # rows of the pretraining sequence length read per text: longer texts are cut
    epochs: int = 3
    batch_size: int = 32
    learning_rate: float = 1e-3
    weight_decay: float = 0.01
    warmup_fraction: float = 0.1  # of all steps; then linear decay to 0
    seed: int = 0


TRAIN_MODES = ("head", "all")


def make_optimizer(hp: Hyperparameters, num_steps: int) -> optax.GradientTransformation:
    """AdamW (decay on weight matrices only, as in pretraining), clipped at global norm 1."""
    warmup = int(hp.warmup_fraction * num_steps)
    schedule = optax.join_schedules([optax.linear_schedule(0.0, hp.learning_rate, max(warmup, 1)),
                                     optax.linear_schedule(hp.learning_rate, 0.0, max(num_steps - warmup, 1))],
                                    [warmup])
    return optax.chain(optax.clip_by_global_norm(1.0), optax.adamw(
        schedule, weight_decay=hp.weight_decay, mask=lambda p: optimizer.weight_decay_mask(p, True)))


def split_trainable(params: dict, mode: str) -> tuple[dict, dict]:
    """(trainable, frozen) parts of {"backbone", "standardize", "head"}; the backbone trains in mode "all"."""
    names = ("head", "backbone") if mode == "all" else ("head",)
    return ({k: v for k, v in params.items() if k in names}, {k: v for k, v in params.items() if k not in names})


def make_train_step(model_cfg: ml_collections.ConfigDict, tx: optax.GradientTransformation):
    """jit((trainable, opt_state, frozen, batch, labels, weights) -> (trainable, opt_state, mean loss))."""

    def loss_fn(trainable, frozen, batch, labels, weights):
        logits = classify(model_cfg, {**frozen, **trainable}, batch)
        losses = optax.softmax_cross_entropy_with_integer_labels(logits, labels)
        return jnp.sum(losses * weights) / jnp.maximum(jnp.sum(weights), 1.0)

    @jax.jit
    def step(trainable, opt_state, frozen, batch, labels, weights):
        loss, grads = jax.value_and_grad(loss_fn)(trainable, frozen, batch, labels, weights)
        updates, opt_state = tx.update(grads, opt_state, trainable)
        return optax.apply_updates(trainable, updates), opt_state, loss

    return step


def _batches(count: int, batch_size: int, order: np.ndarray | None = None):
    """(row indices, weights) per batch; the last batch is padded with weight-0 copies of row 0 (one shape)."""
    order = np.arange(count) if order is None else order
    for start in range(0, count, batch_size):
        index = order[start:start + batch_size]
        weights = np.ones(batch_size, np.float32)
        weights[len(index):] = 0.0
        yield np.pad(index, (0, batch_size - len(index))), weights


def _take(encoded: dict[str, np.ndarray], index: np.ndarray) -> dict[str, np.ndarray]:
    return {k: v[index] for k, v in encoded.items()}


def fit(model_cfg: ml_collections.ConfigDict, params: dict, encoded: dict[str, np.ndarray], labels: np.ndarray,
        hp: Hyperparameters) -> dict:
    """The trained params after hp.epochs shuffled passes over the examples."""
    steps_per_epoch = -(-len(labels) // hp.batch_size)
    tx = make_optimizer(hp, hp.epochs * steps_per_epoch)
    trainable, frozen = split_trainable(params, hp.train)
    opt_state = tx.init(trainable)
    step = make_train_step(model_cfg, tx)
    rng = np.random.default_rng(hp.seed)
    for epoch in range(hp.epochs):
        losses = []
        for index, weights in _batches(len(labels), hp.batch_size, rng.permutation(len(labels))):
            trainable, opt_state, loss = step(trainable, opt_state, frozen, _take(encoded, index), labels[index],
                                              weights)
            losses.append(loss)
        metrics.log(f"epoch {epoch + 1}/{hp.epochs}: mean training loss {float(np.mean(losses)):.4f} "
                    f"over {steps_per_epoch} steps")
    return {**frozen, **trainable}


def _map_rows(fn, params: Any, encoded: dict[str, np.ndarray], batch_size: int = 64) -> np.ndarray:
    """jit(fn)(params, batch) over the rows in fixed-size batches, concatenated (padding rows dropped)."""
    fn = jax.jit(fn)
    return np.concatenate([np.asarray(fn(params, _take(encoded, index)))[weights > 0]
                           for index, weights in _batches(len(encoded["tokens"]), batch_size)])


def predict(model_cfg: ml_collections.ConfigDict, params: dict, encoded: dict[str, np.ndarray]) -> np.ndarray:
    """The predicted class index of every row."""
    return _map_rows(lambda p, b: jnp.argmax(classify(model_cfg, p, b), -1), params, encoded)


def accuracy_report(predicted: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    """Accuracy, and chance: the rate of the most common class (always predicting it)."""
    chance = Counter(labels.tolist()).most_common(1)[0][1] / len(labels)
    return {"accuracy": float(np.mean(predicted == labels)), "chance": chance, "examples": len(labels)}


# --- files ---

def save_classifier(output: str, workdir: str, params: dict, names: Sequence[Label], info: dict) -> None:
    """classifier.safetensors, finetune.json and the pretrained run's config.json and tokenizer.model."""
    os.makedirs(output, exist_ok=True)
    flat = flax.traverse_util.flatten_dict(jax.device_get(params), sep="/")
    safetensors.flax.save_file({k: jnp.asarray(v) for k, v in flat.items()}, os.path.join(output, PARAMS_FILE))
    with open(os.path.join(output, INFO_FILE), "w", encoding="utf-8") as f:
        json.dump({"labels": list(names), **info}, f, indent=2)
    for name in (trained.CONFIG_FILE, trained.TOKENIZER_FILE):
        shutil.copyfile(os.path.join(workdir, name), os.path.join(output, name))


@dataclasses.dataclass(frozen=True)
class Classifier:
    config: ml_collections.ConfigDict
    params: dict  # {"backbone": model params, "standardize": {"mean", "inv_std"}, "head": {"kernel", "bias"}}
    labels: list[Label]  # class index -> label
    tokenizer: spm.SentencePieceProcessor
    windows: int  # rows of config.seq_len tokens read per text

    def __call__(self, texts: Sequence[str]) -> list[Label]:
        encoded = encode(self.tokenizer, texts, self.config.seq_len, self.windows)
        predicted = predict(self.config.model, self.params, encoded)
        return [self.labels[i] for i in predicted]


def load_classifier(output: str) -> Classifier:
    """A classifier saved by `finetune` (its --output folder)."""
    with open(os.path.join(output, INFO_FILE), encoding="utf-8") as f:
        info = json.load(f)
    params = flax.traverse_util.unflatten_dict(safetensors.flax.load_file(os.path.join(output, PARAMS_FILE)),
                                               sep="/")
    return Classifier(trained.load_config(output), params, info["labels"],
                      tokenizer_lib.load_tokenizer(os.path.join(output, trained.TOKENIZER_FILE)),
                      info["hyperparameters"]["windows"])


def finetune(workdir: str, data: str, eval_data: str, output: str, hp: Hyperparameters) -> dict[str, float]:
    """Fine-tunes the run in `workdir`, saves the classifier in `output`; returns the held-out report."""
    if hp.train not in TRAIN_MODES:
        raise ValueError(f"train={hp.train!r}; choose one of {TRAIN_MODES}")
    if hp.windows < 1:
        raise ValueError(f"windows={hp.windows}: at least one row per text")
    texts, train_labels = read_examples(data)
    eval_texts, eval_labels = read_examples(eval_data)
    names = label_list(train_labels)
    if len(names) < 2:
        raise ValueError(f"{data}: a classifier needs at least 2 distinct labels, found {names}")
    y, eval_y = label_indices(train_labels, names, data), label_indices(eval_labels, names, eval_data)
    run = trained.load(workdir)
    length = run.config.seq_len
    metrics.log(f"fine-tuning {workdir} (step {run.step}, objective {run.config.objective}), train={hp.train}: "
                f"{len(y)} training and {len(eval_y)} held-out examples, {len(names)} classes, "
                f"inputs of up to {hp.windows} x {length} tokens")
    encoded = encode(run.tokenizer, texts, length, hp.windows)
    features = _map_rows(lambda p, b: pooled_features(run.config.model, p, b), run.params, encoded)
    params = {"backbone": run.params, "standardize": standardizer(features),
              "head": init_head(run.config.model.dim, len(names))}
    params = fit(run.config.model, params, encoded, y, hp)
    report = accuracy_report(predict(run.config.model, params, encode(run.tokenizer, eval_texts, length, hp.windows)), eval_y)
    metrics.log(f"held-out accuracy {report['accuracy']:.4f} (chance, the majority class: {report['chance']:.4f}) "
                f"over {report['examples']} examples")
    save_classifier(output, workdir, params, names,
                    {**report, "workdir": os.path.abspath(workdir), "pretrained_step": run.step,
                     "hyperparameters": dataclasses.asdict(hp)})
    return report


if __name__ == "__main__":  # `python -m pretrain_jax.finetune ...`: an alias of `pretrain-jax finetune ...`
    from pretrain_jax import cli

    cli.main(["finetune", *sys.argv[1:]])
