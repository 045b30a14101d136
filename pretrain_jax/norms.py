"""Norms of a parameter-shaped tree by group: the embedding, each layer's attention and MLP, the head.

A loss spike usually starts in one place (an exploding output head, one layer's
attention logits: Wortsman et al. 2023, "Small-scale proxies for large-scale
Transformer training instabilities"); per-group gradient, parameter and update
norms in TensorBoard show where. A layer's norm scales count with the block they
precede; the final norm counts with the head.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import ml_collections

EMBEDDING, HEAD, ATTENTION, MLP = "embedding", "head", "attention", "mlp"


def _group(names: list[str]) -> str:
    """The group of a parameter path: the name under a layer ("attention", "mlp_norm", ...) or at the top."""
    if names[0].startswith("layers"):
        return ATTENTION if names[1].startswith(ATTENTION) else MLP
    return EMBEDDING if names[0] == EMBEDDING else HEAD


def squared_norms(tree: Any, model_cfg: ml_collections.ConfigDict) -> dict[str, jax.Array]:
    """{"embedding": (), "head": (), "attention": [layers], "mlp": [layers]} sums of squares, in float32."""
    sums = {EMBEDDING: jnp.zeros(()), HEAD: jnp.zeros(()),
            ATTENTION: jnp.zeros((model_cfg.num_layers,)), MLP: jnp.zeros((model_cfg.num_layers,))}
    for path, leaf in jax.tree_util.tree_flatten_with_path(tree)[0]:
        names = [str(getattr(k, "key", k)) for k in path]
        group = _group(names)
        square = jnp.square(leaf.astype(jnp.float32))
        if group in (EMBEDDING, HEAD):
            sums[group] += jnp.sum(square)
        elif names[0] == "layers":  # scanned: layers stacked on axis 0
            sums[group] += jnp.sum(square, axis=tuple(range(1, square.ndim)))
        else:  # layers_<i>
            sums[group] = sums[group].at[int(names[0].removeprefix("layers_"))].add(jnp.sum(square))
    return sums


def global_norm(squares: dict[str, jax.Array]) -> jax.Array:
    """The norm of the whole tree from its groups' sums of squares."""
    return jnp.sqrt(sum(jnp.sum(s) for s in squares.values()))


def scalars(kind: str, squares: dict[str, Any]) -> dict[str, float]:
    """TensorBoard scalars norms/<kind>/{embedding, head, layer_NN/attention, layer_NN/mlp} from host sums."""
    out = {f"norms/{kind}/{g}": float(squares[g]) ** 0.5 for g in (EMBEDDING, HEAD)}
    for group in (ATTENTION, MLP):
        for i, value in enumerate(squares[group]):
            out[f"norms/{kind}/layer_{i:02d}/{group}"] = float(value) ** 0.5
    return out
