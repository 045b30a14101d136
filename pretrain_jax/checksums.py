"""Checksums of checkpointed arrays and data positions, so a damaged checkpoint is found when read.

Orbax (0.12.8) checks none of the bytes it reads back: its zarr3 layout keeps a crc32c of
each shard's index only (orbax/checkpoint/_src/serialization/tensorstore_utils.py), and
OCDBT and zstd none of the data, so 48 flipped bytes in a data file load as other values
(a head weight of 1.4e35 and NaNs in a hand test). A checkpoint therefore carries a
manifest: one checksum per array, computed at save from the values being saved, and one
of the data position; a reader recomputes them from what it read.

An array's checksum is computed where the array lives, under jit: for two seeds, the sum
mod 2^32 over its elements of fmix32(bits ^ fmix32(flat index ^ seed)), with fmix32 the
MurmurHash3 finalizer (a bijection of uint32). A sum does not depend on how the array is
split among devices or processes, so a checkpoint saved by 8 processes verifies when one
reads it back on another mesh, and nothing crosses to the host but 8 bytes an array.
Since fmix32 is a bijection, one changed element always changes both sums; several
changes cancel with probability about 2^-64.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

VERSION = 1
_SEEDS = (0x9E3779B9, 0x7F4A7C15)  # any two distinct constants: the golden ratio's and sqrt(2)'s bits


def path_name(path: tuple) -> str:
    """A leaf's path as orbax names it in a checkpoint ("opt_state.1.0.nu.layers.mlp.w_up"): the same for a
    TrainState and for the dict of its fields that a partial restore asks for."""
    parts = []
    for key in path:
        for attribute in ("name", "key", "idx"):  # GetAttrKey, DictKey / FlattenedIndexKey, SequenceKey
            if hasattr(key, attribute):
                parts.append(str(getattr(key, attribute)))
                break
    return ".".join(parts)


def _fmix32(h: jax.Array) -> jax.Array:
    """MurmurHash3's 32-bit finalizer: every input bit flips each output bit with probability about 1/2."""
    h = h ^ (h >> 16)
    h = h * jnp.uint32(0x85EBCA6B)
    h = h ^ (h >> 13)
    h = h * jnp.uint32(0xC2B2AE35)
    return h ^ (h >> 16)


def _words(x: jax.Array) -> jax.Array:
    """The bits of every element as uint32 (an 8-byte element as two words on a new last axis)."""
    if x.dtype == jnp.bool_:
        return x.astype(jnp.uint32)
    size = x.dtype.itemsize
    if size >= 4:
        return jax.lax.bitcast_convert_type(x, jnp.uint32)
    return jax.lax.bitcast_convert_type(x, jnp.dtype(f"uint{8 * size}")).astype(jnp.uint32)


def _flat_index(shape: tuple[int, ...]) -> jax.Array:
    """Each element's row-major index (mod 2^32), built from iotas so that XLA can shard it like its array."""
    index, stride = jnp.zeros(shape, jnp.uint32), 1
    for axis in reversed(range(len(shape))):
        index = index + jax.lax.broadcasted_iota(jnp.uint32, shape, axis) * jnp.uint32(stride % 2**32)
        stride *= shape[axis]
    return index


def _array_sums(x: jax.Array) -> jax.Array:
    """[2] uint32: the checksum of one array (see the module docstring)."""
    words = _words(x)
    index = _flat_index(words.shape)
    return jnp.stack([jnp.sum(_fmix32(words ^ _fmix32(index ^ jnp.uint32(seed))), dtype=jnp.uint32)
                      for seed in _SEEDS])


_tree_sums = jax.jit(lambda leaves: [_array_sums(x) for x in leaves])


def arrays(tree: Any) -> dict[str, str]:
    """{leaf path: checksum} of every array in `tree` (jax or numpy arrays, on any mesh): one jitted pass."""
    flat = jax.tree_util.tree_flatten_with_path(tree)[0]
    sums = _tree_sums([leaf for _, leaf in flat])
    return {path_name(path): "".join(f"{int(w):08x}" for w in np.asarray(s.addressable_data(0)))
            for (path, _), s in zip(flat, sums)}


def position(data_state: Any) -> str:
    """The checksum of a data position (JSON): SHA-256 of its canonical text."""
    text = json.dumps(data_state, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def manifest(tree: Any, data_state: Any = None) -> dict[str, Any]:
    """What a checkpoint records of `tree` (its saved arrays) and of the data position, if any."""
    out = {"version": VERSION, "arrays": arrays(tree)}
    if data_state is not None:
        out["data"] = position(data_state)
    return out


def mismatches(recorded: dict[str, Any], tree: Any = None, data_state: Any = None) -> list[str]:
    """The names of what `tree` and `data_state`, as read back, have other than `recorded`: damaged parts."""
    bad = []
    if tree is not None:
        want = recorded.get("arrays", {})
        bad += [name for name, got in arrays(tree).items() if want.get(name) != got]
    if data_state is not None and recorded.get("data") != position(data_state):
        bad.append("the data position")
    return bad
