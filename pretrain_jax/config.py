"""Checks a training config against itself and the devices, failing early with a clear message.

The schema and its documented defaults live in configs/base.py; this module only
rejects combinations that cannot run.
"""

from __future__ import annotations

import jax.numpy as jnp
import ml_collections

from data_prep.errors import ConfigError
from pretrain_jax import attention, masking, model, objectives, optimizer, sharding


def validate(config: ml_collections.ConfigDict, num_devices: int, platform: str | None = None) -> None:
    """Raises ConfigError (a ValueError) naming the key at fault. `platform` ('cpu', 'gpu', 'tpu'), when
    given, is the devices' platform: a kernel that needs another one is rejected here rather than inside jit."""
    _validate_model(config.model)
    if config.model.attention_impl == "cudnn" and platform not in (None, "gpu"):
        raise ConfigError(f"model.attention_impl='cudnn' runs on NVIDIA GPUs only, and these devices are "
                         f"{platform}; use 'xla'")
    _validate_objective(config)
    _validate_left_to_right_uses(config)
    shape = dict(zip(sharding.MESH_AXES, sharding.mesh_shape(config.mesh, num_devices)))
    tensor = shape["tensor"]
    for name in ("num_heads", "mlp_dim"):
        if config.model[name] % tensor:
            raise ConfigError(f"model.{name}={config.model[name]} is not divisible by mesh.tensor={tensor}")
    if config.model.dim % shape["fsdp"]:  # else every parameter would be stored whole on every device
        raise ConfigError(f"model.dim={config.model.dim} is not divisible by mesh.fsdp={shape['fsdp']}, the "
                          "axis parameters are sharded along: choose an fsdp size that divides it")
    _validate_optimizer(config.optimizer, config.num_train_steps)
    dp = shape["data"] * shape["fsdp"]
    if config.global_batch_size < 1:
        raise ConfigError(f"global_batch_size={config.global_batch_size} must be at least 1")
    if config.microbatches < 1 or config.global_batch_size % config.microbatches:
        raise ConfigError(f"global_batch_size={config.global_batch_size} is not divisible by "
                         f"microbatches={config.microbatches}")
    micro = config.global_batch_size // config.microbatches
    if micro % dp:
        raise ConfigError(f"global_batch_size={config.global_batch_size} (per microbatch {micro}) is not "
                         f"divisible by the data-parallel size {dp} (mesh.data x mesh.fsdp = "
                         f"{shape['data']} x {shape['fsdp']})")


def _check_dtype(key: str, value: str) -> None:
    try:
        jnp.dtype(value)
    except TypeError:
        raise ConfigError(f"{key}={value!r} is not a dtype (float32, bfloat16, ...)") from None


# optimizer key -> (True for a value training can run with, that range as the error message says it).
OPTIMIZER_RANGES = {
    "peak_learning_rate": (lambda v: v > 0, "> 0"),
    "warmup_steps": (lambda v: v >= 0, ">= 0"),
    "decay_steps": (lambda v: v >= 0, ">= 0 (0: the schedule's default length)"),
    "decay_fraction": (lambda v: 0 < v <= 1, "in (0, 1]"),
    "final_learning_rate_fraction": (lambda v: 0 <= v <= 1, "in [0, 1]"),
    "b1": (lambda v: 0 <= v < 1, "in [0, 1)"),
    "b2": (lambda v: 0 <= v < 1, "in [0, 1)"),
    "eps": (lambda v: v > 0, "> 0"),
    "weight_decay": (lambda v: v >= 0, ">= 0"),
    "grad_clip_norm": (lambda v: v >= 0, ">= 0 (0: no clipping)"),
}


def _validate_optimizer(opt: ml_collections.ConfigDict, num_train_steps: int) -> None:
    """Names and ranges of the optimizer section, and the schedules' needs: a negative peak or a decay longer
    than the run would otherwise train (on a wrong schedule) rather than fail."""
    for key, choices in (("schedule", optimizer.SCHEDULES), ("decay_shape", optimizer.DECAY_SHAPES)):
        if opt[key] not in choices:
            raise ConfigError(f"optimizer.{key}={opt[key]!r}; choose one of {sorted(choices)}")
    for key, (holds, needs) in OPTIMIZER_RANGES.items():
        if not holds(opt[key]):
            raise ConfigError(f"optimizer.{key}={opt[key]} must be {needs}")
    _check_dtype("optimizer.state_dtype", opt.state_dtype)
    if opt.schedule == "inverse_sqrt" and opt.warmup_steps < 1:
        raise ConfigError("optimizer.schedule='inverse_sqrt' decays as sqrt(warmup_steps / step) and needs "
                          f"optimizer.warmup_steps >= 1, not {opt.warmup_steps}")
    decay = optimizer.decay_steps(opt, num_train_steps)
    if opt.schedule == "wsd" and opt.warmup_steps + decay > num_train_steps:
        raise ConfigError(f"optimizer.warmup_steps={opt.warmup_steps} plus the wsd decay of {decay} steps exceed "
                          f"num_train_steps={num_train_steps}: shorten optimizer.warmup_steps or "
                          "optimizer.decay_steps / decay_fraction, or raise num_train_steps")


def _validate_model(cfg: ml_collections.ConfigDict) -> None:
    if cfg.num_kv_heads < 1 or cfg.num_heads % cfg.num_kv_heads:
        raise ConfigError(f"model.num_heads={cfg.num_heads} is not divisible by "
                         f"model.num_kv_heads={cfg.num_kv_heads}")
    if not cfg.head_dim and cfg.dim % cfg.num_heads:
        raise ConfigError(f"model.dim={cfg.dim} is not divisible by model.num_heads={cfg.num_heads}; "
                         "set model.head_dim explicitly")
    if model.head_dim(cfg) % 2:
        raise ConfigError(f"head_dim={model.head_dim(cfg)} must be even for rotary embeddings")
    if cfg.attention_impl not in attention.ATTENTION_IMPLS:
        raise ConfigError(f"model.attention_impl={cfg.attention_impl!r}; choose one of "
                         f"{sorted(attention.ATTENTION_IMPLS)}")
    if cfg.remat != "none" and cfg.remat not in model.REMAT_POLICIES:
        raise ConfigError(f"model.remat={cfg.remat!r}; choose none or one of {sorted(model.REMAT_POLICIES)}")
    for key in ("dtype", "param_dtype"):
        _check_dtype(f"model.{key}", cfg[key])
    if cfg.attention_impl == "cudnn" and jnp.dtype(cfg.dtype) not in (jnp.bfloat16, jnp.float16):
        raise ConfigError(f"model.attention_impl='cudnn' needs model.dtype bfloat16 or float16, not {cfg.dtype!r}")


def _validate_left_to_right_uses(config: ml_collections.ConfigDict) -> None:
    """Sampling and task scoring read a model left to right, which a bidirectional one is not: fail
    before training rather than at the first sample or validation pass."""
    if config.generate.sample_every > 0:
        if not config.model.causal:
            raise ConfigError("generate.sample_every > 0 samples text, which needs a causal model "
                              "(model.causal=True); set --config.generate.sample_every=0")
        if not config.generate.prompts or not all(config.generate.prompts):
            raise ConfigError(f"generate.sample_every > 0 needs non-empty generate.prompts, got "
                              f"{tuple(config.generate.prompts)!r}")
    if config.eval_tasks and not config.model.causal:
        raise ConfigError("eval_tasks score continuations left to right; a bidirectional model "
                          "(model.causal=False) would see the tokens it scores. Set --config.eval_tasks=()")


def _validate_objective(config: ml_collections.ConfigDict) -> None:
    if config.objective not in objectives.OBJECTIVES:
        raise ConfigError(f"objective={config.objective!r}; choose one of {sorted(objectives.OBJECTIVES)}")
    causal = config.objective == "causal_lm"
    if config.model.causal != causal:
        why = ("a bidirectional model sees the next token it would predict" if causal
               else "masked tokens are predicted from both sides")
        raise ConfigError(f"objective={config.objective!r} needs model.causal={causal}: {why}; "
                         f"set --config.model.causal={causal}")
    if causal:
        return
    mlm = config.mlm
    if not 0 < mlm.mask_rate < 1:
        raise ConfigError(f"mlm.mask_rate={mlm.mask_rate} must be between 0 and 1")
    if min(mlm.mask_fraction, mlm.random_fraction) < 0 or mlm.mask_fraction + mlm.random_fraction > 1:
        raise ConfigError(f"mlm.mask_fraction={mlm.mask_fraction} and mlm.random_fraction={mlm.random_fraction} "
                         "must be non-negative and sum to at most 1 (the rest of the chosen tokens stay unchanged)")
    if masking.mask_id(config.model) <= masking.NUM_SPECIAL:
        raise ConfigError(f"model.vocab_size={config.model.vocab_size} leaves no ordinary token ids below the mask id")
