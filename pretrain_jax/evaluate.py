"""Held-out loss, perplexity and bits per byte, and few-shot tasks, for a trained model
(`pretrain-jax evaluate`: pretrain_jax/cli/evaluate.py).

Bits per byte compare models with different tokenizers: the summed loss in nats
over the targets, divided by ln 2 times the UTF-8 bytes those targets spell. A
token's bytes are those of its piece with SentencePiece's "▁" read as a space; a
byte-fallback piece (<0xAB>) is 1 byte; control tokens (the end-of-document
separator, bos) and unk are 0 bytes, since they spell no text. The first token of
each document is never a target, so the bytes are those of the predicted text.
"""

from __future__ import annotations

import math
import os
import sys
from typing import Any, Callable, Iterable, Sequence

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import sentencepiece as spm
from jax.sharding import Mesh

from pretrain_common import records
from pretrain_common import tokenizer as tokenizer_lib
from pretrain_jax import fewshot, input_pipeline, masking, metrics, model, objectives, sharding, trained


def token_bytes(tokenizer: spm.SentencePieceProcessor, vocab_size: int) -> np.ndarray:
    """[vocab_size] int32: the UTF-8 bytes each token stands for (see the module docstring)."""
    if tokenizer.vocab_size() > vocab_size:
        raise ValueError(f"the tokenizer has {tokenizer.vocab_size()} tokens, more than vocab_size={vocab_size}")
    table = np.zeros(vocab_size, np.int32)
    for i in range(tokenizer.vocab_size()):
        if tokenizer.IsByte(i):
            table[i] = 1
        elif not (tokenizer.IsControl(i) or tokenizer.IsUnknown(i) or tokenizer.IsUnused(i)):
            table[i] = len(tokenizer.IdToPiece(i).replace("\u2581", " ").encode("utf-8"))
    return table


def target_bytes(bytes_per_token: jax.Array, tokens: jax.Array, segment_ids: jax.Array) -> jax.Array:
    """UTF-8 bytes spelled by the causal-LM targets of a packed batch [batch, length]."""
    targets, weights = objectives.causal_lm_targets(tokens, segment_ids)
    return jnp.sum(bytes_per_token[targets] * weights)


def make_eval_step(config: ml_collections.ConfigDict, mesh: Mesh, param_shardings: Any,
                   bytes_per_token: np.ndarray) -> Callable:
    """jit((params, batch) -> (summed loss, target tokens, target bytes)), over config.microbatches
    slices of the batch in turn, as the train step: a run that fits in training fits in validation."""
    apply_fn = model.apply_for_loss(config.model)
    batch_sh = sharding.batch_sharding(mesh)
    # Bits per byte is a next-token measure; a masked-LM loss covers only the masked tokens.
    # numpy until traced: a constant of the program, placed with it (also on compile-only devices, pretrain_jax/aot.py)
    table = bytes_per_token if config.objective == "causal_lm" else np.zeros_like(bytes_per_token)

    def eval_step(params, batch):
        def accumulate(total, microbatch):
            with sharding.activation_rules():
                loss_sum, count, _ = objectives.loss_fn(config, apply_fn)(params, microbatch, masking.eval_key())
            sums = (loss_sum, count, target_bytes(jnp.asarray(table), microbatch["tokens"], microbatch["segment_ids"]))
            return jax.tree.map(jnp.add, total, sums), None

        zeros = (jnp.zeros(()), jnp.zeros(()), jnp.zeros(()))
        return jax.lax.scan(accumulate, zeros, input_pipeline.microbatches(batch, config.microbatches))[0]

    return jax.jit(eval_step, in_shardings=(param_shardings, batch_sh),
                   out_shardings=sharding.replicated(mesh))


def evaluate(eval_step: Callable, params: Any, batches: Iterable[dict], mesh: Mesh,
             max_batches: int = 0) -> dict[str, float]:
    """Token-weighted mean loss, perplexity and bits per byte (causal LM only) over up to `max_batches`
    batches (0: all)."""
    total, count, num_bytes = 0.0, 0.0, 0.0
    for i, local in enumerate(batches):
        if max_batches and i >= max_batches:
            break
        with jax.set_mesh(mesh):
            loss_sum, n, b = eval_step(params, input_pipeline.global_batch(local, mesh))
        total, count, num_bytes = total + float(loss_sum), count + float(n), num_bytes + float(b)
    loss = total / max(count, 1.0)
    result = {"loss": loss, "perplexity": metrics.perplexity(loss), "tokens": count, "bytes": num_bytes}
    return {**result, "bits_per_byte": bits_per_byte(total, num_bytes)} if num_bytes else result


def bits_per_byte(nats: float, num_bytes: float) -> float:
    return nats / (math.log(2) * max(num_bytes, 1.0))


def task_scorer(config: ml_collections.ConfigDict, mesh: Mesh | None = None,
                param_shardings: Any = None) -> fewshot.Scorer:
    """A scorer for the tasks of `config` (rows up to seq_len tokens, config.eval_task_batch rows a pass)."""
    return fewshot.Scorer(config.model, config.seq_len, config.eval_task_batch, mesh, param_shardings)


def evaluate_tasks(scorer: fewshot.Scorer, params: Any, tokenizer: spm.SentencePieceProcessor,
                   paths: Sequence[str], num_fewshot: int, fewshot_path: str = "",
                   seed: int = 0) -> dict[str, dict[str, float]]:
    """{task name: metrics} for each task file (fewshot.score_task)."""
    shots = fewshot.load_task(fewshot_path) if fewshot_path else None
    return {fewshot.task_name(p): fewshot.score_task(scorer, params, tokenizer, fewshot.load_task(p), num_fewshot,
                                                     shots, seed) for p in paths}


def periodic_eval(config: ml_collections.ConfigDict, metadata: records.DatasetMetadata, mesh: Mesh,
                  param_shardings: Any) -> Callable[[Any], dict[str, float]]:
    """The validation pass of a training run: params -> held-out metrics and "<task>/<metric>" of config.eval_tasks."""
    tokenizer = tokenizer_lib.load_tokenizer(os.path.join(config.data.dir, metadata.tokenizer))
    step = make_eval_step(config, mesh, param_shardings, token_bytes(tokenizer, config.model.vocab_size))
    scorer = task_scorer(config, mesh, param_shardings) if config.eval_tasks else None

    def run(params: Any) -> dict[str, float]:
        result = evaluate(step, params, input_pipeline.eval_batches(config, metadata), mesh, config.eval_batches)
        if scorer is not None:
            tasks = evaluate_tasks(scorer, params, tokenizer, config.eval_tasks, config.eval_num_fewshot,
                                   seed=config.seed)
            result.update({f"{name}/{k}": v for name, m in tasks.items() for k, v in m.items() if k != "items"})
        return result

    return run


if __name__ == "__main__":  # `python -m pretrain_jax.evaluate ...`: an alias of `pretrain-jax evaluate ...`
    from pretrain_jax import cli

    cli.main(["evaluate", *sys.argv[1:]])
