"""Checksums of checkpointed arrays: independent of the layout, changed by any one changed element."""

import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.sharding import NamedSharding, PartitionSpec

from pretrain_common import records
from pretrain_jax import checkpointing, checksums, train_data, train_state

DTYPES = [jnp.float32, jnp.bfloat16, jnp.int32, jnp.uint8, jnp.bool_]


def an_array(dtype, shape=(16, 24)):
    values = np.random.default_rng(0).normal(size=shape) * 100
    return np.asarray(values > 0 if dtype == jnp.bool_ else jnp.asarray(values).astype(dtype))


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: jnp.dtype(d).name)
def test_the_checksum_is_the_same_on_the_host_on_one_device_and_sharded_over_eight(dtype):
    host = an_array(dtype)
    mesh = jax.make_mesh((2, 4), ("a", "b"), devices=jax.devices()[:8])
    layouts = {"numpy": host, "one device": jax.device_put(host, jax.devices()[0]),
               "rows over 8": jax.device_put(host, NamedSharding(mesh, PartitionSpec(("a", "b"), None))),
               "2 x 4 blocks": jax.device_put(host, NamedSharding(mesh, PartitionSpec("a", "b"))),
               "replicated": jax.device_put(host, NamedSharding(mesh, PartitionSpec()))}
    sums = {name: checksums.arrays({"x": x})["x"] for name, x in layouts.items()}
    assert len(set(sums.values())) == 1, sums
    assert len(sums["numpy"]) == 16


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: jnp.dtype(d).name)
def test_any_one_changed_element_changes_the_checksum(dtype):
    x = an_array(dtype)
    reference = checksums.arrays([x])["0"]
    words = x.view(np.uint8).reshape(x.shape + (-1,)) if x.dtype != np.bool_ else None
    for index in [(0, 0), (7, 13), (15, 23)]:
        changed = x.copy()
        if words is None:
            changed[index] = ~changed[index]
        else:
            changed.view(np.uint8).reshape(words.shape)[index + (0,)] ^= 1  # one bit of the element
        assert checksums.arrays([changed])["0"] != reference, index
    swapped = x.copy()
    swapped[[0, 1]] = swapped[[1, 0]]  # the same values in other places
    assert (checksums.arrays([swapped])["0"] != reference) == (not np.array_equal(swapped, x))


def test_leaves_are_named_as_orbax_names_them_in_a_state_and_in_a_part_of_it(tiny_config):
    state = train_state.setup(tiny_config, jax.devices()[:1]).abstract
    names = [checksums.path_name(p) for p, _ in jax.tree_util.tree_flatten_with_path(state)[0]]
    assert "params.layers.mlp.w_up" in names and "opt_state.1.0.nu.layers.mlp.w_up" in names
    part = [checksums.path_name(p) for p, _ in jax.tree_util.tree_flatten_with_path({"params": state.params})[0]]
    assert set(part) == {n for n in names if n.startswith("params.")}


def test_a_checkpoint_saved_sharded_over_eight_devices_verifies_read_on_one(tiny_config, tmp_path, capsys):
    tiny_config.mesh.update(data=1, fsdp=8)
    setup = train_state.setup(tiny_config, jax.devices()[:8])
    data = train_data.TrainData(tiny_config, records.read_metadata(tiny_config.data.dir))
    state = setup.init(tiny_config)
    ckpt = checkpointing.Checkpointer(str(tmp_path), every=0, keep=None)
    ckpt.save(state, data, force=True)
    ckpt.close()
    assert os.path.isdir(tmp_path / "0" / checkpointing.MANIFEST)
    tiny_config.mesh.update(data=-1, fsdp=1)
    reader = checkpointing.Checkpointer(str(tmp_path), every=0, keep=None)
    one = train_state.setup(tiny_config, jax.devices()[:1])
    restored = reader.restore(one.abstract, train_data.TrainData(tiny_config, records.read_metadata(
        tiny_config.data.dir)))
    reader.close()
    jax.tree.map(lambda a, b: np.testing.assert_array_equal(np.asarray(a), np.asarray(b)), restored, state)
    assert "WARNING" not in capsys.readouterr().out
