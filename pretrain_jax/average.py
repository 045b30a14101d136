"""Weight averaging ("model soups"): checkpoints of runs of one shape averaged into a new workdir
(`pretrain-jax average`: pretrain_jax/cli/average.py).

OLMo 2 averages several anneals of one pretraining run (Wortsman et al. 2022,
"Model soups"); averaging the last checkpoints of one run is Polyak averaging. The
average is taken leaf by leaf: one parameter array of one input is read at a time
and added in float64 into the output's leaf, so memory holds the output model and
one input leaf, whatever the number of inputs; the uniform average of copies of one
checkpoint is that checkpoint exactly. The output workdir holds the parameters
only (no optimizer state): evaluate, generate, finetune and hf export read it as
any run's, and a new run starts from it with --init_from.
"""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Sequence
from typing import Any

import flax.linen as nn
import jax
import ml_collections
import numpy as np
from etils import epath
from flax import traverse_util

from pretrain_common.errors import ConfigError
from pretrain_jax import checkpointing, metrics, model, trained


def _inputs(specs: Sequence[str], weights: Sequence[float] | None, ema: bool
            ) -> tuple[list[tuple[str, int, float]], ml_collections.ConfigDict]:
    """[(workdir, step, normalized weight)] and the first input's config; refuses inputs that cannot be averaged."""
    if not specs:
        raise ConfigError("give at least one --checkpoint=WORKDIR[@STEP]")
    weights = [1.0] * len(specs) if not weights else list(weights)
    if len(weights) != len(specs) or any(not w >= 0 for w in weights) or not sum(weights) > 0:
        raise ConfigError(f"--weights={weights}: one weight >= 0 per --checkpoint ({len(specs)}), with a positive sum")
    inputs, first = [], None
    for spec, weight in zip(specs, weights):
        workdir, step = trained.source_step(spec)
        config = trained.load_config(workdir)
        if ema and not config.ema_decay > 0:
            raise ConfigError(f"--ema: {workdir} was trained without an EMA of its parameters (ema_decay=0)")
        if first is None:
            first = config
        differ = [d for d in trained.shape_differences(first, config) if d.startswith("model.")]
        if differ:
            raise ConfigError(f"{spec} has other parameter shapes than {specs[0]}: " + "; ".join(differ))
        if _tokenizer(workdir) != _tokenizer(inputs[0][0] if inputs else workdir):
            raise ConfigError(f"{spec} was trained with another tokenizer than {specs[0]}: its parameters mean "
                              "other tokens")
        inputs.append((workdir, step, weight / sum(weights)))
    return inputs, first


def _tokenizer(workdir: str) -> bytes:
    return (epath.Path(workdir) / trained.TOKENIZER_FILE).read_bytes()


def average(specs: Sequence[str], output: str, weights: Sequence[float] | None = None, ema: bool = False) -> str:
    """Writes the weighted average of the checkpoints `specs` ('WORKDIR[@STEP]') to the workdir `output`."""
    inputs, config = _inputs(specs, weights, ema)
    if epath.Path(output).exists() and any(epath.Path(output).iterdir()):
        raise ConfigError(f"--output={output} exists and is not empty: give a new folder")
    field = "ema_params" if ema else "params"
    shapes = jax.eval_shape(lambda: nn.unbox(model.init_params(config.model, jax.random.key(0))))
    flat = traverse_util.flatten_dict(shapes)
    readers = [checkpointing.Checkpointer(os.path.join(w, trained.CHECKPOINTS), every=0, keep=None)
               for w, _, _ in inputs]
    averaged = {}
    try:
        for i, (path, leaf) in enumerate(flat.items()):
            total = np.zeros(leaf.shape, np.float64)
            for reader, (_, step, weight) in zip(readers, inputs):
                total += weight * reader.restore_numpy(field, path, leaf, step).astype(np.float64)
            averaged[path] = total.astype(leaf.dtype)
            metrics.log(f"averaged {'/'.join(path)} ({i + 1} of {len(flat)} arrays)")
    finally:
        for reader in readers:
            reader.close()
    _write(config, inputs, traverse_util.unflatten_dict(averaged), output)
    return output


def _write(config: ml_collections.ConfigDict, inputs: list[tuple[str, int, float]], params: Any, output: str) -> None:
    config = config.copy_and_resolve_references()
    config.averaged_from = tuple((f"{w}@{s}", weight) for w, s, weight in inputs)
    config.ema_decay = 0.0  # the output holds one set of parameters
    epath.Path(output).mkdir(parents=True, exist_ok=True)
    (epath.Path(output) / trained.CONFIG_FILE).write_text(config.to_json(indent=2))
    shutil.copyfile(os.path.join(inputs[0][0], trained.TOKENIZER_FILE), os.path.join(output, trained.TOKENIZER_FILE))
    ckpt = checkpointing.Checkpointer(os.path.join(output, trained.CHECKPOINTS), every=0, keep=None)
    try:
        ckpt.save_params(params, max(step for _, step, _ in inputs))
    finally:
        ckpt.close()


if __name__ == "__main__":  # `python -m pretrain_jax.average ...`: an alias of `pretrain-jax average ...`
    from pretrain_jax import cli

    cli.main(["average", *sys.argv[1:]])
