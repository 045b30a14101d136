"""Pipeline parallelism over the `stage` mesh axis: the layer stack split into stages, microbatches flowing through.

The scanned layers' parameters are stored [layers, ...] with the layer axis sharded over
`stage`, so stage s holds a contiguous block of layers. A batch is cut into M microbatches;
at every iteration each stage runs its layers on the microbatch in its slot (a vmap over
stages that XLA partitions along the stage axis), then the slots shift by one stage (a
collective permute). GPipe (Huang et al. 2019) is one pass; with R repeats (MaxText's
num_pipeline_repeats, the circular schedule of Narayanan et al. 2021) the layers are cut into
S x R chunks, stage s runs chunks s, S + s, ..., and each microbatch goes round the stages R
times, which shrinks the bubble: (S - 1) / (R x M + S - 1) of the iterations idle a stage.
The backward pass is the autodiff of the loop. Outputs equal the unpipelined stack's.
"""

from __future__ import annotations

from typing import Any, Callable

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections

from pretrain_jax import axes


def bubble_fraction(stages: int, microbatches: int, repeats: int) -> float:
    """Share of a stage's iterations spent idle (the pipeline filling and draining)."""
    return (stages - 1) / (repeats * microbatches + stages - 1)


def _split(x: jax.Array, count: int) -> jax.Array:
    """[rows, ...] -> [count, rows / count, ...], microbatch m taking rows m, m + count, ...: each microbatch
    spread over every data-parallel device, as input_pipeline.microbatches does."""
    return jnp.swapaxes(x.reshape(-1, count, *x.shape[1:]), 0, 1)


def _merged(x: jax.Array) -> jax.Array:
    """The inverse of `_split`."""
    return jnp.swapaxes(x, 0, 1).reshape(-1, *x.shape[2:])


def run(cfg: ml_collections.ConfigDict, block: Callable[..., jax.Array], rotary: Callable[[jax.Array], Any],
        layer_params: Any, x: jax.Array, segment_ids: jax.Array, positions: jax.Array, stages: int) -> jax.Array:
    """The layer stack on x [batch, length, dim], pipelined over `stages` stages.

    block(params of one layer, x, segment_ids, positions, rotary) -> x runs one layer; rotary(positions)
    makes its rotary tables (per microbatch: each stage holds another one).
    """
    microbatches, repeats = cfg.pipeline_microbatches or stages, cfg.pipeline_repeats
    chunk = cfg.num_layers // (stages * repeats)
    # [layers, ...] -> [stages, repeats, chunk, ...]: chunk c = r x stages + s holds layers c x chunk, ...
    stage_params = jax.tree.map(
        lambda p: jnp.swapaxes(p.reshape(repeats, stages, chunk, *p.shape[1:]), 0, 1), layer_params)
    xs, segs, poss = (_split(a, microbatches) for a in (x, segment_ids, positions))

    def stage(params, h, seg, pos, repeat):
        """One stage's layers of `repeat` on its microbatch h [rows, length, dim]."""
        tables = rotary(pos)
        chunk_params = jax.tree.map(lambda p: p[repeat], params)

        def layer(h, p):
            return block(p, h, seg, pos, tables), None

        return jax.lax.scan(layer, h, chunk_params)[0]

    run_stages = jax.vmap(stage, spmd_axis_name="stage")
    index = jnp.arange(stages)

    def iteration(carry, t):
        state, buffer = carry
        step = t - index  # how far each stage's microbatch has gone: repeat x M + microbatch
        valid = (step >= 0) & (step < repeats * microbatches)
        m, r = jnp.clip(step, 0) % microbatches, jnp.clip(step // microbatches, 0, repeats - 1)
        first = jnp.where(t < microbatches, xs[t % microbatches], buffer[t % microbatches])
        state = nn.with_logical_constraint(state.at[0].set(first),
                                           (axes.STAGES, axes.BATCH, axes.LENGTH, axes.ACT_EMBED))
        out = run_stages(stage_params, state, segs[m], poss[m], r)
        last = stages - 1
        done = valid[last]
        buffer = buffer.at[m[last]].set(jnp.where(done, out[last], buffer[m[last]]))
        return (jnp.roll(out, 1, axis=0), buffer), None

    state = jnp.zeros((stages, *xs.shape[1:]), x.dtype)
    iterations = repeats * microbatches + stages - 1
    (_, buffer), _ = jax.lax.scan(iteration, (state, jnp.zeros_like(xs)), jnp.arange(iterations))
    return _merged(buffer)

