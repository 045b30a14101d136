"""Loss-spike detection over a running window, decided on the device (no host round trip per step).

OLMo-core's SkipStepAdamW semantics: an update is a spike when its loss or its
gradient norm exceeds the mean of the previous updates' values by more than
`sigma` of their standard deviations (unbiased), over the last `window` updates;
checks start once half the window is filled (at least 2 values). Every finite
value enters the window, spikes included, as in OLMo-core. What a spike costs is
the trainer's choice: the update is skipped, and with config.spike.rollback_batches
the run also restarts from its last checkpoint past the batches that followed it
(PaLM, Chowdhery et al. 2022, section 5.1).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import ml_collections

from pretrain_jax.train_state import SpikeHistory


def _exceeds(values: jax.Array, valid: jax.Array, latest: jax.Array, sigma: float) -> jax.Array:
    n = jnp.sum(valid)
    mean = jnp.sum(jnp.where(valid, values, 0.0)) / jnp.maximum(n, 1)
    variance = jnp.sum(jnp.where(valid, jnp.square(values - mean), 0.0)) / jnp.maximum(n - 1, 1)
    return latest - mean > sigma * jnp.sqrt(variance)


def is_spike(history: SpikeHistory, loss: jax.Array, grad_norm: jax.Array,
             spike_cfg: ml_collections.ConfigDict) -> jax.Array:
    """Whether this update's loss or gradient norm is a spike against `history` (False while it is off)."""
    if spike_cfg.sigma <= 0:
        return jnp.zeros((), bool)
    window = history.losses.shape[0]
    valid = jnp.arange(window) < history.count
    active = history.count >= max(2, window // 2)
    return active & (_exceeds(history.losses, valid, loss, spike_cfg.sigma)
                     | _exceeds(history.grad_norms, valid, grad_norm, spike_cfg.sigma))


def record(history: SpikeHistory, loss: jax.Array, grad_norm: jax.Array, finite: jax.Array) -> SpikeHistory:
    """The history with this update's values written over the oldest; unchanged for a non-finite update."""
    slot = history.count % history.losses.shape[0]
    written = SpikeHistory(losses=history.losses.at[slot].set(loss), grad_norms=history.grad_norms.at[slot].set(grad_norm),
                           count=history.count + 1)
    return jax.tree.map(lambda new, old: jnp.where(finite, new, old), written, history)
