"""Few-shot multiple-choice and cloze tasks scored by log-likelihood.

A task is a JSONL file, one item per line, of one of two kinds:

    multiple choice  {"context": str, "choices": [str, ...], "label": int}
    cloze            {"context": str, "continuation": str}

A choice or continuation is appended to its context exactly as written (give it
its own leading space if it needs one), as lm-evaluation-harness does with
`target_delimiter: ""`. With k > 0, k solved items drawn deterministically from a
few-shot file (or from the same file, never the item itself) come first, each
`context + answer`, joined by a blank line: the harness's default prompt layout.

Each (context, continuation) pair is one padded row of one forward pass under
jit; rows are grouped into a few length buckets so only a few shapes compile.
The model was trained without a BOS token and never predicts the first token of a
document, so a text's first token is context only and is never scored.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from functools import partial
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import sentencepiece as spm
from jax.sharding import Mesh

from pretrain_jax import model, sharding

Pair = tuple[list[int], list[int]]  # (context ids, continuation ids)
MIN_BUCKET = 16  # shortest row length compiled; rows are padded up to a power of two


def load_task(path: str) -> list[dict]:
    """The items of a task file, all of one kind, checked; a bad line names its line number."""
    items = []
    with open(path, encoding="utf-8") as f:
        for number, line in enumerate(f, 1):
            if line.strip():
                try:
                    item = json.loads(line)
                except json.JSONDecodeError as e:
                    raise ValueError(f"{path}:{number}: not a JSON object: {e.msg}") from None
                items.append(_checked(item, f"{path}:{number}"))
    if not items:
        raise ValueError(f"{path} holds no items")
    kinds = {item_kind(item) for item in items}
    if len(kinds) > 1:
        raise ValueError(f"{path} mixes multiple-choice and cloze items")
    return items


def item_kind(item: dict) -> str:
    return "multiple_choice" if "choices" in item else "cloze"


def _checked(item: Any, where: str) -> dict:
    if not isinstance(item, dict) or not isinstance(item.get("context"), str):
        raise ValueError(f"{where}: an item is an object with a string 'context'")
    if "choices" in item:
        choices, label = item["choices"], item.get("label")
        if (not isinstance(choices, list) or len(choices) < 2 or not all(isinstance(c, str) and c for c in choices)
                or not isinstance(label, int) or not 0 <= label < len(choices)):
            raise ValueError(f"{where}: a multiple-choice item needs 'choices' (>= 2 non-empty strings) "
                             "and an integer 'label' indexing them")
    elif not isinstance(item.get("continuation"), str) or not item["continuation"]:
        raise ValueError(f"{where}: an item needs 'choices' and 'label' (multiple choice) or a non-empty "
                         "'continuation' (cloze)")
    return item


def answer(item: dict) -> str:
    return item["choices"][item["label"]] if "choices" in item else item["continuation"]


def prompt(items: Sequence[dict], index: int, num_fewshot: int, fewshot_items: Sequence[dict] | None = None,
           seed: int = 0) -> str:
    """Item `index`'s context after `num_fewshot` solved examples (same draw for every run with `seed`)."""
    pool = list(fewshot_items) if fewshot_items is not None else [x for i, x in enumerate(items) if i != index]
    if num_fewshot > len(pool):
        raise ValueError(f"num_fewshot={num_fewshot} but only {len(pool)} items to draw examples from")
    picks = np.random.default_rng([seed, index]).choice(len(pool), num_fewshot, replace=False)
    return "\n\n".join([pool[i]["context"] + answer(pool[i]) for i in picks] + [items[index]["context"]])


def encode_pair(tokenizer: spm.SentencePieceProcessor, context: str, continuation: str) -> Pair:
    """Token ids of the context and of the continuation, split from one encoding of the whole text.

    Encoding the whole text tokenizes it as training did; trailing whitespace of the
    context moves to the continuation so it is not a lone piece (lm-eval's rule).
    """
    spaces = len(context) - len(context.rstrip())
    if spaces:
        context, continuation = context[:-spaces], context[-spaces:] + continuation
    whole = tokenizer.encode(context + continuation)
    n = len(tokenizer.encode(context)) if context else 0
    return whole[:n], whole[n:]


def _bucket(length: int, max_length: int) -> int:
    return min(max_length, max(MIN_BUCKET, 1 << (length - 1).bit_length()))


class Scorer:
    """Log-likelihoods of continuations under a model, in padded batches under jit.

    `mesh` and `param_shardings` place the computation on a training mesh, rows split
    over its data-parallel devices (every process builds the same rows and hands each
    device its part); without them it runs where the parameters are.
    """

    def __init__(self, model_cfg: ml_collections.ConfigDict, max_length: int, batch_rows: int = 16,
                 mesh: Mesh | None = None, param_shardings: Any = None):
        if not model_cfg.causal:
            raise ValueError("scoring continuations needs a causal model: a bidirectional one (model.causal=False) "
                             "sees the tokens it scores")
        self.max_length, self.mesh = max_length, mesh
        score = partial(_score_rows, model_cfg)
        if mesh is None:
            self.batch_rows, self._score = batch_rows, jax.jit(score)
        else:
            devices = sharding.data_parallel_size(mesh)
            self.batch_rows = -(-batch_rows // devices) * devices
            self._rows_sh = sharding.batch_sharding(mesh)
            self._score = jax.jit(score, in_shardings=(param_shardings, self._rows_sh, self._rows_sh),
                                  out_shardings=sharding.replicated(mesh))

    def score_ids(self, params: Any, pairs: Sequence[Pair]) -> list[tuple[float, bool, int]]:
        """(sum of log p(continuation), whether greedy decoding gives it, tokens scored) per pair.

        The context is cut from the left when a pair exceeds max_length tokens.
        """
        rows = [self._row(ctx, cont) for ctx, cont in pairs]
        results: list[tuple[float, bool, int] | None] = [None] * len(rows)
        by_length: dict[int, list[int]] = {}
        for i, (ids, _) in enumerate(rows):
            by_length.setdefault(_bucket(len(ids), self.max_length), []).append(i)
        for length, indices in sorted(by_length.items()):
            for start in range(0, len(indices), self.batch_rows):
                chunk = indices[start:start + self.batch_rows]
                tokens = np.zeros((self.batch_rows, length), np.int32)
                scored = np.zeros((self.batch_rows, length), bool)
                for r, i in enumerate(chunk):
                    ids, first = rows[i]
                    tokens[r, :len(ids)], scored[r, max(first, 1):len(ids)] = ids, True
                lengths = np.array([len(rows[i][0]) for i in chunk] + [0] * (self.batch_rows - len(chunk)))
                out = self._run(params, tokens, np.stack([lengths, scored.sum(1)], 1))
                logprob, greedy = (np.asarray(x.addressable_data(0)) for x in out)
                for r, i in enumerate(chunk):
                    results[i] = (float(logprob[r]), bool(greedy[r]), int(scored[r].sum()))
        return results  # type: ignore[return-value]

    def _run(self, params: Any, tokens: np.ndarray, counts: np.ndarray) -> tuple[jax.Array, jax.Array]:
        if self.mesh is None:
            return self._score(params, tokens, counts)
        place = lambda x: jax.make_array_from_callback(x.shape, self._rows_sh, lambda i: x[i])  # noqa: E731
        with jax.set_mesh(self.mesh):
            return self._score(params, place(tokens), place(counts))

    def _row(self, context: list[int], continuation: list[int]) -> tuple[list[int], int]:
        """(ids, index of the first continuation token), cut from the left to max_length.

        A continuation needs a context: training never predicts a document's first token
        (it follows another document's separator), so the model has no score for it.
        """
        if not context:
            raise ValueError("a continuation needs a non-empty context: the model was never trained to predict "
                             "the first token of a text")
        ids = (list(context) + list(continuation))[-self.max_length:]
        return ids, len(ids) - min(len(continuation), len(ids))

    def score_text(self, params: Any, tokenizer: spm.SentencePieceProcessor,
                   pairs: Sequence[tuple[str, str]]) -> list[tuple[float, bool, int]]:
        return self.score_ids(params, [encode_pair(tokenizer, c, x) for c, x in pairs])


def rolling_pairs(ids: Sequence[int], max_length: int) -> list[Pair]:
    """A whole text as (context, continuation) pairs that score each token once.

    Windows of max_length tokens laid end to end, each starting with the last token of
    the one before, as lm-eval's rolling log-likelihood; token 0 has no prediction.
    """
    pairs, start = [], 1
    while start < len(ids):
        end = min(len(ids), start + max_length - 1)
        pairs.append((list(ids[max(0, end - max_length):start]), list(ids[start:end])))
        start = end
    return pairs


def _score_rows(model_cfg, params, tokens, counts):
    """Per row: summed log-probability of its last `counts[:, 1]` real tokens, and whether all are argmax.

    tokens: [rows, length] int32 padded with 0; counts: [rows, 2] = (real tokens, scored tokens).
    """
    length = tokens.shape[1]
    index = jnp.arange(length)[None, :]
    real = index < counts[:, :1]
    with sharding.activation_rules():
        logits = model.apply(model_cfg, params, tokens, real.astype(jnp.int32),
                             jnp.broadcast_to(index, tokens.shape)).astype(jnp.float32)
    logp = jax.nn.log_softmax(logits[:, :-1])  # position t predicts token t + 1
    target = tokens[:, 1:]
    target_logp = jnp.take_along_axis(logp, target[..., None], axis=-1)[..., 0]
    scored = real[:, 1:] & (index[:, 1:] >= counts[:, :1] - counts[:, 1:])
    is_greedy = jnp.argmax(logp, axis=-1) == target
    return jnp.sum(target_logp * scored, axis=1), jnp.all(is_greedy | ~scored, axis=1)


def score_task(scorer: Scorer, params: Any, tokenizer: spm.SentencePieceProcessor, items: Sequence[dict],
               num_fewshot: int = 0, fewshot_items: Sequence[dict] | None = None, seed: int = 0) -> dict[str, float]:
    """Metrics of one task.

    Multiple choice: acc (argmax of log-likelihood) and acc_norm (of log-likelihood per
    character of the choice, as lm-eval's acc_norm). Cloze: acc (greedy decoding gives
    the continuation), the mean log-likelihood per item and the perplexity per token (token_perplexity;
    lm-eval's cloze perplexity is per item).
    """
    contexts = [prompt(items, i, num_fewshot, fewshot_items, seed) for i in range(len(items))]
    if item_kind(items[0]) == "cloze":
        scores = scorer.score_text(params, tokenizer, [(c, x["continuation"]) for c, x in zip(contexts, items)])
        logprob, tokens = sum(s[0] for s in scores), sum(s[2] for s in scores)
        return {"acc": float(np.mean([s[1] for s in scores])), "loglikelihood": logprob / len(items),
                "token_perplexity": float(np.exp(-logprob / max(tokens, 1))), "items": float(len(items))}
    pairs = [(c, choice) for c, x in zip(contexts, items) for choice in x["choices"]]
    scores = iter(scorer.score_text(params, tokenizer, pairs))
    correct, correct_norm = [], []
    for x in items:
        logprob = np.array([next(scores)[0] for _ in x["choices"]])
        chars = np.array([len(choice) for choice in x["choices"]], float)
        correct.append(int(np.argmax(logprob)) == x["label"])
        correct_norm.append(int(np.argmax(logprob / chars)) == x["label"])
    return {"acc": float(np.mean(correct)), "acc_norm": float(np.mean(correct_norm)), "items": float(len(items))}


def task_name(path: str) -> str:
    """The file name without its extension: the name in tables and TensorBoard tags."""
    return os.path.basename(path).removesuffix(".jsonl")


def format_table(results: dict[str, dict[str, float]]) -> str:
    """One row per task, one column per metric."""
    columns = sorted({k for metrics in results.values() for k in metrics})
    lines = [" | ".join(["task"] + columns), " | ".join(["---"] * (len(columns) + 1))]
    for name, metrics in results.items():
        lines.append(" | ".join([name] + [f"{metrics[c]:.4g}" if c in metrics else "" for c in columns]))
    return "\n".join(lines)
