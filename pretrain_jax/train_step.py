"""The jitted train step: pure, `(state, batch) -> (state, metrics)`.

Gradients are accumulated over config.microbatches slices of the batch; the loss
is the mean cross-entropy plus the z-loss (model.z_loss). An update is skipped,
leaving parameters, optimizer state and EMA as they were, when its loss or gradient
is not finite, or when it is a spike (pretrain_jax/spikes.py). The metrics carry
per-group norms of the gradient, the parameters and the update (pretrain_jax/norms.py).
"""

from __future__ import annotations

from typing import Any, Callable

import jax
import jax.numpy as jnp
import ml_collections
import optax

from pretrain_jax import input_pipeline, masking, model, norms, objectives, optimizer, sharding, spikes
from pretrain_jax.train_state import Setup, TrainState

Batch = dict[str, jax.Array]
StepFn = Callable[[TrainState, Batch], tuple[TrainState, dict]]


def _summed_loss_and_grad(config: ml_collections.ConfigDict) -> Callable:
    """(params, batch, step) -> (LossSums, gradient of the summed objective), accumulated over microbatches.

    Masking (masked LM) draws from a key of (seed, step, microbatch), so a resumed run masks alike.
    """
    loss_fn = objectives.loss_fn(config, model.apply_for_loss(config.model))

    def objective(params, microbatch, rng):
        sums = loss_fn(params, microbatch, rng)
        return sums.loss + config.model.z_loss * sums.log_z_squared, sums

    loss_and_grad = jax.value_and_grad(objective, has_aux=True)

    def summed(params: Any, batch: Batch, step: jax.Array):
        def accumulate(total, indexed_microbatch):
            index, microbatch = indexed_microbatch
            (_, sums), grads = loss_and_grad(params, microbatch, masking.step_key(config.seed, step, index))
            return jax.tree.map(jnp.add, total, (sums, grads)), None

        zeros = (objectives.LossSums(*[jnp.zeros(())] * 3), jax.tree.map(jnp.zeros_like, params))
        microbatches = (jnp.arange(config.microbatches), input_pipeline.microbatches(batch, config.microbatches))
        return jax.lax.scan(accumulate, zeros, microbatches)[0]

    return summed


def make_train_step(config: ml_collections.ConfigDict, tx: optax.GradientTransformation) -> StepFn:
    schedule = optimizer.learning_rate_schedule(config.optimizer, config.num_train_steps)
    summed_loss_and_grad = _summed_loss_and_grad(config)
    ema = config.ema_decay

    def train_step(state: TrainState, batch: Batch) -> tuple[TrainState, dict]:
        with sharding.activation_rules():
            sums, grads = summed_loss_and_grad(state.params, batch, state.step)
        count = jnp.maximum(sums.count, 1.0)
        loss, z_loss = sums.loss / count, config.model.z_loss * sums.log_z_squared / count
        with jax.named_scope("optimizer"):  # names the update's ops in profiles
            grads = jax.tree.map(lambda g: g / count, grads)
            grad_squares = norms.squared_norms(grads, config.model)
            grad_norm = norms.global_norm(grad_squares)
            updates, opt_state = tx.update(grads, state.opt_state, state.params)
            params = optax.apply_updates(state.params, updates)
            finite = jnp.isfinite(loss + z_loss) & jnp.isfinite(grad_norm)
            spike = finite & spikes.is_spike(state.history, loss, grad_norm, config.spike)
            applied = finite & ~spike
            keep = lambda new, old: jax.tree.map(lambda a, b: jnp.where(applied, a, b), new, old)  # noqa: E731
            params, opt_state = keep(params, state.params), keep(opt_state, state.opt_state)
            ema_params = None if state.ema_params is None else keep(
                jax.tree.map(lambda e, p: ema * e + (1 - ema) * p, state.ema_params, params), state.ema_params)
        nonfinite = 1 - finite.astype(jnp.int32)
        new_state = state.replace(
            step=state.step + 1, params=params, opt_state=opt_state, ema_params=ema_params,
            nonfinite_in_row=(state.nonfinite_in_row + 1) * nonfinite, nonfinite_total=state.nonfinite_total + nonfinite,
            spikes_total=state.spikes_total + spike.astype(jnp.int32),
            history=spikes.record(state.history, loss, grad_norm, finite))
        param_squares = norms.squared_norms(new_state.params, config.model)
        step_metrics = {
            "loss": loss, "z_loss": z_loss, "target_tokens": count, "grad_norm": grad_norm,
            "param_norm": norms.global_norm(param_squares),
            "learning_rate": schedule(state.step - state.skipped_total),  # skipped updates do not advance it
            "tokens": jnp.asarray(batch["tokens"].size, jnp.float32),
            "nonfinite_in_row": new_state.nonfinite_in_row, "nonfinite_total": new_state.nonfinite_total,
            "spike": spike, "spikes_total": new_state.spikes_total, "rollbacks": new_state.rollbacks,
            "norms": {"grad": grad_squares, "param": param_squares,
                      "update": norms.squared_norms(updates, config.model)},
        }
        return new_state, step_metrics

    return train_step


def jit_train_step(config: ml_collections.ConfigDict, setup: Setup) -> StepFn:
    """The train step as the loop runs it (and `pretrain_jax.aot` compiles it): explicit shardings, state donated."""
    return jax.jit(make_train_step(config, setup.tx),
                   in_shardings=(setup.shardings, sharding.batch_sharding(setup.mesh)),
                   out_shardings=(setup.shardings, sharding.replicated(setup.mesh)), donate_argnums=0)
