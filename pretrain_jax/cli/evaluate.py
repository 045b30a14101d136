"""Held-out loss, perplexity and bits per byte of a trained run, and few-shot tasks.

    pretrain-jax evaluate --workdir=DIR                        # the held-out split of its dataset
    pretrain-jax evaluate --workdir=DIR --step=500 --data_dir=OTHER_DATA
    pretrain-jax evaluate --workdir=DIR --noheldout --task=a.jsonl --task=b.jsonl --num_fewshot=5
"""

from __future__ import annotations

from typing import Sequence

import jax
from absl import flags, logging

from pretrain_common import cli, records
from pretrain_jax import evaluate, fewshot, input_pipeline, trained

USER_ERRORS = (ValueError, FileNotFoundError)  # a workdir, dataset or task file that cannot be used


def define(fv: flags.FlagValues, argv: Sequence[str]) -> None:
    flags.DEFINE_string("workdir", None, "the --workdir of a training run", flag_values=fv)
    flags.DEFINE_integer("step", None, "the checkpoint of this step (default: the newest)", flag_values=fv)
    flags.DEFINE_bool("ema", False, "the EMA of the parameters (a run trained with ema_decay > 0)", flag_values=fv)
    flags.DEFINE_multi_string("task", [], "task JSONL files (pretrain_jax/fewshot.py)", flag_values=fv)
    flags.DEFINE_bool("heldout", True, "evaluate on the held-out split of the run's dataset (or --data_dir)",
                      flag_values=fv)
    flags.DEFINE_integer("num_fewshot", 0, "solved examples before each item", flag_values=fv)
    flags.DEFINE_string("fewshot_file", "", "draw examples from this task file (default: the same file)",
                        flag_values=fv)
    flags.DEFINE_integer("seed", 0, "seed of the example draw", flag_values=fv)
    flags.DEFINE_string("data_dir", "", "held-out data from this dataset instead of the run's", flag_values=fv)
    flags.DEFINE_integer("max_batches", 0, "held-out batches to read; 0: the whole split", flag_values=fv)


def run(args: flags.FlagValues) -> None:
    cli.required(args, "workdir")
    logging.set_verbosity(logging.WARNING)
    loaded = trained.load(args.workdir, step=args.step, ema=args.ema)
    config = loaded.config
    print(f"{args.workdir}: step {loaded.step}")
    # Before the held-out pass: the scorer refuses a bidirectional model, load_task a missing or bad file.
    scorer = evaluate.task_scorer(config) if args.task else None
    for path in [*args.task, *([args.fewshot_file] if args.fewshot_file else [])]:
        fewshot.load_task(path)
    if args.heldout:
        config.data.dir = args.data_dir or config.data.dir
        metadata = records.read_metadata(config.data.dir)
        input_pipeline.check_compatible(metadata, config)
        input_pipeline.check_shards(config.data.dir, metadata, [config.data.eval_split])
        mesh = jax.tree.leaves(loaded.params)[0].sharding.mesh
        step = evaluate.make_eval_step(config, mesh, jax.tree.map(lambda x: x.sharding, loaded.params),
                                       evaluate.token_bytes(loaded.tokenizer, config.model.vocab_size))
        batches = input_pipeline.eval_batches(config, metadata)
        result = evaluate.evaluate(step, loaded.params, batches, mesh, args.max_batches)
        print(fewshot.format_table({f"{config.data.eval_split} split": result}))
    if scorer is not None:
        results = evaluate.evaluate_tasks(scorer, loaded.params, loaded.tokenizer, args.task, args.num_fewshot,
                                          args.fewshot_file, args.seed)
        print(f"\n{args.num_fewshot}-shot\n" + fewshot.format_table(results))
