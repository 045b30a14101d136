"""Training objectives over packed rows: causal LM and masked LM.

Causal LM: a target counts only when it belongs to the same document as the token
that predicts it: the first token of the next document and padding are never
targets. Masked LM: the targets are the positions BERT masking chose
(pretrain_jax/masking.py). Both return summed losses, so microbatches add up.
"""

from __future__ import annotations

from functools import partial
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import ml_collections

from pretrain_jax import masking, model, sharding
from pretrain_jax.layers import dense

Batch = dict[str, jax.Array]
# (params, tokens, segment_ids, positions) -> logits [batch, length, vocab], or model.Hidden
ApplyFn = Callable[..., jax.Array | model.Hidden]


class LossSums(NamedTuple):
    """Sums over a batch's targets, so microbatches add up exactly to the full batch."""

    loss: jax.Array  # cross-entropy in nats
    count: jax.Array  # target tokens
    log_z_squared: jax.Array  # log(Z)^2 of the targets' softmax normalizers: the z-loss before its coefficient


# (params, batch, rng) -> LossSums; rng drives masking only
LossFn = Callable[[Any, Batch, jax.Array], LossSums]


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
    with jax.named_scope("cross_entropy"):  # names its ops in profiles
        logits = logits.astype(jnp.float32)
        log_z = jax.nn.logsumexp(logits, axis=-1)
        target_logit = jnp.take_along_axis(logits, targets[..., None], axis=-1)[..., 0]
        return jnp.sum((log_z - target_logit) * weights)


def log_z_squared_sum(logits: jax.Array, weights: jax.Array) -> jax.Array:
    """Sum over positions of weight * logsumexp(logits)^2: the z-loss (PaLM, Chowdhery et al. 2022, section 5),
    which keeps the softmax normalizer near 1 so the output logits cannot drift to huge values.

    The same logsumexp as cross_entropy_sum's: XLA computes it once when both are in one program.
    """
    with jax.named_scope("z_loss"):
        return jnp.sum(jnp.square(jax.nn.logsumexp(logits.astype(jnp.float32), axis=-1)) * weights)


def chunked_sums(hidden: model.Hidden, targets: jax.Array, weights: jax.Array) -> tuple[jax.Array, jax.Array]:
    """(cross-entropy sum, log Z^2 sum) with the logits computed hidden.chunk positions at a time and recomputed in
    the backward pass, so no [batch, length, vocab] array exists (MaxText's vocabulary tiling): the output
    head's memory goes from batch x length x vocab float32 to batch x chunk x vocab."""
    batch, length, chunk = *hidden.x.shape[:2], hidden.chunk
    split = lambda a: jnp.moveaxis(a.reshape(batch, length // chunk, chunk, *a.shape[2:]), 1, 0)  # noqa: E731

    @jax.checkpoint
    def chunk_sums(x: jax.Array, t: jax.Array, w: jax.Array) -> jax.Array:
        logits = dense(x, hidden.head).astype(jnp.float32)  # [batch, chunk, vocab]
        return jnp.stack([cross_entropy_sum(logits, t, w), log_z_squared_sum(logits, w)])

    def add(total, xs):
        return total + chunk_sums(*xs), None

    sums, _ = jax.lax.scan(add, jnp.zeros(2), (split(hidden.x), split(targets), split(weights)))
    return sums[0], sums[1]


def _sums(output: jax.Array | model.Hidden, targets: jax.Array, weights: jax.Array) -> LossSums:
    """The sums from the logits, or from the Hidden states a chunk of positions at a time."""
    if isinstance(output, model.Hidden):
        loss, log_z_squared = chunked_sums(output, targets, weights)
    else:
        loss, log_z_squared = cross_entropy_sum(output, targets, weights), log_z_squared_sum(output, weights)
    return LossSums(loss, jnp.sum(weights), log_z_squared)


def _loss(apply_fn: ApplyFn, params, inputs: jax.Array, batch: Batch, targets: jax.Array,
          weights: jax.Array) -> LossSums:
    """The sums of the network on `inputs` against per-position targets and weights, all [batch, length].

    Targets are made in the rows' order; on a mesh with a context axis the rows are then put in its
    load-balanced order (every array alike, so each target stays with its position), which the
    sums do not depend on.
    """
    arrays = (inputs, batch["segment_ids"], batch["positions"], targets, weights)
    parts = sharding.context_size()
    if parts > 1:
        order = sharding.load_balanced_order(inputs.shape[1], parts)
        arrays = tuple(jnp.take(a, order, axis=1) for a in arrays)
    inputs, segment_ids, positions, targets, weights = arrays
    return _sums(apply_fn(params, inputs, segment_ids, positions), targets, weights)


def causal_lm_loss(apply_fn: ApplyFn, params, batch: Batch) -> LossSums:
    """The sums of one packed batch, next-token targets within each document."""
    return _loss(apply_fn, params, batch["tokens"], batch, *causal_lm_targets(batch["tokens"], batch["segment_ids"]))


def masked_lm_loss(apply_fn: ApplyFn, mlm_cfg: ml_collections.ConfigDict, mask: int, params, batch: Batch,
                   rng: jax.Array) -> LossSums:
    """The sums of one packed batch masked with `rng` (BERT masking), over the chosen tokens."""
    inputs, targets, weights = masking.mask_tokens(rng, batch["tokens"], batch["segment_ids"], mlm_cfg, mask)
    return _loss(apply_fn, params, inputs, batch, targets, weights)


# config.objective -> (config, apply_fn) -> LossFn
OBJECTIVES: dict[str, Callable[[ml_collections.ConfigDict, ApplyFn], LossFn]] = {
    "causal_lm": lambda config, apply_fn: lambda params, batch, rng: causal_lm_loss(apply_fn, params, batch),
    "masked_lm": lambda config, apply_fn: partial(masked_lm_loss, apply_fn, config.mlm,
                                                  masking.mask_id(config.model)),
}


def loss_fn(config: ml_collections.ConfigDict, apply_fn: ApplyFn) -> LossFn:
    """The loss of `config.objective` (checked by pretrain_jax/config.py), the one place training and
    evaluation pick it."""
    return OBJECTIVES[config.objective](config, apply_fn)
