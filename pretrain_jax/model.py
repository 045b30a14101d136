"""A Llama-style decoder (Touvron et al. 2023) as Flax Linen modules used functionally.

    tokens -> embed -> [RMSNorm -> attention -> + -> RMSNorm -> SwiGLU -> +] x L -> RMSNorm -> head

`Transformer(cfg).init(rng, ...)` returns the parameter pytree and
`Transformer(cfg).apply({"params": params}, ...)` the logits; nothing else is held
in the module. With `causal=False` the same network is the bidirectional encoder
of a masked LM; the document mask holds either way.
"""

from __future__ import annotations

import math
from functools import partial
from typing import Any, Callable, NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections

from pretrain_jax import axes, pipeline, sharding
from pretrain_jax.attention import Attention, Decoding
from pretrain_jax.layers import RMSNorm, Rotary, SwiGLU, dense, param_with_axes, rotary_angles

# What each remat policy keeps from the forward pass; everything else is recomputed.
REMAT_POLICIES = {
    "full": jax.checkpoint_policies.nothing_saveable,
    "dots_no_batch": jax.checkpoint_policies.dots_with_no_batch_dims_saveable,
    "minimal": jax.checkpoint_policies.checkpoint_dots,
}


def head_dim(cfg: ml_collections.ConfigDict) -> int:
    return cfg.head_dim or cfg.dim // cfg.num_heads


class Block(nn.Module):
    """One pre-norm transformer layer. Returns (x, None) so nn.scan can stack it."""

    cfg: ml_collections.ConfigDict

    @nn.compact
    def __call__(self, x: jax.Array, segment_ids: jax.Array | None, positions: jax.Array, rotary: Rotary,
                 decoding: Decoding | None = None):
        cfg = self.cfg
        dtype, param_dtype = jnp.dtype(cfg.dtype), jnp.dtype(cfg.param_dtype)
        # Residual projections are scaled down with depth (GPT-2, Radford et al. 2019).
        out_std = cfg.init_std / math.sqrt(2 * cfg.num_layers)
        norm = lambda name: RMSNorm(cfg.norm_eps, dtype, param_dtype, name=name)  # noqa: E731

        attn = Attention(cfg.num_heads, cfg.num_kv_heads, head_dim(cfg), cfg.causal, cfg.attention_impl,
                         cfg.init_std, out_std, dtype, param_dtype, cfg.norm_eps if cfg.qk_norm else None,
                         name="attention")
        x = x + attn(norm("attention_norm")(x), segment_ids, positions, rotary, decoding)
        mlp = SwiGLU(cfg.mlp_dim, cfg.init_std, out_std, dtype, param_dtype, name="mlp")
        x = x + mlp(norm("mlp_norm")(x))
        x = nn.with_logical_constraint(x, (axes.BATCH, axes.LENGTH, axes.ACT_EMBED))
        return x, None


def _layer_stack(cfg: ml_collections.ConfigDict, decode: bool) -> type[nn.Module]:
    """Block, rematerialized by policy (training only) and scanned over depth when configured."""
    block = Block
    if cfg.remat != "none" and not decode:  # config.validate checks the name
        block = nn.remat(Block, policy=REMAT_POLICIES[cfg.remat], prevent_cse=not cfg.scan_layers)
    if not cfg.scan_layers:
        return block
    # A decoding key/value cache is stacked over layers like the parameters.
    return nn.scan(block, variable_axes={"params": 0, "cache": 0}, split_rngs={"params": True},
                   in_axes=(nn.broadcast,) * 4, length=cfg.num_layers,
                   metadata_params={nn.PARTITION_NAME: axes.LAYERS})


def _layer_fn(cfg: ml_collections.ConfigDict) -> Callable[..., jax.Array]:
    """(one layer's params, x, segment_ids, positions, rotary) -> x: a Block applied functionally (pipeline
    stages run their layers so), rematerialized by policy as the scanned stack is."""
    def layer(params: Any, x: jax.Array, segment_ids: jax.Array, positions: jax.Array, rotary: Rotary) -> jax.Array:
        return Block(cfg).apply({"params": params}, x, segment_ids, positions, rotary)[0]

    return layer if cfg.remat == "none" else jax.checkpoint(layer, policy=REMAT_POLICIES[cfg.remat])


class Hidden(NamedTuple):
    """The network before its output projection, for a loss that never holds all the logits (objectives.py)."""

    x: jax.Array  # [batch, length, dim] after the final norm, in the compute dtype
    head: jax.Array  # [dim, vocab] the output projection (the embedding transposed when tied)
    chunk: int  # positions whose logits the loss computes at a time (cfg.logits_chunk)


class Transformer(nn.Module):
    cfg: ml_collections.ConfigDict  # the `model` section of the config
    hidden: bool = False  # return Hidden instead of the logits

    @nn.compact
    def __call__(self, tokens: jax.Array, segment_ids: jax.Array | None, positions: jax.Array,
                 decoding: Decoding | None = None) -> jax.Array | Hidden:
        """tokens, segment_ids, positions: [batch, length] int32 -> logits [batch, length, vocab] float32.

        With `decoding` (see `decode`), attention reads and extends the key/value cache and
        segment_ids is unused.
        """
        cfg = self.cfg
        dtype, param_dtype = jnp.dtype(cfg.dtype), jnp.dtype(cfg.param_dtype)
        init = nn.initializers.normal(cfg.init_std)
        embedding = param_with_axes(self, "embedding", (cfg.vocab_size, cfg.dim), (axes.VOCAB, axes.EMBED),
                                    init, param_dtype)
        x = jnp.take(embedding, tokens, axis=0).astype(dtype)  # [batch, length, dim]
        x = nn.with_logical_constraint(x, (axes.BATCH, axes.LENGTH, axes.ACT_EMBED))

        # Positions restart at each document of a row; decoding's run up to the cache's length.
        num_positions = tokens.shape[1] if decoding is None else decoding.valid.shape[1]
        rotary = partial(rotary_angles, head_dim=head_dim(cfg), theta=cfg.rope_theta, num_positions=num_positions,
                         scaling=cfg.rope_scaling)
        stages = sharding.axis_size("stage")
        if stages > 1 and decoding is None and not self.is_initializing():
            x = pipeline.run(cfg, _layer_fn(cfg), rotary, self.variables["params"]["layers"], x, segment_ids,
                             positions, stages)
        else:
            tables = rotary(positions)  # once, for every layer
            stack = _layer_stack(cfg, decoding is not None)
            if cfg.scan_layers:
                x, _ = stack(cfg, name="layers")(x, segment_ids, positions, tables, decoding)
            else:
                for i in range(cfg.num_layers):
                    x, _ = stack(cfg, name=f"layers_{i}")(x, segment_ids, positions, tables, decoding)

        x = RMSNorm(cfg.norm_eps, dtype, param_dtype, name="final_norm")(x)
        if cfg.tie_embeddings:
            head = embedding.T
        else:
            head = param_with_axes(self, "head", (cfg.dim, cfg.vocab_size), (axes.EMBED, axes.VOCAB), init,
                                   param_dtype)
        if self.hidden:
            return Hidden(x, head.astype(dtype), cfg.logits_chunk)
        logits = dense(x, head.astype(dtype))  # [batch, length, vocab]
        logits = nn.with_logical_constraint(logits, (axes.BATCH, axes.LENGTH, axes.ACT_VOCAB))
        return logits.astype(jnp.float32)


def param_count(cfg: ml_collections.ConfigDict) -> dict[str, int]:
    """Parameters by formula: {'total', 'embedding', 'non_embedding'}.

    `non_embedding` excludes the input embedding table only: an untied output
    head is a matmul and counts, as in Kaplan et al. (2020).
    """
    hd = head_dim(cfg)
    attention = cfg.dim * hd * (2 * cfg.num_heads + 2 * cfg.num_kv_heads)
    mlp = 3 * cfg.dim * cfg.mlp_dim
    qk_norm = 2 * hd if cfg.qk_norm else 0  # the query and key norm scales, shared by the heads
    per_layer = attention + mlp + 2 * cfg.dim + qk_norm  # and the two pre-norm scales
    embedding = cfg.vocab_size * cfg.dim
    head = 0 if cfg.tie_embeddings else cfg.dim * cfg.vocab_size
    non_embedding = cfg.num_layers * per_layer + cfg.dim + head
    return {"total": embedding + non_embedding, "embedding": embedding, "non_embedding": non_embedding}


def init_params(cfg: ml_collections.ConfigDict, rng: jax.Array) -> Any:
    """The boxed parameter tree (nn.LogicallyPartitioned leaves carry axis names)."""
    dummy = jnp.zeros((1, 1), jnp.int32)  # shapes do not depend on the length, nor on the attention kernel:
    reference = cfg.copy_and_resolve_references()  # a flash kernel's tiles need longer rows than this one
    reference.attention_impl = "xla"
    return Transformer(reference).init(rng, dummy, dummy, dummy)["params"]


def apply(cfg: ml_collections.ConfigDict, params: Any, tokens: jax.Array, segment_ids: jax.Array,
          positions: jax.Array) -> jax.Array:
    return Transformer(cfg).apply({"params": params}, tokens, segment_ids, positions)


def apply_for_loss(cfg: ml_collections.ConfigDict) -> Callable[..., jax.Array | Hidden]:
    """What the loss reads from the network: the logits, or with cfg.logits_chunk the Hidden states, whose
    logits the loss computes a chunk of positions at a time (objectives.chunked_sums)."""
    if not cfg.logits_chunk:
        return partial(apply, cfg)
    return lambda params, *inputs: Transformer(cfg, hidden=True).apply({"params": params}, *inputs)


def decode(cfg: ml_collections.ConfigDict, params: Any, cache: Any, tokens: jax.Array, positions: jax.Array,
           decoding: Decoding) -> tuple[jax.Array, Any]:
    """One cached decoding call: (logits [batch, length, vocab], the updated cache).

    The prompt call passes cache=None and creates the cache; each later call feeds the
    next tokens with the cache it got back (pretrain_jax/generate.py).
    """
    variables = {"params": params} if cache is None else {"params": params, "cache": cache}
    logits, updated = Transformer(cfg).apply(variables, tokens, None, positions, decoding, mutable=["cache"])
    return logits, updated["cache"]
