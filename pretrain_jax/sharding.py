"""Device mesh and the one rule table from logical axis names to mesh axes.

The mesh has five axes:
  data     replicas that each see a slice of the batch (pure data parallelism)
  stage    pipeline parallelism: the scanned layers split into stages, each device
           holding its stage's layers, microbatches passed along (pretrain_jax/pipeline.py)
  fsdp     the batch is sliced here too, and parameters, gradients and optimizer
           state are sharded over their embedding dimension (ZeRO-3 style)
  context  the sequence is split (context parallelism, for long rows): each device
           holds an early and a late chunk of every row (`load_balanced_order`, so
           causal attention costs each the same), keys and values are all-gathered
           for attention (Llama 3's method); parameters are replicated over it
  tensor   Megatron-style: attention heads and the MLP hidden dimension are split
           (column-parallel wq/wk/wv/w_gate/w_up, row-parallel wo/w_down)

An axis of size 1 is a no-op, so the same table gives pure data parallelism,
FSDP, context and tensor parallelism and their products depending only on the mesh shape.

Over several TPU slices (multi-slice), each axis has a per-slice (ICI) size and a
cross-slice (DCN) size; the mesh axis is their product, slices outermost, so a
collective over the DCN part crosses the slow network and the rest stays on ICI.

A mesh axis that does not divide a dimension (2 kv heads on a tensor axis of 4) is
dropped from that dimension's sharding, which replicates it. `replication_report` says
which arrays that happened to and what it costs per device; runs refuse to start past
`config.mesh.max_replicated_fraction` (MaxText's assert_params_sufficiently_sharded).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from typing import Any, Sequence

import flax.linen as nn
import jax
import ml_collections
import numpy as np
from jax.experimental import mesh_utils
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

from pretrain_common.errors import ConfigError
from pretrain_jax import axes

MESH_AXES = ("data", "stage", "fsdp", "context", "tensor")
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
    (axes.ACT_KV_HEADS, "tensor"),
    (axes.ACT_MLP, "tensor"),
    (axes.ACT_VOCAB, "tensor"),
    (axes.HEAD_DIM, None),
    (axes.NORM, None),
    (axes.LAYERS, "stage"),
    (axes.STAGES, "stage"),
    (axes.LENGTH, "context"),
    (axes.KV_LENGTH, None),  # keys and values of all positions: gathered over the context axis
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


def _placement(names: Sequence[str | None], shape: Sequence[int],
               mesh_shape: Mapping[str, int]) -> list[tuple[tuple[str, ...], tuple[str, ...]]]:
    """Per dimension: (the mesh axes it is split over, the mesh axes the rules ask for but that were
    dropped because they do not divide it)."""
    rules = dict(RULES)
    placement = []
    for name, size in zip(names, shape):
        asked = rules.get(name)
        asked = (asked,) if isinstance(asked, str) else tuple(asked or ())
        kept: list[str] = []
        for axis in asked:
            if size % (math.prod(mesh_shape[a] for a in kept) * mesh_shape[axis]) == 0:
                kept.append(axis)
        placement.append((tuple(kept), tuple(a for a in asked if a not in kept)))
    return placement


def logical_to_spec(names: Sequence[str | None], shape: Sequence[int], mesh: Mesh) -> P:
    """PartitionSpec for an array with these logical axis names.

    A mesh axis that does not divide the dimension (e.g. 2 kv heads on 4 tensor
    devices) is dropped, which replicates that dimension instead of failing;
    `replication_report` accounts for it.
    """
    return P(*(kept if len(kept) > 1 else (kept[0] if kept else None)
               for kept, _ in _placement(names, shape, mesh.shape)))


def _is_boxed(x: Any) -> bool:
    return isinstance(x, nn.LogicallyPartitioned)


@dataclasses.dataclass(frozen=True)
class Replicated:
    """An array with dimensions the rules shard but the mesh leaves whole."""

    path: str  # where it is in the tree, e.g. params/layers/attention/wk
    shape: tuple[int, ...]
    dims: tuple[tuple[str, int, tuple[str, ...]], ...]  # (logical name, size, mesh axes dropped) per such dimension
    extra_bytes: float  # per device, beyond what the rules ask

    def line(self, mesh_shape: Mapping[str, int]) -> str:
        dims = ", ".join(f"{name}={size} not split over " + " x ".join(f"{a}={mesh_shape[a]}" for a in axes)
                         for name, size, axes in self.dims)
        return f"{self.path} {list(self.shape)}: {dims}: +{_mib(self.extra_bytes)} per device"


@dataclasses.dataclass(frozen=True)
class ReplicationReport:
    """What the rules ask to shard but the mesh replicates: the arrays, and the bytes per device."""

    arrays: tuple[Replicated, ...]
    asked_bytes: float  # per device, the whole tree as the rules ask
    mesh_shape: Mapping[str, int]

    @property
    def extra_bytes(self) -> float:
        return sum(a.extra_bytes for a in self.arrays)

    @property
    def fraction(self) -> float:
        """The replicated bytes per device beyond what the rules ask, as a fraction of what they ask."""
        return self.extra_bytes / self.asked_bytes if self.asked_bytes else 0.0

    def lines(self) -> list[str]:
        """The report as printed at start; none when every array is sharded as the rules ask."""
        if not self.arrays:
            return []
        return [f"sharding: {len(self.arrays)} arrays stay whole along dimensions the rules shard (the mesh axis "
                f"does not divide them): +{_mib(self.extra_bytes)} per device, {100 * self.fraction:.1f}% over "
                f"the {_mib(self.asked_bytes)} the rules ask"] + ["  " + a.line(self.mesh_shape) for a in self.arrays]

    def check(self, max_fraction: float) -> None:
        """ConfigError when the replicated bytes exceed `max_fraction` of what the rules ask."""
        if self.fraction > max_fraction:
            worst = max(self.arrays, key=lambda a: a.extra_bytes)
            raise ConfigError(
                f"mesh.max_replicated_fraction={max_fraction}: the mesh leaves {len(self.arrays)} arrays whole along "
                f"dimensions the rules shard, +{_mib(self.extra_bytes)} per device ({100 * self.fraction:.0f}% over "
                f"the {_mib(self.asked_bytes)} the rules ask; most: {worst.line(self.mesh_shape)}): choose mesh "
                "sizes that divide these dimensions, or raise mesh.max_replicated_fraction")


def _mib(num_bytes: float) -> str:
    return f"{num_bytes / 2**20:.3g} MiB"


def _nbytes(x: Any) -> int:
    return math.prod(x.shape) * np.dtype(x.dtype).itemsize


def replication_report(boxed: Any, mesh: Mesh | jax.sharding.AbstractMesh) -> ReplicationReport:
    """Which arrays of a tree keep whole a dimension the rules shard (a mesh axis that does not divide
    it is dropped, `logical_to_spec`), and the bytes that costs per device.

    `boxed`: a tree whose sharded leaves are nn.LogicallyPartitioned, abstract or concrete (the
    parameters from `jax.eval_shape` of the init, or train_state.boxed_state's whole state);
    other leaves count as replicated by design. `mesh` needs only its axis sizes (an AbstractMesh will do).
    """
    mesh_shape = dict(mesh.shape)
    arrays, asked_bytes = [], 0.0
    for path, leaf in jax.tree_util.tree_flatten_with_path(boxed, is_leaf=_is_boxed)[0]:
        if not _is_boxed(leaf):
            asked_bytes += _nbytes(leaf)
            continue
        placement = _placement(leaf.names, leaf.value.shape, mesh_shape)
        split = math.prod(mesh_shape[a] for kept, _ in placement for a in kept)
        asked = split * math.prod(mesh_shape[a] for _, dropped in placement for a in dropped)
        nbytes = _nbytes(leaf.value)
        asked_bytes += nbytes / asked
        if asked > split:
            dims = tuple((name, size, dropped)
                         for name, size, (_, dropped) in zip(leaf.names, leaf.value.shape, placement) if dropped)
            arrays.append(Replicated(jax.tree_util.keystr(path, simple=True, separator="/"), tuple(leaf.value.shape),
                                     dims, nbytes / split - nbytes / asked))
    return ReplicationReport(tuple(arrays), asked_bytes, mesh_shape)


def param_shardings(boxed_params: Any, mesh: Mesh) -> Any:
    """NamedShardings for a boxed (abstract or concrete) parameter tree."""
    return jax.tree.map(lambda b: NamedSharding(mesh, logical_to_spec(b.names, b.value.shape, mesh)),
                        boxed_params, is_leaf=_is_boxed)


def axis_size(name: str) -> int:
    """The size of a mesh axis of the mesh being traced for (1 outside a mesh)."""
    mesh = jax.sharding.get_abstract_mesh()
    return 1 if mesh.empty else dict(mesh.shape).get(name, 1)


def context_size() -> int:
    return axis_size("context")


def load_balanced_order(length: int, parts: int) -> np.ndarray:
    """Positions in the order that gives each of `parts` devices an early and a late chunk of a row.

    The row is cut into 2 x parts chunks; device i holds chunks i and 2 x parts - 1 - i, so under
    a causal mask every device attends over the same number of keys (Llama 3's context parallelism).
    """
    chunks = np.arange(length).reshape(2 * parts, -1)
    return np.concatenate([np.concatenate([chunks[i], chunks[2 * parts - 1 - i]]) for i in range(parts)])


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
