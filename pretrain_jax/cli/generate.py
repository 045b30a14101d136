"""Continue prompts with a trained model (greedy, or sampled with temperature, top-k and top-p).

    pretrain-jax generate --workdir=workdirs/demo --prompt="def " --prompt="import os" \
        --max_new_tokens=64 --temperature=0.8 --top_p=0.95
"""

from __future__ import annotations

from typing import Sequence

from absl import flags

from pretrain_common import cli
from pretrain_common.errors import ConfigError
from pretrain_jax import generate, trained

USER_ERRORS = (ValueError, FileNotFoundError)  # a workdir or a sampling setting that cannot be used


def define(fv: flags.FlagValues, argv: Sequence[str]) -> None:
    flags.DEFINE_string("workdir", None, "workdir of a training run (config.json, checkpoints, ...)", flag_values=fv)
    flags.DEFINE_multi_string("prompt", [], "text to continue; repeat for a batch", flag_values=fv)
    flags.DEFINE_integer("max_new_tokens", 64, "tokens per prompt at most (eos stops sooner)", flag_values=fv)
    flags.DEFINE_float("temperature", 0.0, "0 is greedy; else the softmax temperature", flag_values=fv)
    flags.DEFINE_integer("top_k", 0, "sample among the k most likely tokens; 0 keeps all", flag_values=fv)
    flags.DEFINE_float("top_p", 1.0, "nucleus sampling mass; 1 keeps all", flag_values=fv)
    flags.DEFINE_integer("seed", 0, "sampling seed", flag_values=fv)
    flags.DEFINE_integer("step", None, "the checkpoint of this step (default: the newest)", flag_values=fv)


def run(args: flags.FlagValues) -> None:
    cli.required(args, "workdir")
    if not args.prompt:
        raise ConfigError("--prompt is required (repeat it for a batch)")
    sampling = generate.Sampling(args.temperature, args.top_k, args.top_p)
    loaded = trained.load(args.workdir, step=args.step)
    completions = generate.complete(loaded.config.model, loaded.params, loaded.tokenizer, args.prompt,
                                    args.max_new_tokens, sampling, args.seed)
    for prompt, completion in zip(args.prompt, completions):
        print(f"=== {prompt!r} (step {loaded.step})\n{prompt}{completion}\n", flush=True)
