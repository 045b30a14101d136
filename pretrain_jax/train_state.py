"""The training state pytree, and the one setup every user of it builds: mesh -> optimizer -> shardings.

The state is created already sharded: shapes come from `jax.eval_shape`, and a
jitted init with `out_shardings` puts every parameter and optimizer moment
straight onto its devices, so a large model never materializes on one device.
`setup` is shared by training, ahead-of-time compilation, checkpoint readers, HF
import and the benchmarks, so all of them see the same state with the same shardings.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Sequence

import flax.linen as nn
import flax.struct
import jax
import jax.numpy as jnp
import ml_collections
import optax
from jax.sharding import Mesh

from pretrain_jax import model, optimizer, sharding


@flax.struct.dataclass
class SpikeHistory:
    """The losses and gradient norms of the last updates, a ring buffer (spike detection, pretrain_jax/spikes.py)."""

    losses: jax.Array  # [config.spike.window] float32
    grad_norms: jax.Array  # [config.spike.window] float32
    count: jax.Array  # entries written so far (the next goes to count % window)


@flax.struct.dataclass
class TrainState:
    step: jax.Array  # optimizer steps taken (skipped updates included)
    params: Any
    opt_state: Any
    nonfinite_in_row: jax.Array  # consecutive updates skipped for a non-finite loss or gradient
    nonfinite_total: jax.Array
    spikes_total: jax.Array  # updates skipped as loss or gradient-norm spikes
    rollbacks: jax.Array  # restarts from an earlier checkpoint after a spike (config.spike.rollback_batches)
    history: SpikeHistory
    ema_params: Any = None  # exponential moving average of params when config.ema_decay > 0, else None

    @property
    def skipped_total(self) -> jax.Array:
        """Updates that did not happen: the optimizer's own step count is step - skipped_total."""
        return self.nonfinite_total + self.spikes_total


def _boxed_params(model_cfg: ml_collections.ConfigDict) -> Any:
    return jax.eval_shape(lambda: model.init_params(model_cfg, jax.random.key(0)))


def new_state(config: ml_collections.ConfigDict, tx: optax.GradientTransformation, params: Any,
              opt_state: Any = None) -> TrainState:
    """A state at step 0 around `params` (fresh optimizer state unless `opt_state` is given)."""
    zero = jnp.zeros((), jnp.int32)
    window = jnp.zeros((config.spike.window,), jnp.float32)
    return TrainState(step=zero, params=params, opt_state=tx.init(params) if opt_state is None else opt_state,
                      nonfinite_in_row=zero, nonfinite_total=zero, spikes_total=zero, rollbacks=zero,
                      history=SpikeHistory(losses=window, grad_norms=window, count=zero),
                      ema_params=params if config.ema_decay > 0 else None)


def _initial_state(config: ml_collections.ConfigDict, tx: optax.GradientTransformation, rng: jax.Array):
    return new_state(config, tx, nn.unbox(model.init_params(config.model, rng)))


@dataclasses.dataclass(frozen=True)
class Setup:
    """What a run is built on: its mesh, optimizer, the state's shardings and its abstract shape."""

    mesh: Mesh
    tx: optax.GradientTransformation
    shardings: TrainState  # NamedShardings: parameters by logical axes, moments and EMA like their parameters
    abstract: TrainState  # ShapeDtypeStructs carrying the shardings: the restore target of a checkpoint

    def init(self, config: ml_collections.ConfigDict) -> TrainState:
        """A freshly initialized state (config.seed), created sharded."""
        init = jax.jit(lambda rng: _initial_state(config, self.tx, rng), out_shardings=self.shardings)
        return init(jax.random.key(config.seed))


def setup(config: ml_collections.ConfigDict, mesh: Mesh | Sequence[jax.Device] | None = None) -> Setup:
    """The mesh (from config.mesh over `mesh` when devices are given), optimizer and state layout of a run."""
    if not isinstance(mesh, Mesh):
        mesh = sharding.make_mesh(config.mesh, mesh)
    tx = optimizer.make_optimizer(config.optimizer, config.num_train_steps)
    param_sh = sharding.param_shardings(_boxed_params(config.model), mesh)
    abstract = jax.eval_shape(lambda: _initial_state(config, tx, jax.random.key(0)))
    scalar = sharding.replicated(mesh)
    shardings = jax.tree.map(lambda _: scalar, abstract)
    shardings = shardings.replace(
        params=param_sh, ema_params=param_sh if config.ema_decay > 0 else None,
        opt_state=optax.tree_map_params(tx, lambda _, s: s, abstract.opt_state, param_sh,
                                        transform_non_params=lambda _: scalar))
    placed = jax.tree.map(lambda a, s: jax.ShapeDtypeStruct(a.shape, a.dtype, sharding=s), abstract, shardings)
    return Setup(mesh=mesh, tx=tx, shardings=shardings, abstract=placed)


def boxed_state(config: ml_collections.ConfigDict, setup: Setup) -> TrainState:
    """The abstract state with every parameter-shaped leaf (parameters, optimizer moments, EMA) boxed
    in its parameter's logical axis names, as `setup` shards them: what sharding.replication_report reads."""
    logical = nn.get_partition_spec(_boxed_params(config.model))

    def box(leaf: Any, names: Any) -> nn.LogicallyPartitioned:
        return nn.LogicallyPartitioned(leaf, tuple(names))

    state = setup.abstract
    return state.replace(
        params=jax.tree.map(box, state.params, logical),
        opt_state=optax.tree_map_params(setup.tx, box, state.opt_state, logical),
        ema_params=None if state.ema_params is None else jax.tree.map(box, state.ema_params, logical))


def replication_report(config: ml_collections.ConfigDict, setup: Setup) -> sharding.ReplicationReport:
    """What the state keeps whole that the rules shard, per device; a ConfigError past
    config.mesh.max_replicated_fraction. Training and `pretrain_jax.aot` print it at start."""
    report = sharding.replication_report(boxed_state(config, setup), setup.mesh)
    report.check(config.mesh.max_replicated_fraction)
    return report
