"""Configs that cannot run fail at once, with a message that names the problem."""

import math
import os
import subprocess
import sys

import pytest

from configs import base, demo, llama_7b, llama_13b, llama_33b, llama_65b, tiny
from pretrain_jax import config as config_lib

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.mark.parametrize("module", [base, tiny, demo, llama_7b, llama_13b, llama_33b, llama_65b])
def test_shipped_configs_are_valid(module):
    """On up to 256 devices (a v5p-512 slice), as many as the batch can be split over."""
    config = module.get_config()
    config_lib.validate(config, num_devices=math.gcd(config.global_batch_size, 256))


def test_unknown_key_on_the_command_line_is_refused():
    result = subprocess.run(
        [sys.executable, "-m", "pretrain_jax.train", "--config=configs/tiny.py", "--workdir=/tmp/unused",
         "--config.model.num_layer=3"], cwd=REPO, capture_output=True, text=True)
    assert result.returncode != 0
    assert "unknown config key 'num_layer' (did you mean 'num_layers'?)" in result.stderr


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
    assert "FATAL mesh {'data': 2, 'fsdp': 1, 'tensor': 1} has 2 devices but 1 are available" in result.stderr
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
    ("--config.global_batch_size=0", "FATAL global_batch_size=0 must be at least 1"),
])
def test_config_mistakes_on_the_command_line_are_one_fatal_line(override, message, tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "pretrain_jax.train", "--config=configs/tiny.py", f"--workdir={tmp_path}", override],
        cwd=REPO, capture_output=True, text=True, env={**os.environ, "XLA_FLAGS": "", "JAX_PLATFORMS": "cpu"})
    assert result.returncode != 0
    assert message in result.stderr and "Traceback" not in result.stderr
