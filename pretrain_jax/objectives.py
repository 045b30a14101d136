"""Training objectives over packed rows.

A target counts only when it belongs to the same document as the token that
predicts it: the first token of the next document and padding are never targets.
"""

from __future__ import annotations

from typing import Callable

import jax
import jax.numpy as jnp

Batch = dict[str, jax.Array]
# (params, tokens, segment_ids, positions) -> logits [batch, length, vocab]
ApplyFn = Callable[..., jax.Array]


def causal_lm_targets(tokens: jax.Array, segment_ids: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Next-token targets and 0/1 weights, both [batch, length].

    The last position of a row has no next token in the row and gets weight 0.
    """
    targets = jnp.pad(tokens[:, 1:], ((0, 0), (0, 1)))
    next_segment = jnp.pad(segment_ids[:, 1:], ((0, 0), (0, 1)))
    weights = (segment_ids == next_segment) & (segment_ids != 0)
    return targets, weights.astype(jnp.float32)


def cross_entropy_sum(logits: jax.Array, targets: jax.Array, weights: jax.Array) -> jax.Array:
    """Sum over positions of weight * -log p(target), with the log-softmax in float32."""
    logits = logits.astype(jnp.float32)
    log_z = jax.nn.logsumexp(logits, axis=-1)
    target_logit = jnp.take_along_axis(logits, targets[..., None], axis=-1)[..., 0]
    return jnp.sum((log_z - target_logit) * weights)


def causal_lm_loss(apply_fn: ApplyFn, params, batch: Batch) -> tuple[jax.Array, jax.Array]:
    """(summed loss, number of target tokens) for one packed batch.

    Sums rather than means, so microbatches add up exactly to the full batch.
    """
    logits = apply_fn(params, batch["tokens"], batch["segment_ids"], batch["positions"])
    targets, weights = causal_lm_targets(batch["tokens"], batch["segment_ids"])
    return cross_entropy_sum(logits, targets, weights), jnp.sum(weights)
