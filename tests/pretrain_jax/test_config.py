"""Configs that cannot run fail at once, with a message that names the problem."""

import math
import os
import subprocess
import sys

import pytest

from configs import base, demo, llama_7b, llama_13b, llama_33b, llama_65b, tiny, two_stage
from pretrain_jax import config as config_lib

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.mark.parametrize("module", [base, tiny, demo, llama_7b, llama_13b, llama_33b, llama_65b])
def test_shipped_configs_are_valid(module):
    """On up to 256 devices (a v5p-512 slice), as many as the batch can be split over."""
    config = module.get_config()
    config_lib.validate(config, num_devices=math.gcd(config.global_batch_size, 256))


@pytest.mark.parametrize("stage", ["pretrain", "anneal"])
def test_the_two_stage_example_configs_are_valid(stage):
    config = two_stage.get_config(stage)
    config.init.source = "workdirs/two_stage/pretrain@500" if stage == "anneal" else ""
    config_lib.validate(config, num_devices=1)


def test_unknown_key_on_the_command_line_is_refused():
    result = subprocess.run(
        [sys.executable, "-m", "pretrain_jax.train", "--config=configs/tiny.py", "--workdir=/tmp/unused",
         "--config.model.num_layer=3"], cwd=REPO, capture_output=True, text=True)
    assert result.returncode != 0
    assert "unknown config key 'model.num_layer' (did you mean 'num_layers'?)" in result.stderr


def test_heads_not_divisible_by_kv_heads_is_refused():
    config = tiny.get_config()
    config.model.update(num_heads=4, num_kv_heads=3)
    with pytest.raises(ValueError, match="num_heads=4 is not divisible by model.num_kv_heads=3"):
        config_lib.validate(config, num_devices=1)


def test_batch_not_divisible_by_the_data_parallel_size_is_refused():
    config = tiny.get_config()
    config.global_batch_size = 6
    config.mesh.update(data=2, fsdp=2, tensor=2)
    with pytest.raises(ValueError, match="global_batch_size=6 .* not divisible by the data-parallel size 4"):
        config_lib.validate(config, num_devices=8)


def test_mesh_of_the_wrong_size_is_refused():
    config = tiny.get_config()
    config.mesh.update(data=2, fsdp=1, tensor=1)
    with pytest.raises(ValueError, match="has 2 devices but 8 are available"):
        config_lib.validate(config, num_devices=8)


@pytest.mark.parametrize("impl, platform, allowed", [
    ("splash", "tpu", True), ("splash", "cpu", True), ("splash", "gpu", False),
    ("pallas_gpu", "gpu", True), ("pallas_gpu", "cpu", True), ("pallas_gpu", "tpu", False),
])
def test_pallas_kernels_run_on_their_platform_or_interpreted_on_a_cpu(impl, platform, allowed):
    config = tiny.get_config()
    config.model.attention_impl = impl
    config.seq_len = 128  # splash's tiles
    if allowed:
        config_lib.validate(config, num_devices=1, platform=platform)
    else:
        with pytest.raises(ValueError, match=f"attention_impl='{impl}' runs on .* only, and these devices are "
                                             f"{platform}; use 'xla'"):
            config_lib.validate(config, num_devices=1, platform=platform)


def test_cudnn_attention_is_refused_off_gpu_and_in_float32():
    config = tiny.get_config()
    config.model.update(attention_impl="cudnn", dtype="bfloat16")
    config_lib.validate(config, num_devices=1, platform="gpu")
    with pytest.raises(ValueError, match="runs on NVIDIA GPUs only, and these devices are cpu"):
        config_lib.validate(config, num_devices=1, platform="cpu")
    config.model.dtype = "float32"
    with pytest.raises(ValueError, match="needs model.dtype bfloat16 or float16, not 'float32'"):
        config_lib.validate(config, num_devices=1, platform="gpu")


def test_unknown_key_in_code_is_refused_by_the_locked_schema():
    config = tiny.get_config()
    config.lock()
    with pytest.raises(AttributeError):
        config.model.num_layer = 3


def test_sampling_and_task_scoring_need_a_causal_model_and_are_refused_before_training():
    config = tiny.get_config()
    config.generate.sample_every = 5
    with pytest.raises(ValueError, match="needs non-empty generate.prompts"):
        config_lib.validate(config, num_devices=1)
    config.generate.prompts = ("def ",)
    config_lib.validate(config, num_devices=1)
    config.update(objective="masked_lm")
    config.model.causal = False
    with pytest.raises(ValueError, match="generate.sample_every > 0 samples text, which needs a causal model"):
        config_lib.validate(config, num_devices=1)
    config.generate.sample_every = 0
    config.eval_tasks = ("tasks.jsonl",)
    with pytest.raises(ValueError, match="eval_tasks score continuations left to right"):
        config_lib.validate(config, num_devices=1)


def test_a_device_mismatch_on_the_command_line_is_one_fatal_line_not_a_traceback(tiny_dataset, tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "pretrain_jax.train", "--config=configs/tiny.py", f"--workdir={tmp_path}",
         f"--config.data.dir={tiny_dataset}", "--config.mesh.data=2"],
        cwd=REPO, capture_output=True, text=True, env={**os.environ, "XLA_FLAGS": "", "JAX_PLATFORMS": "cpu"})
    assert result.returncode != 0
    assert result.stderr.startswith("FATAL mesh {'data': 2, 'stage': 1, 'fsdp': 1, 'context': 1, 'tensor': 1} "
                                     "has 2 devices but 1 are available")
    assert "Traceback" not in result.stderr


def test_an_empty_data_dir_names_the_key_to_set(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "pretrain_jax.train", "--config=configs/tiny.py", f"--workdir={tmp_path}"],
        cwd=REPO, capture_output=True, text=True, env={**os.environ, "XLA_FLAGS": "", "JAX_PLATFORMS": "cpu"})
    assert result.returncode != 0
    assert "FATAL config.data.dir is empty: set --config.data.dir" in result.stderr


def test_an_fsdp_size_that_does_not_divide_the_width_is_refused():
    config = tiny.get_config()
    config.model.update(dim=108, num_heads=2, num_kv_heads=2)
    config.mesh.update(data=1, fsdp=-1, tensor=1)
    with pytest.raises(ValueError, match="model.dim=108 is not divisible by mesh.fsdp=8"):
        config_lib.validate(config, num_devices=8)


@pytest.mark.parametrize("override, message", [
    ("--config=configs/no_such_config.py", "FATAL --config: [Errno 2] No such file or directory"),
    ("--config.model.remat=bogus", "FATAL model.remat='bogus'; choose none or one of"),
    ("--config.optimizer.state_dtype=fp16", "FATAL optimizer.state_dtype='fp16' is not a dtype"),
    ("--config.optimizer.peak_learning_rate=-1e-3", "FATAL optimizer.peak_learning_rate=-0.001 must be > 0"),
    ("--config.global_batch_size=0", "FATAL global_batch_size=0 must be >= 1"),
])
def test_config_mistakes_on_the_command_line_are_one_fatal_line(override, message, tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "pretrain_jax.train", "--config=configs/tiny.py", f"--workdir={tmp_path}", override],
        cwd=REPO, capture_output=True, text=True, env={**os.environ, "XLA_FLAGS": "", "JAX_PLATFORMS": "cpu"})
    assert result.returncode != 0
    assert message in result.stderr and "Traceback" not in result.stderr


@pytest.mark.parametrize("overrides, message", [
    (dict(schedule="cosine_with_restarts"), r"optimizer.schedule='cosine_with_restarts'; choose one of \['constant',"),
    (dict(schedule="wsd", decay_shape="exp"), r"optimizer.decay_shape='exp'; choose one of \['1-sqrt', 'cosine',"),
    (dict(peak_learning_rate=-3e-4), r"optimizer.peak_learning_rate=-0.0003 must be > 0"),
    (dict(peak_learning_rate=0.0), r"optimizer.peak_learning_rate=0.0 must be > 0"),
    (dict(warmup_steps=-1), r"optimizer.warmup_steps=-1 must be >= 0"),
    (dict(decay_steps=-5), r"optimizer.decay_steps=-5 must be >= 0"),
    (dict(decay_fraction=0.0), r"optimizer.decay_fraction=0.0 must be in \(0, 1\]"),
    (dict(decay_fraction=1.5), r"optimizer.decay_fraction=1.5 must be in \(0, 1\]"),
    (dict(final_learning_rate_fraction=-0.1), r"optimizer.final_learning_rate_fraction=-0.1 must be in \[0, 1\]"),
    (dict(final_learning_rate_fraction=2.0), r"optimizer.final_learning_rate_fraction=2.0 must be in \[0, 1\]"),
    (dict(b1=1.0), r"optimizer.b1=1.0 must be in \[0, 1\)"),
    (dict(b2=-0.5), r"optimizer.b2=-0.5 must be in \[0, 1\)"),
    (dict(eps=0.0), r"optimizer.eps=0.0 must be > 0"),
    (dict(weight_decay=-0.1), r"optimizer.weight_decay=-0.1 must be >= 0"),
    (dict(grad_clip_norm=-1.0), r"optimizer.grad_clip_norm=-1.0 must be >= 0"),
    (dict(schedule="inverse_sqrt", warmup_steps=0), r"'inverse_sqrt' .* needs optimizer.warmup_steps >= 1, not 0"),
    (dict(schedule="wsd", warmup_steps=8, decay_steps=3),  # tiny: 10 steps
     r"optimizer.warmup_steps=8 plus the wsd decay of 3 steps exceed num_train_steps=10"),
    (dict(schedule="wsd", warmup_steps=9, decay_fraction=0.2),
     r"optimizer.warmup_steps=9 plus the wsd decay of 2 steps exceed num_train_steps=10"),
])
def test_optimizer_settings_that_cannot_train_are_refused(overrides, message):
    config = tiny.get_config()
    config.optimizer.update(overrides)
    with pytest.raises(ValueError, match=message):
        config_lib.validate(config, num_devices=1)


@pytest.mark.parametrize("overrides", [
    dict(schedule="wsd", warmup_steps=2, decay_steps=8),  # no stable phase: allowed
    dict(schedule="wsd", decay_shape="1-sqrt", decay_fraction=1.0, warmup_steps=0),
    dict(schedule="inverse_sqrt", warmup_steps=1),
    dict(schedule="linear", warmup_steps=0, final_learning_rate_fraction=0.0, grad_clip_norm=0.0, b1=0.0),
])
def test_optimizer_settings_at_the_edges_of_their_ranges_are_accepted(overrides):
    config = tiny.get_config()
    config.optimizer.update(overrides)
    config_lib.validate(config, num_devices=1)


@pytest.mark.parametrize("key, value, message", [
    ("num_train_steps", -5, r"num_train_steps=-5 must be >= 1"),
    ("log_every", 0, r"log_every=0 must be >= 1"),
    ("eval_every", -2, r"eval_every=-2 must be >= -1"),
    ("checkpoint_every", -1, r"checkpoint_every=-1 must be >= 0"),
    ("keep_checkpoints", 0, r"keep_checkpoints=0 must be >= 1"),
    ("max_consecutive_nonfinite", 0, r"max_consecutive_nonfinite=0 must be >= 1"),
    ("ema_decay", 1.0, r"ema_decay=1.0 must be in \[0, 1\)"),
    ("hf_export_every", -1, r"hf_export_every=-1 must be >= 0"),
    ("model.z_loss", -1e-4, r"model.z_loss=-0.0001 must be >= 0"),
    ("model.rope_theta", 0.0, r"model.rope_theta=0.0 must be > 0"),
    ("data.num_threads", -1, r"data.num_threads=-1 must be >= 0"),
    ("mesh.max_replicated_fraction", -0.1, r"mesh.max_replicated_fraction=-0.1 must be >= 0"),
    ("spike.sigma", -1.0, r"spike.sigma=-1.0 must be >= 0"),
    ("spike.window", 1, r"spike.window=1 must be >= 2"),
    ("spike.rollback_batches", 4, r"spike.rollback_batches=4 rolls back on loss spikes, which spike.sigma=0"),
    ("init.optimizer_state", True, r"init.optimizer_state=True needs a run to start from: set --init_from"),
    ("init.source", "run@latest", r"'run@latest': expected WORKDIR or WORKDIR@STEP"),
    ("global_batch_schedule", ((0, 4), (5, 6)), r"ends at a batch of 6 rows but global_batch_size=8"),
    ("global_batch_schedule", ((2, 4), (5, 8)), r"starts at steps \[2, 5\]"),
    ("global_batch_schedule", ((0, 4), (0, 8)), r"starts at steps \[0, 0\]"),
    ("global_batch_schedule", ((0, 4.5), (5, 8)), r"global_batch_schedule=.*expected"),
    ("global_batch_schedule", ((0, 3), (5, 8)), r"global_batch_schedule\[0\]=\(0, 3\) \(per microbatch 3\) is "
                                                r"not divisible by the data-parallel size 2"),
    ("data.stages", ((5,),), r"data.stages\[0\]=\(5,\): a stage is"),
    ("data.stages", ((5, ()), (3, ())), r"data.stages\[1\] starts at step 3, not after"),
])
def test_every_new_key_out_of_range_is_one_line(key, value, message):
    config = tiny.get_config()
    config.mesh.data = 2
    section, _, name = key.rpartition(".")
    (config[section] if section else config)[name] = value
    with pytest.raises(ValueError, match=message):
        config_lib.validate(config, num_devices=2)


def test_splash_needs_rows_in_multiples_of_its_tiles():
    config = tiny.get_config()
    config.model.attention_impl = "splash"
    with pytest.raises(ValueError, match="seq_len=64 is not one: use a multiple of 128"):
        config_lib.validate(config, num_devices=1, platform="tpu")


@pytest.mark.parametrize("impl, seq_len, message", [
    ("pallas_gpu", 1024, "reads rows in order, which context parallelism reorders; use 'splash'"),
    ("splash", 768, "each device's 192 queries must be a multiple of 128"),
])
def test_context_parallelism_takes_splash_with_whole_tiles_per_device_and_refuses_in_order_kernels(
        impl, seq_len, message):
    config = tiny.get_config()
    config.mesh.update(data=1, context=4)
    config.update(seq_len=seq_len, global_batch_size=4)
    config.model.attention_impl = impl
    with pytest.raises(ValueError, match=message):
        config_lib.validate(config, num_devices=4)
    config.seq_len = 2048
    if impl == "splash":
        config_lib.validate(config, num_devices=4)
