"""The training state pytree and its sharded initialization.

The state is created already sharded: shapes come from `jax.eval_shape`, and a
jitted init with `out_shardings` puts every parameter and optimizer moment
straight onto its devices, so a large model never materializes on one device.
"""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import flax.struct
import jax
import jax.numpy as jnp
import ml_collections
import optax
from jax.sharding import Mesh

from pretrain_jax import model, sharding


@flax.struct.dataclass
class TrainState:
    step: jax.Array  # optimizer steps taken (skipped non-finite updates included)
    params: Any
    opt_state: Any
    nonfinite_in_row: jax.Array  # consecutive updates skipped for a non-finite loss or gradient
    nonfinite_total: jax.Array


def _boxed_params(model_cfg: ml_collections.ConfigDict) -> Any:
    return jax.eval_shape(lambda: model.init_params(model_cfg, jax.random.key(0)))


def _new_state(model_cfg: ml_collections.ConfigDict, tx: optax.GradientTransformation, rng: jax.Array):
    params = nn.unbox(model.init_params(model_cfg, rng))
    zero = jnp.zeros((), jnp.int32)
    return TrainState(step=zero, params=params, opt_state=tx.init(params), nonfinite_in_row=zero,
                      nonfinite_total=zero)


def state_shardings(model_cfg: ml_collections.ConfigDict, tx: optax.GradientTransformation,
                    mesh: Mesh) -> TrainState:
    """NamedShardings for every leaf: parameters by logical axes, moments like their parameters."""
    param_sh = sharding.param_shardings(_boxed_params(model_cfg), mesh)
    abstract = jax.eval_shape(lambda: _new_state(model_cfg, tx, jax.random.key(0)))
    scalar = sharding.replicated(mesh)
    opt_sh = optax.tree_map_params(tx, lambda _, s: s, abstract.opt_state, param_sh,
                                   transform_non_params=lambda _: scalar)
    return TrainState(step=scalar, params=param_sh, opt_state=opt_sh, nonfinite_in_row=scalar,
                      nonfinite_total=scalar)


def abstract_state(model_cfg: ml_collections.ConfigDict, tx: optax.GradientTransformation,
                   shardings: TrainState) -> TrainState:
    """ShapeDtypeStructs carrying shardings: the restore target for a checkpoint."""
    abstract = jax.eval_shape(lambda: _new_state(model_cfg, tx, jax.random.key(0)))
    return jax.tree.map(lambda a, s: jax.ShapeDtypeStruct(a.shape, a.dtype, sharding=s), abstract, shardings)


def init_state(model_cfg: ml_collections.ConfigDict, tx: optax.GradientTransformation, shardings: TrainState,
               seed: int) -> TrainState:
    init = jax.jit(lambda rng: _new_state(model_cfg, tx, rng), out_shardings=shardings)
    return init(jax.random.key(seed))
