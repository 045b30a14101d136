"""Ahead-of-time compilation for TPU slices: topology names, the report of a compiled step, the verdict."""

import json
import os
import sys

import jax
import numpy as np
import pytest

from configs import base, llama, tiny
from pretrain_jax import aot, cli, sharding


@pytest.fixture
def libtpu():
    """Compile-only TPU devices need libtpu: skipped where it is absent, except in CI, which installs it."""
    if aot.find_libtpu() is None:
        if os.environ.get("CI") == "true":
            pytest.fail(f"libtpu is missing; `make install` puts it in {aot.AOT_LIBTPU}")
        pytest.skip("libtpu not installed (make install)")
    yield
    jax.clear_caches()  # compiled executables of differently sized models do not pile up


@pytest.mark.parametrize("text, generation, shape", [
    ("v5p-128", "v5p", (4, 4, 4)),  # TensorCores: 64 chips
    ("v5p-8", "v5p", (2, 2, 1)),
    ("v5p-32", "v5p", (2, 2, 4)),
    ("v4-64", "v4", (2, 4, 4)),
    ("v5e-256", "v5e", (16, 16)),  # chips
    ("v5litepod-8", "v5e", (2, 4)),
    ("v6e-128", "v6e", (8, 16)),
    ("v5e:2x2", "v5e", (2, 2)),
    ("V5P:4x4x8", "v5p", (4, 4, 8)),
])
def test_topology_names_give_the_cloud_tpu_slice_shapes(text, generation, shape):
    """Shapes as in the Cloud TPU v5p/v5e configuration tables."""
    topology = aot.parse_topology(text)
    assert (topology.generation, topology.shape) == (generation, shape)


@pytest.mark.parametrize("text, message", [
    ("v7-8", "expected an accelerator type"),
    ("tpu", "expected an accelerator type"),
    ("v5p-7", "multiple of that"),
    ("v5p-24", "power-of-two"),
    ("v5e:2x2x2", "2 positive axes"),
])
def test_a_wrong_topology_is_refused_with_the_accepted_forms(text, message):
    with pytest.raises(ValueError, match=message):
        aot.parse_topology(text)


def test_collectives_are_counted_by_kind_with_tpu_reduce_scatter_fusions():
    """Handwritten HLO in the compiled TPU form: async pairs count once, a reduce-scatter fusion once."""
    hlo = """HloModule jit_train_step

%all-reduce-scatter.1 (p: f32[64]) -> f32[16] {
  %all-reduce.3 = f32[64]{0} all-reduce(%p), channel_id=1, to_apply=%add
}

ENTRY %main (a: f32[16], b: f32[16]) -> f32[16] {
  %all-gather-start.1 = (f32[16]{0}, f32[64]{0}) all-gather-start(%a), channel_id=2, dimensions={0}
  %all-gather-done.1 = f32[64]{0} all-gather-done(%all-gather-start.1)
  %fusion.7 = f32[16]{0:T(128)S(1)} fusion(%all-gather-done.1), kind=kCustom, calls=%all-reduce-scatter.1
  %all-reduce.9 = (f32[]{:T(128)}, f32[]{:T(128)}) all-reduce(%x, %y), channel_id=3, to_apply=%add
  ROOT %collective-permute.2 = f32[16]{0} collective-permute(%b), source_target_pairs={{0,1},{1,0}}
}
"""
    assert aot.collective_counts(hlo) == {"all-gather": 1, "reduce-scatter": 1, "all-reduce": 1, "all-to-all": 0,
                                          "collective-permute": 1}


@pytest.mark.parametrize("message, required, available", [
    ("RESOURCE_EXHAUSTED: Ran out of memory on HBM, the total memory required for HLO temporaries (98.33T) "
     "exceeds available HBM (15.75G).", 98.33 * 2**40, 15.75 * 2**30),
    ("RESOURCE_EXHAUSTED: XLA:TPU compile permanent error. Ran out of memory in memory space hbm. "
     "Used 63.80G of 30.75G hbm. Exceeded hbm capacity by 33.05G.", 63.80 * 2**30, 30.75 * 2**30),
])
def test_an_out_of_memory_compile_is_a_does_not_fit_report_with_its_numbers(message, required, available):
    report = aot.out_of_memory_report(message, hbm_bytes=16 * 2**30)
    assert report["fits"] is False and report["error"].startswith("RESOURCE_EXHAUSTED")
    assert report["memory_per_device"]["required"] == int(required)
    assert report["memory_per_device"]["available"] == int(available)


@pytest.mark.parametrize("topology", ["v5e:2x2", "v5p:2x2x1"])
def test_splash_attention_compiles_natively_for_tpu_with_fsdp_and_tensor_axes(libtpu, topology):
    """The Pallas kernel lowered through Mosaic for the chip (not interpreted), on each device's heads."""
    config = tiny.get_config()
    config.mesh.update(data=1, fsdp=2, tensor=-1)
    config.model.update(dim=256, mlp_dim=1024, attention_impl="splash")
    config.update(seq_len=256, global_batch_size=16)
    report = aot.analyze(config, aot.parse_topology(topology))
    assert report["fits"] is True and report["error"] is None
    assert report["memory_per_device"]["total"] > 0


@pytest.mark.parametrize("attention_impl", ["xla", "splash"])
def test_a_context_parallel_step_compiles_for_v5e_2x2_and_gathers_keys_and_values(libtpu, attention_impl):
    config = tiny.get_config()
    config.mesh.update(data=1, context=4)
    config.update(seq_len=512, global_batch_size=4)
    config.model.attention_impl = attention_impl
    report = aot.analyze(config, aot.parse_topology("v5e:2x2"))
    assert report["fits"] is True and report["mesh"]["context"] == 4
    assert report["collectives"]["all-gather"] > 0  # every layer's keys and values over the context axis


def test_a_pipelined_step_compiles_for_v5e_2x2_with_its_stages_apart(libtpu):
    config = tiny.get_config()
    config.mesh.update(data=1, stage=4)
    config.model.num_layers = 4
    report = aot.analyze(config, aot.parse_topology("v5e:2x2"))
    assert report["fits"] is True and report["mesh"]["stage"] == 4
    assert report["pipeline_bubble"] == pytest.approx(3 / 7)  # 4 microbatches, 4 stages: 3 of 7 iterations idle
    assert report["collectives"]["collective-permute"] > 0  # microbatches handed to the next stage
    assert "pipeline: 4 stages, bubble 42.9%" in aot.format_report(report)


def test_the_tiny_model_compiles_for_v5e_2x2_and_fits(libtpu):
    config = tiny.get_config()
    config.mesh.update(data=1, fsdp=-1)  # parameters sharded: their all-gathers must show
    # Wider and longer than tiny: for a program of a few MB, XLA:TPU may place every temporary elsewhere and
    # report 0 bytes of them (it does for tiny's step with the per-layer norms).
    config.model.update(dim=256, mlp_dim=1024)
    config.update(seq_len=256, global_batch_size=16)
    report = aot.analyze(config, aot.parse_topology("v5e:2x2"))
    memory = report["memory_per_device"]
    assert report["devices"] == 4 and report["mesh"] == {"data": 1, "stage": 1, "fsdp": 4, "context": 1, "tensor": 1}
    for part in ("arguments", "outputs", "temporaries", "generated_code", "aliased"):
        assert memory[part] > 0, part
    assert memory["total"] == (memory["arguments"] + memory["outputs"] + memory["temporaries"]
                               + memory["generated_code"] - memory["aliased"])
    assert memory["hbm"] == int(15.75 * 2**30) and report["error"] is None
    assert report["fits"] is True and report["tight"] is False  # 30 MiB of 15.75 GiB
    evaluation = report["eval_step"]  # the validation step, compiled too: it runs beside the training state
    assert evaluation["fits"] is True and evaluation["memory_per_device"]["arguments"] > 0
    assert evaluation["beside_training_state"] >= memory["arguments"] + evaluation["memory_per_device"]["temporaries"]
    assert "validation step: temporaries" in aot.format_report(report)
    assert report["xla_flops_per_device"] > 0 and report["model_flops_per_device"] > 0
    assert report["collectives"]["all-gather"] >= 1
    assert "verdict: fits" in aot.format_report(report)


@pytest.mark.parametrize("topology, wrap", [
    ("v5p-128", (True, True, True)),  # a whole 4x4x4 cube: a torus
    ("v5p:4x4x8", (True, True, True)),
    ("v5p-32", (False, False, False)),  # 2x2x4: part of a cube, no wraparound links
    ("v4-8", (False, False, False)),
    ("v5e-256", (True, True, False)),  # 16x16: a whole v5e pod
    ("v6e-128", (False, True, False)),  # 8x16: only the 16-chip axis closes
    ("v5e:2x2", (False, False, False)),
])
def test_slices_wrap_around_as_cloud_tpu_builds_them(topology, wrap):
    assert aot.wraparound(aot.parse_topology(topology)) == wrap


def test_fsdp_weights_are_all_gathered_on_a_v5p_128_torus(libtpu, monkeypatch):
    """Without its wraparound links libtpu compiles a v5p-128 as an open grid and turns every all-gather into an
    all-reduce of a zero-padded buffer; with them, each layer's FSDP-sharded weights are all-gathered."""
    config = tiny.get_config()
    config.mesh.update(data=1, fsdp=-1)  # 64 devices
    config.model.update(dim=256, mlp_dim=1024)
    config.update(seq_len=256, global_batch_size=64)
    gathers = aot.analyze(config, aot.parse_topology("v5p-128"))["collectives"]["all-gather"]
    assert gathers >= 7  # wq, wk, wv, wo, w_gate, w_up, w_down of the scanned layer, at least once
    jax.clear_caches()
    monkeypatch.setattr(aot, "wraparound", lambda topology: (False, False, False))
    assert aot.analyze(config, aot.parse_topology("v5p-128"))["collectives"]["all-gather"] < gathers


def test_llama_65b_on_four_v5e_chips_does_not_fit_and_says_so(libtpu):
    report = aot.analyze(llama.get_llama_config("65b"), aot.parse_topology("v5e-4"))
    assert report["fits"] is False and "RESOURCE_EXHAUSTED" in report["error"]
    assert report["memory_per_device"]["required"] > report["memory_per_device"]["available"]
    assert "DOES NOT FIT" in aot.format_report(report)


def run_command_line(monkeypatch, *args):
    cli.main(["aot", f"--config={tiny.__file__}", *args])


def mesh_over(devices, **sizes):
    cfg = base.get_config().mesh
    cfg.update(sizes)
    return sharding.make_mesh(cfg, devices)


@pytest.mark.parametrize("sizes, shape, slice_axis", [
    ({"data": 1, "fsdp": -1, "dcn_data": 2}, (2, 1, 4, 1, 1), 0),  # (data, stage, fsdp, context, tensor)
    ({"data": 1, "fsdp": -1, "dcn_fsdp": 2}, (1, 1, 8, 1, 1), 2),
])
def test_two_tpu_slices_make_a_hybrid_mesh_with_slices_outermost(libtpu, sizes, shape, slice_axis):
    """Each slice is a contiguous block along the axis its DCN size splits: only that axis crosses slices."""
    mesh = mesh_over(aot.topology_devices(aot.Topology("v5e", (2, 2), num_slices=2)), **sizes)
    assert mesh.devices.shape == shape
    slices = np.vectorize(lambda d: d.slice_index)(mesh.devices)
    halves = np.split(slices, 2, axis=slice_axis)
    assert (halves[0] == 0).all() and (halves[1] == 1).all()


@pytest.mark.parametrize("sizes, message", [
    ({"data": -1}, "the devices span 2 TPU slices"),
    ({"data": -1, "dcn_data": 4}, "asks for 4 slices but the 8 devices have 2 distinct slice_index"),
])
def test_a_mesh_that_ignores_the_slices_is_refused(libtpu, sizes, message):
    with pytest.raises(ValueError, match=message):
        mesh_over(aot.topology_devices(aot.Topology("v5e", (2, 2), num_slices=2)), **sizes)


def test_the_command_line_compiles_two_slices_and_prints_json(libtpu, capsys, monkeypatch):
    run_command_line(monkeypatch, "--topology=v5e:2x2", "--num_slices=2", "--config.mesh.dcn_data=2",
                     "--config.mesh.data=1", "--config.mesh.fsdp=-1", "--json")
    report = json.loads(capsys.readouterr().out)
    assert (report["devices"], report["num_slices"], report["fits"]) == (8, 2, True)
    assert report["mesh"] == {"data": 2, "stage": 1, "fsdp": 4, "context": 1, "tensor": 1}
    assert report["collectives"]["all-reduce"] >= 1  # gradients summed across the two slices


def test_what_the_mesh_leaves_whole_is_reported_and_refused_past_the_threshold(libtpu):
    """2 kv heads on tensor=4: wk and wv (and their moments) stay whole, 9% over what the rules ask."""
    config = tiny.get_config()
    config.model.num_kv_heads = 2
    config.mesh.update(data=1, tensor=4)
    report = aot.analyze(config, aot.parse_topology("v5e:2x2"))
    assert 0.05 < report["replicated"]["fraction"] < 0.25 and report["fits"]
    printed = aot.format_report(report)
    assert "sharding: 6 arrays stay whole along dimensions the rules shard" in printed
    assert "params/layers/attention/wv [2, 64, 2, 8]: kv_heads=2 not split over tensor=4" in printed
    config.mesh.max_replicated_fraction = 0.05
    with pytest.raises(ValueError, match=r"^mesh.max_replicated_fraction=0.05: the mesh leaves 6 arrays whole"):
        aot.analyze(config, aot.parse_topology("v5e:2x2"))  # before compiling; the command line prints it as FATAL


def test_the_command_line_explains_a_wrong_topology_and_prints_help(capsys, monkeypatch):
    with pytest.raises(SystemExit, match="expected an accelerator type"):
        run_command_line(monkeypatch, "--topology=v5p_128x")
    with pytest.raises(SystemExit) as exit_info:
        run_command_line(monkeypatch, "--help")
    assert exit_info.value.code == 0 and "--topology" in capsys.readouterr().out
