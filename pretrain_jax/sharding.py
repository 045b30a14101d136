"""Device mesh and the one rule table from logical axis names to mesh axes.

The mesh has three axes:
  data    replicas that each see a slice of the batch (pure data parallelism)
  fsdp    the batch is sliced here too, and parameters, gradients and optimizer
          state are sharded over their embedding dimension (ZeRO-3 style)
  tensor  Megatron-style: attention heads and the MLP hidden dimension are split
          (column-parallel wq/wk/wv/w_gate/w_up, row-parallel wo/w_down)

An axis of size 1 is a no-op, so the same table gives pure data parallelism,
FSDP, tensor parallelism and FSDP x TP depending only on the mesh shape.

Over several TPU slices (multi-slice), each axis has a per-slice (ICI) size and a
cross-slice (DCN) size; the mesh axis is their product, slices outermost, so a
collective over the DCN part crosses the slow network and the rest stays on ICI.
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import flax.linen as nn
import jax
import ml_collections
import numpy as np
from jax.experimental import mesh_utils
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

from data_prep.errors import ConfigError
from pretrain_jax import axes

MESH_AXES = ("data", "fsdp", "tensor")
BATCH_AXES = ("data", "fsdp")  # the batch is split over both

# logical axis -> mesh axes. Names not listed are replicated.
RULES: tuple[tuple[str, Any], ...] = (
    (axes.BATCH, BATCH_AXES),
    (axes.EMBED, "fsdp"),
    (axes.VOCAB, "tensor"),
    (axes.HEADS, "tensor"),
    (axes.KV_HEADS, "tensor"),
    (axes.MLP, "tensor"),
    (axes.ACT_HEADS, "tensor"),
    (axes.ACT_MLP, "tensor"),
    (axes.ACT_VOCAB, "tensor"),
    (axes.HEAD_DIM, None),
    (axes.NORM, None),
    (axes.LAYERS, None),
    (axes.LENGTH, None),
    (axes.ACT_EMBED, None),
)


def _per_slice_sizes(sizes: list[int], num_devices: int, where: str) -> list[int]:
    """Fills the one -1 with the devices the other axes leave; checks the product is num_devices."""
    named = dict(zip(MESH_AXES, sizes))
    if sizes.count(-1) > 1:
        raise ConfigError(f"mesh {named}: at most one axis may be -1")
    if any(s == 0 or s < -1 for s in sizes):
        raise ConfigError(f"mesh {named}: sizes must be positive or -1")
    fixed = math.prod(s for s in sizes if s != -1)
    if -1 in sizes:
        if num_devices % fixed:
            raise ConfigError(f"mesh {named}: {num_devices} devices{where} are not a multiple "
                             f"of the fixed axes' product {fixed}")
        sizes[sizes.index(-1)] = num_devices // fixed
    if math.prod(sizes) != num_devices:
        raise ConfigError(f"mesh {named} has {math.prod(sizes)} devices but {num_devices} are available{where}; "
                         "the product of the mesh axes must equal the device count")
    return sizes


def hybrid_mesh_shape(mesh_cfg: ml_collections.ConfigDict,
                      num_devices: int) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """(per-slice ICI sizes, cross-slice DCN sizes) of the mesh axes.

    `mesh.dcn_<axis>` (all 1 for one slice) split an axis across slices; their product
    is the number of slices. `mesh.<axis>` are sizes within one slice, where one may
    be -1 and takes the devices of a slice the others leave.
    """
    dcn = [mesh_cfg[f"dcn_{name}"] for name in MESH_AXES]
    if any(s < 1 for s in dcn):
        raise ConfigError(f"mesh dcn sizes {dict(zip(MESH_AXES, dcn))} must be positive (-1 is for per-slice sizes)")
    slices = math.prod(dcn)
    if num_devices % slices:
        raise ConfigError(f"{num_devices} devices cannot form {slices} equal slices "
                         f"(mesh.dcn_* = {dict(zip(MESH_AXES, dcn))})")
    where = " per slice" if slices > 1 else ""
    ici = _per_slice_sizes([mesh_cfg[name] for name in MESH_AXES], num_devices // slices, where)
    return tuple(ici), tuple(dcn)


def mesh_shape(mesh_cfg: ml_collections.ConfigDict, num_devices: int) -> tuple[int, ...]:
    """Axis sizes of the whole mesh: per-slice size times number of slices along each axis."""
    ici, dcn = hybrid_mesh_shape(mesh_cfg, num_devices)
    return tuple(i * d for i, d in zip(ici, dcn))


def _granules(devices: Sequence[jax.Device]) -> tuple[str, int]:
    """What separates devices by the slow network, and how many groups: TPU slices, else processes
    (hosts). GPUs carry a slice_index too (one per host), but a GPU mesh needs no dcn_* to span hosts."""
    attr = "slice_index" if devices[0].platform == "tpu" and hasattr(devices[0], "slice_index") else "process_index"
    return attr, len({getattr(d, attr) for d in devices})


def make_mesh(mesh_cfg: ml_collections.ConfigDict, devices: Sequence[jax.Device] | None = None) -> Mesh:
    """The data x fsdp x tensor mesh; over several slices, each axis's DCN part is the outer one."""
    devices = list(jax.devices() if devices is None else devices)
    ici, dcn = hybrid_mesh_shape(mesh_cfg, len(devices))
    attr, granules = _granules(devices)
    if math.prod(dcn) > 1:
        if granules != math.prod(dcn):
            raise ConfigError(f"mesh.dcn_* = {dict(zip(MESH_AXES, dcn))} asks for {math.prod(dcn)} slices but the "
                             f"{len(devices)} devices have {granules} distinct {attr} values")
        device_array = mesh_utils.create_hybrid_device_mesh(ici, dcn, devices,
                                                           process_is_granule=attr == "process_index")
    elif attr == "slice_index" and granules > 1:
        raise ConfigError(f"the devices span {granules} TPU slices: set mesh.dcn_data (or dcn_fsdp) so that the "
                         f"mesh.dcn_* sizes multiply to {granules}")
    else:
        try:  # a physical-topology-aware layout on TPU and GPU
            device_array = mesh_utils.create_device_mesh(ici, devices)
        except (ValueError, AssertionError, NotImplementedError):
            device_array = np.asarray(devices).reshape(ici)
    # Auto axes: explicit ones (jax.make_mesh's default) reject a sharded embedding gather.
    return Mesh(device_array, MESH_AXES, axis_types=(jax.sharding.AxisType.Auto,) * len(MESH_AXES))


def logical_to_spec(names: Sequence[str | None], shape: Sequence[int], mesh: Mesh) -> P:
    """PartitionSpec for an array with these logical axis names.

    A mesh axis that does not divide the dimension (e.g. 2 kv heads on 4 tensor
    devices) is dropped, which replicates that dimension instead of failing.
    """
    rules = dict(RULES)
    spec = []
    for name, size in zip(names, shape):
        mesh_axes = rules.get(name)
        mesh_axes = (mesh_axes,) if isinstance(mesh_axes, str) else tuple(mesh_axes or ())
        kept = []
        for axis in mesh_axes:
            if size % (math.prod(mesh.shape[a] for a in kept) * mesh.shape[axis]) == 0:
                kept.append(axis)
        spec.append(tuple(kept) if len(kept) > 1 else (kept[0] if kept else None))
    return P(*spec)


def _is_boxed(x: Any) -> bool:
    return isinstance(x, nn.LogicallyPartitioned)


def param_shardings(boxed_params: Any, mesh: Mesh) -> Any:
    """NamedShardings for a boxed (abstract or concrete) parameter tree."""
    return jax.tree.map(lambda b: NamedSharding(mesh, logical_to_spec(b.names, b.value.shape, mesh)),
                        boxed_params, is_leaf=_is_boxed)


def batch_sharding(mesh: Mesh) -> NamedSharding:
    """[batch, length] arrays: rows split over data x fsdp, length whole."""
    return NamedSharding(mesh, P(BATCH_AXES))


def replicated(mesh: Mesh) -> NamedSharding:
    return NamedSharding(mesh, P())


def data_parallel_size(mesh: Mesh) -> int:
    return math.prod(mesh.shape[a] for a in BATCH_AXES)


def activation_rules() -> Any:
    """Context manager that lets nn.with_logical_constraint resolve names inside the model."""
    return nn.logical_axis_rules(RULES)
