"""Held-out loss and perplexity over the validation split."""

from __future__ import annotations

from functools import partial
from typing import Any, Callable, Iterable

import jax
import ml_collections
from jax.sharding import Mesh

from pretrain_jax import input_pipeline, masking, metrics, model, objectives, sharding


def make_eval_step(config: ml_collections.ConfigDict, mesh: Mesh, param_shardings: Any) -> Callable:
    """jit((params, batch) -> (summed loss, target tokens))."""
    apply_fn = partial(model.apply, config.model)
    batch_sh = sharding.batch_sharding(mesh)

    def eval_step(params, batch):
        with sharding.activation_rules():
            return objectives.loss_fn(config, apply_fn)(params, batch, masking.eval_key())

    return jax.jit(eval_step, in_shardings=(param_shardings, batch_sh),
                   out_shardings=sharding.replicated(mesh))


def evaluate(eval_step: Callable, params: Any, batches: Iterable[dict], mesh: Mesh,
             max_batches: int = 0) -> dict[str, float]:
    """Token-weighted mean loss over up to `max_batches` batches (0: all)."""
    total, count = 0.0, 0.0
    for i, local in enumerate(batches):
        if max_batches and i >= max_batches:
            break
        with jax.set_mesh(mesh):
            loss_sum, n = eval_step(params, input_pipeline.global_batch(local, mesh))
        total, count = total + float(loss_sum), count + float(n)
    loss = total / max(count, 1.0)
    return {"loss": loss, "perplexity": metrics.perplexity(loss), "tokens": count}

