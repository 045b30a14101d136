"""Held-out loss, perplexity and bits per byte, and few-shot tasks, for a trained model.

    python -m pretrain_jax.evaluate --workdir=DIR                       # held-out split of its dataset
    python -m pretrain_jax.evaluate --workdir=DIR --noheldout --task=a.jsonl --task=b.jsonl --num_fewshot=5

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
from absl import app, flags, logging
from jax.sharding import Mesh

from data_prep import records
from data_prep import tokenizer as tokenizer_lib
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
    table = jnp.asarray(bytes_per_token if config.objective == "causal_lm" else np.zeros_like(bytes_per_token))

    def eval_step(params, batch):
        def accumulate(total, microbatch):
            with sharding.activation_rules():
                loss_sum, count, _ = objectives.loss_fn(config, apply_fn)(params, microbatch, masking.eval_key())
            sums = (loss_sum, count, target_bytes(table, microbatch["tokens"], microbatch["segment_ids"]))
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


def _main(argv: Sequence[str]) -> None:
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    logging.set_verbosity(logging.WARNING)
    args = flags.FLAGS
    try:
        _evaluate_run(args)
    except (ValueError, FileNotFoundError) as e:  # a workdir, dataset or task file that cannot be used
        sys.exit(f"FATAL {e}")


def _evaluate_run(args: flags.FlagValues) -> None:
    run = trained.load(args.workdir, step=args.step, ema=args.ema)
    config = run.config
    print(f"{args.workdir}: step {run.step}")
    # Before the held-out pass: the scorer refuses a bidirectional model, load_task a missing or bad file.
    scorer = task_scorer(config) if args.task else None
    for path in [*args.task, *([args.fewshot_file] if args.fewshot_file else [])]:
        fewshot.load_task(path)
    if args.heldout:
        config.data.dir = args.data_dir or config.data.dir
        metadata = records.read_metadata(config.data.dir)
        input_pipeline.check_compatible(metadata, config)
        input_pipeline.check_shards(config.data.dir, metadata, [config.data.eval_split])
        mesh = jax.tree.leaves(run.params)[0].sharding.mesh
        step = make_eval_step(config, mesh, jax.tree.map(lambda x: x.sharding, run.params),
                              token_bytes(run.tokenizer, config.model.vocab_size))
        batches = input_pipeline.eval_batches(config, metadata)
        result = evaluate(step, run.params, batches, mesh, args.max_batches)
        print(fewshot.format_table({f"{config.data.eval_split} split": result}))
    if scorer is not None:
        results = evaluate_tasks(scorer, run.params, run.tokenizer, args.task, args.num_fewshot,
                                 args.fewshot_file, args.seed)
        print(f"\n{args.num_fewshot}-shot\n" + fewshot.format_table(results))


def main() -> None:
    """The command line; its flags are defined here so that importing this module (train does) defines none."""
    flags.DEFINE_string("workdir", None, "the --workdir of a training run", required=True)
    flags.DEFINE_integer("step", None, "the checkpoint of this step (default: the newest)")
    flags.DEFINE_bool("ema", False, "the EMA of the parameters (a run trained with ema_decay > 0)")
    flags.DEFINE_multi_string("task", [], "task JSONL files (pretrain_jax/fewshot.py)")
    flags.DEFINE_bool("heldout", True, "evaluate on the held-out split of the run's dataset (or --data_dir)")
    flags.DEFINE_integer("num_fewshot", 0, "solved examples before each item")
    flags.DEFINE_string("fewshot_file", "", "draw examples from this task file (default: the same file)")
    flags.DEFINE_integer("seed", 0, "seed of the example draw")
    flags.DEFINE_string("data_dir", "", "held-out data from this dataset instead of the run's")
    flags.DEFINE_integer("max_batches", 0, "held-out batches to read; 0: the whole split")
    app.run(_main)


if __name__ == "__main__":
    main()
