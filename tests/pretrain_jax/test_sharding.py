"""Meshes, the logical-axis rule table, what a mesh replicates against it, and sharded training equal to one
device."""

import math
import types

import jax
import numpy as np
import pytest

from configs import base, demo, llama_7b, llama_13b, llama_33b, llama_65b, tiny
from pretrain_common import records
from pretrain_common.errors import ConfigError
from pretrain_jax import axes, input_pipeline, model, sharding, train, train_data, train_state, train_step


def mesh_config(data, fsdp, tensor, context=1):
    cfg = base.get_config().mesh
    cfg.update(data=data, fsdp=fsdp, tensor=tensor, context=context)
    return cfg


def whole(sizes):
    """(data, fsdp, tensor) -> the mesh's (data, stage, fsdp, context, tensor), stage and context 1."""
    return (sizes[0], 1, sizes[1], 1, sizes[2])


@pytest.mark.parametrize("sizes, devices, expected", [
    ((-1, 1, 1), 8, (8, 1, 1)), ((1, -1, 2), 8, (1, 4, 2)), ((2, 2, 2), 8, (2, 2, 2)), ((-1, 1, 1), 1, (1, 1, 1)),
])
def test_minus_one_fills_the_remaining_devices(sizes, devices, expected):
    assert sharding.mesh_shape(mesh_config(*sizes), devices) == whole(expected)


@pytest.mark.parametrize("sizes, message", [
    ((2, 2, 1), "has 4 devices but 8 are available"),
    ((-1, 3, 1), "not a multiple"),
    ((-1, -1, 1), "at most one axis may be -1"),
])
def test_a_mesh_that_does_not_match_the_devices_is_refused(sizes, message):
    with pytest.raises(ValueError, match=message):
        sharding.mesh_shape(mesh_config(*sizes), 8)


def hybrid_config(sizes, dcn):
    cfg = mesh_config(*sizes)
    cfg.update(dcn_data=dcn[0], dcn_stage=1, dcn_fsdp=dcn[1], dcn_context=1, dcn_tensor=dcn[2])
    return cfg


@pytest.mark.parametrize("sizes, dcn, ici, product", [
    ((1, -1, 1), (2, 1, 1), (1, 4, 1), (2, 4, 1)),  # FSDP within each slice, data parallel across two
    ((-1, 2, 1), (1, 2, 1), (2, 2, 1), (2, 4, 1)),
    ((1, 1, -1), (2, 2, 1), (1, 1, 2), (2, 2, 2)),
])
def test_minus_one_fills_each_slice_and_slices_multiply_the_axes(sizes, dcn, ici, product):
    assert sharding.hybrid_mesh_shape(hybrid_config(sizes, dcn), 8) == (whole(ici), whole(dcn))
    assert sharding.mesh_shape(hybrid_config(sizes, dcn), 8) == whole(product)


@pytest.mark.parametrize("sizes, dcn, message", [
    ((-1, 1, 1), (3, 1, 1), "cannot form 3 equal slices"),
    ((-1, 1, 1), (0, 1, 1), "must be positive"),
    ((2, 4, 1), (2, 1, 1), "has 8 devices but 4 are available per slice"),
])
def test_slice_sizes_that_do_not_match_the_devices_are_refused(sizes, dcn, message):
    with pytest.raises(ValueError, match=message):
        sharding.mesh_shape(hybrid_config(sizes, dcn), 8)


def test_devices_of_one_host_cannot_be_split_across_slices():
    """Fake CPU devices have no slice_index and share one process: a DCN axis has nothing to span."""
    with pytest.raises(ValueError, match="asks for 2 slices but the 8 devices have 1 distinct process_index"):
        sharding.make_mesh(hybrid_config((1, -1, 1), (2, 1, 1)))


def test_rules_shard_weights_over_fsdp_and_heads_over_tensor():
    mesh = sharding.make_mesh(mesh_config(2, 2, 2))
    spec = sharding.logical_to_spec((axes.EMBED, axes.HEADS, axes.HEAD_DIM), (64, 4, 16), mesh)
    assert spec == jax.sharding.PartitionSpec("fsdp", "tensor", None)
    assert sharding.logical_to_spec((axes.BATCH, axes.LENGTH), (8, 64), mesh) == \
        jax.sharding.PartitionSpec(("data", "fsdp"), "context")  # a context axis of 1 here


def test_an_axis_that_does_not_divide_the_dimension_is_replicated():
    mesh = sharding.make_mesh(mesh_config(1, 1, 8))
    spec = sharding.logical_to_spec((axes.KV_HEADS, axes.HEADS), (2, 8), mesh)
    assert spec == jax.sharding.PartitionSpec(None, "tensor")  # 2 kv heads on 8 devices stay whole


def bytes_on_device_0(state):
    device = jax.devices()[0]
    return sum(s.data.nbytes for x in jax.tree.leaves(state) for s in x.addressable_shards if s.device == device)


@pytest.mark.parametrize("mesh, replicated", [((1, 1, 8), ["wk", "wv"]), ((1, 2, 4), [])])
def test_what_the_mesh_leaves_whole_is_reported_with_the_bytes_it_costs_per_device(tiny_config, mesh, replicated):
    """tiny's 4 kv heads on tensor=8 stay whole: wk, wv and both their Adam moments, 7/8 of each on every device."""
    tiny_config.mesh.update(data=mesh[0], fsdp=mesh[1], tensor=mesh[2], max_replicated_fraction=1.0)
    setup = train_state.setup(tiny_config, jax.devices())
    report = train_state.replication_report(tiny_config, setup)
    assert [a.path for a in report.arrays] == [f"{tree}/layers/attention/{w}" for tree in
                                               ("params", "opt_state/1/0/mu", "opt_state/1/0/nu") for w in replicated]
    wk_bytes = 2 * 64 * 4 * 8 * 4  # [layers, dim, kv_heads, head_dim] float32
    assert report.extra_bytes == len(report.arrays) * wk_bytes * 7 / 8
    assert bytes_on_device_0(setup.init(tiny_config)) == report.asked_bytes + report.extra_bytes
    if replicated:
        assert 0.3 < report.fraction < 0.5
        lines = report.lines()
        assert lines[0].startswith("sharding: 6 arrays stay whole along dimensions the rules shard")
        assert lines[1] == ("  params/layers/attention/wk [2, 64, 4, 8]: kv_heads=4 not split over tensor=8: "
                            "+0.0137 MiB per device")
    else:
        assert report.lines() == [] and report.fraction == 0


def test_replication_past_mesh_max_replicated_fraction_stops_training_in_one_line(tiny_config, tmp_path):
    tiny_config.mesh.update(data=1, fsdp=1, tensor=8)  # 40% over what the rules ask; the default allows 25%
    with pytest.raises(ConfigError, match=r"^mesh.max_replicated_fraction=0.25: the mesh leaves 6 arrays whole .* "
                                          r"\(40% over .*kv_heads=4 not split over tensor=8.*: choose mesh sizes "
                                          r"that divide these dimensions, or raise mesh.max_replicated_fraction$"):
        train.train(tiny_config, str(tmp_path), jax.devices())


@pytest.mark.parametrize("module", [base, tiny, demo, llama_7b, llama_13b, llama_33b, llama_65b])
def test_the_shipped_configs_shard_every_parameter_as_the_rules_ask(module):
    """On the device counts test_config validates them with (no devices needed: only the mesh's sizes count)."""
    config = module.get_config()
    sizes = sharding.mesh_shape(config.mesh, math.gcd(config.global_batch_size, 256))
    boxed = jax.eval_shape(lambda: model.init_params(config.model, jax.random.key(0)))
    report = sharding.replication_report(boxed, jax.sharding.AbstractMesh(sizes, sharding.MESH_AXES))
    assert report.arrays == () and report.asked_bytes > 0


def losses_of(config, devices, batches):
    setup = train_state.setup(config, devices)
    mesh, state, step = setup.mesh, setup.init(config), train_step.jit_train_step(config, setup)
    losses = []
    with jax.set_mesh(mesh):
        for batch in batches:
            state, metrics = step(state, input_pipeline.global_batch(batch, mesh))
            losses.append(float(metrics["loss"]))
    return np.array(losses)


@pytest.fixture(scope="module")
def five_batches(tiny_dataset):
    from configs import tiny
    config = tiny.get_config()
    config.data.dir = tiny_dataset
    iterator = train_data.TrainData(config, records.read_metadata(tiny_dataset))
    return [next(iterator) for _ in range(5)]


@pytest.fixture(scope="module")
def one_device_losses(tiny_dataset, five_batches):
    from configs import tiny
    losses = losses_of(tiny.get_config(), jax.devices()[:1], five_batches)
    assert losses[-1] < losses[0]  # it trains
    return losses


@pytest.mark.parametrize("mesh", [(8, 1, 1, 1), (1, 8, 1, 1), (1, 1, 8, 1), (2, 2, 2, 1), (1, 4, 2, 1),
                                  (4, 1, 1, 2), (2, 1, 1, 4), (1, 1, 1, 8), (1, 4, 1, 2), (2, 1, 2, 2)])
def test_five_sharded_steps_give_the_losses_of_one_device(tiny_config, five_batches, one_device_losses, mesh):
    """(data, fsdp, tensor, context) on 8 devices; context splits rows of several packed documents."""
    tiny_config.mesh.update(data=mesh[0], fsdp=mesh[1], tensor=mesh[2], context=mesh[3])
    sharded = losses_of(tiny_config, jax.devices(), five_batches)
    np.testing.assert_allclose(sharded, one_device_losses, rtol=1e-5)


def test_gradient_accumulation_gives_the_full_batch_update(tiny_config, five_batches, one_device_losses):
    """Two microbatches on a 2-way data-parallel mesh train exactly like one full batch on one device."""
    tiny_config.microbatches = 2
    accumulated = losses_of(tiny_config, jax.devices()[:2], five_batches)
    np.testing.assert_allclose(accumulated, one_device_losses, rtol=1e-5)


@pytest.fixture(scope="module")
def four_layer_losses(tiny_dataset, five_batches):
    from configs import tiny
    config = tiny.get_config()
    config.model.num_layers = 4
    return losses_of(config, jax.devices()[:1], five_batches)


@pytest.mark.parametrize("mesh, repeats", [
    (dict(data=4, stage=2), 1), (dict(data=2, stage=4), 1), (dict(data=1, stage=2, fsdp=2, tensor=2), 1),
    (dict(data=4, stage=2), 2),  # circular: each microbatch twice round the 2 stages, 4 chunks of 1 layer
])
def test_pipelined_steps_give_the_losses_of_one_device(tiny_config, five_batches, four_layer_losses, mesh, repeats):
    """4 layers in stages on 8 devices, each batch in as many microbatches as stages, against one device."""
    tiny_config.model.update(num_layers=4, pipeline_repeats=repeats)
    tiny_config.mesh.update(mesh)
    pipelined = losses_of(tiny_config, jax.devices(), five_batches)
    np.testing.assert_allclose(pipelined, four_layer_losses, rtol=1e-5)


def state_bytes_per_device(config, devices):
    state = train_state.setup(config, devices).init(config)
    leaves = jax.tree.leaves((state.params, state.opt_state))
    total = sum(x.size * x.dtype.itemsize for x in leaves)
    on_device_0 = sum(s.data.size * s.data.dtype.itemsize for x in leaves for s in x.addressable_shards
                      if s.device == devices[0])
    return total, on_device_0


def test_fsdp_keeps_one_eighth_of_parameters_and_optimizer_state_per_device(tiny_config):
    tiny_config.mesh.update(data=1, fsdp=8, tensor=1)
    total, per_device = state_bytes_per_device(tiny_config, jax.devices())
    assert per_device <= total / 8 * 1.05, (per_device, total)


def test_tensor_parallelism_splits_heads_and_the_mlp_hidden_dimension(tiny_config):
    tiny_config.mesh.update(data=1, fsdp=2, tensor=4)
    specs = jax.tree.map(lambda s: s.spec, train_state.setup(tiny_config).shardings.params)
    layer = specs["layers"]
    P = jax.sharding.PartitionSpec
    # the scanned layer axis goes over pipeline stages (size 1 here)
    assert layer["attention"]["wq"] == P("stage", "fsdp", "tensor", None)  # column-parallel over heads
    assert layer["attention"]["wo"] == P("stage", "tensor", None, "fsdp")  # row-parallel over heads
    assert layer["mlp"]["w_gate"] == layer["mlp"]["w_up"] == P("stage", "fsdp", "tensor")  # column-parallel
    assert layer["mlp"]["w_down"] == P("stage", "tensor", "fsdp")  # row-parallel
    assert specs["embedding"] == P("tensor", "fsdp")


def compiled_temp_bytes(config):
    setup = train_state.setup(config, jax.devices()[:1])
    mesh, abstract = setup.mesh, setup.abstract
    batch = {k: jax.ShapeDtypeStruct((config.global_batch_size, config.seq_len), np.int32,
                                     sharding=sharding.batch_sharding(mesh))
             for k in ("tokens", "segment_ids", "positions")}
    with jax.set_mesh(mesh):
        lowered = jax.jit(train_step.make_train_step(config, setup.tx), donate_argnums=0).lower(abstract, batch)
    return lowered.compile().memory_analysis().temp_size_in_bytes


def test_full_rematerialization_lowers_compiled_temporary_memory(tiny_config):
    tiny_config.model.num_layers = 4
    tiny_config.seq_len = 256
    none = compiled_temp_bytes(tiny_config)
    tiny_config.model.remat = "full"
    full = compiled_temp_bytes(tiny_config)
    assert full < 0.6 * none, (full, none)


def test_hosts_separate_gpus_and_slices_separate_tpus():
    """GPUs carry a slice_index per host; only on TPU does it name what the slow network joins."""
    def devices(platform):
        return [types.SimpleNamespace(platform=platform, slice_index=i // 4, process_index=i // 8)
                for i in range(16)]
    assert sharding._granules(devices("gpu")) == ("process_index", 2)
    assert sharding._granules(devices("tpu")) == ("slice_index", 4)
