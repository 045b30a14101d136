"""Checks a training config against itself and the devices, failing early with a clear message.

The schema and its documented defaults live in pretrain_jax/schema.py; this module only
rejects combinations that cannot run.
"""

from __future__ import annotations

import importlib.util

import jax.numpy as jnp
import ml_collections

from pretrain_common.errors import ConfigError
from pretrain_jax import attention, masking, model, objectives, optimizer, sharding, train_data, trained


def validate(config: ml_collections.ConfigDict, num_devices: int, platform: str | None = None) -> None:
    """Raises ConfigError (a ValueError) naming the key at fault. `platform` ('cpu', 'gpu', 'tpu'), when
    given, is the devices' platform: a kernel that needs another one is rejected here rather than inside jit."""
    _check_ranges(config)
    _validate_model(config.model)
    _validate_kernel_platform(config.model.attention_impl, platform)
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
    _validate_pipeline(config, shape)
    context = shape["context"]
    if context > 1 and config.seq_len % (2 * context):
        raise ConfigError(f"mesh.context={context} splits each row into 2 x {context} chunks (an early and a late one "
                          f"per device), which seq_len={config.seq_len} is not divisible into")
    if context > 1 and config.model.attention_impl not in ("xla", "dot_product_attention", "splash"):
        raise ConfigError(f"mesh.context={context} with model.attention_impl={config.model.attention_impl!r}: this "
                          "kernel reads rows in order, which context parallelism reorders; use 'splash' (TPU) or 'xla'")
    if context > 1 and config.model.attention_impl == "splash" and (config.seq_len // context) % 128:
        raise ConfigError(f"mesh.context={context} with model.attention_impl='splash': each device's "
                          f"{config.seq_len // context} queries must be a multiple of 128 (TPU lanes); use a seq_len "
                          f"divisible by {128 * context}, or 'xla'")
    if config.model.attention_impl == "splash" and config.seq_len % 128:
        raise ConfigError(f"model.attention_impl='splash' tiles rows in multiples of 128 (TPU lanes); seq_len="
                          f"{config.seq_len} is not one: use a multiple of 128, or 'xla'")
    scaling = config.model.rope_scaling
    if scaling.high_freq_factor <= scaling.low_freq_factor:
        raise ConfigError(f"model.rope_scaling.high_freq_factor={scaling.high_freq_factor} must exceed "
                          f"low_freq_factor={scaling.low_freq_factor} (Llama 3.1: 4 and 1)")
    if config.model.logits_chunk and config.seq_len % config.model.logits_chunk:
        raise ConfigError(f"model.logits_chunk={config.model.logits_chunk} does not divide seq_len={config.seq_len}: "
                          "choose a divisor (e.g. 256), or 0")
    for key, batch in _batch_sizes(config):
        _check_batch(key, batch, config.microbatches, shape)
    _validate_run_options(config)
    train_data.stage_entries(config)  # their form; the sources are checked against the datasets when read


def _batch_sizes(config: ml_collections.ConfigDict) -> list[tuple[str, int]]:
    """(key, rows) of every global batch the run takes: global_batch_size and the ramp's sizes."""
    schedule = config.global_batch_schedule
    if not schedule:
        return [(f"global_batch_size={config.global_batch_size}", config.global_batch_size)]
    form = ("global_batch_schedule: (first step, global batch) pairs at increasing steps from 0, the last batch "
            "equal to global_batch_size")
    if not all(isinstance(p, (tuple, list)) and len(p) == 2 and all(isinstance(v, int) for v in p) for p in schedule):
        raise ConfigError(f"global_batch_schedule={schedule!r}; expected {form}")
    steps = [step for step, _ in schedule]
    if steps[0] != 0 or any(b <= a for a, b in zip(steps, steps[1:])):
        raise ConfigError(f"global_batch_schedule starts at steps {steps}; expected {form}")
    if schedule[-1][1] != config.global_batch_size:
        raise ConfigError(f"global_batch_schedule ends at a batch of {schedule[-1][1]} rows but global_batch_size="
                          f"{config.global_batch_size}: set --config.global_batch_size={schedule[-1][1]} (the batch "
                          "validation, the token budget and MFU use)")
    return [(f"global_batch_schedule[{i}]={(step, batch)}", batch) for i, (step, batch) in enumerate(schedule)]


def _check_batch(key: str, batch: int, microbatches: int, shape: dict[str, int]) -> None:
    dp = shape["data"] * shape["fsdp"]
    if batch < 1 or batch % microbatches:
        raise ConfigError(f"{key} is not divisible by microbatches={microbatches}")
    if (batch // microbatches) % dp:
        raise ConfigError(f"{key} (per microbatch {batch // microbatches}) is not divisible by the data-parallel "
                          f"size {dp} (mesh.data x mesh.fsdp = {shape['data']} x {shape['fsdp']})")


def _validate_run_options(config: ml_collections.ConfigDict) -> None:
    """Keys that only make sense together: rollbacks need spike detection, init options a source, exports
    the hf extra and a causal model."""
    if config.spike.rollback_batches > 0 and config.spike.sigma <= 0:
        raise ConfigError(f"spike.rollback_batches={config.spike.rollback_batches} rolls back on loss spikes, "
                          "which spike.sigma=0 never detects: set --config.spike.sigma (OLMo-core uses 6)")
    if config.init.source:
        trained.parse_source(config.init.source)
    else:
        for key in ("optimizer_state", "peak_from_source"):
            if config.init[key]:
                raise ConfigError(f"init.{key}=True needs a run to start from: set --init_from=WORKDIR[@STEP] "
                                  "(--config.init.source)")
    if config.hf_export_every > 0:
        if not config.model.causal:
            raise ConfigError("hf_export_every > 0 exports a causal LM (Llama or Qwen3); this model is "
                              "bidirectional (model.causal=False): set --config.hf_export_every=0")
        missing = [name for name in ("transformers", "safetensors") if importlib.util.find_spec(name) is None]
        if missing:
            raise ConfigError(f"hf_export_every > 0 needs {' and '.join(missing)}: pip install -e '.[hf]', or set "
                              "--config.hf_export_every=0")


def _validate_pipeline(config: ml_collections.ConfigDict, shape: dict[str, int]) -> None:
    """Stages must each get whole layer chunks, and microbatches whole rows on every data-parallel device."""
    stages, m = shape["stage"], config.model
    if stages == 1:
        return
    if not m.scan_layers:
        raise ConfigError(f"mesh.stage={stages} pipelines the scanned layer stack: set --config.model.scan_layers=True")
    if m.num_layers % (stages * m.pipeline_repeats):
        raise ConfigError(f"model.num_layers={m.num_layers} cannot be cut into mesh.stage={stages} x "
                          f"model.pipeline_repeats={m.pipeline_repeats} equal chunks of layers")
    microbatches = m.pipeline_microbatches or stages
    if m.pipeline_repeats > 1 and microbatches < stages:
        raise ConfigError(f"model.pipeline_repeats={m.pipeline_repeats} sends each microbatch round the stages "
                          f"again, which needs model.pipeline_microbatches >= mesh.stage={stages}, not {microbatches}")
    rows, dp = config.global_batch_size // config.microbatches, shape["data"] * shape["fsdp"]
    if rows % (microbatches * dp):
        raise ConfigError(f"a batch of {rows} rows (global_batch_size / microbatches) does not split into "
                          f"{microbatches} pipeline microbatches over the {dp} data-parallel devices: make it a "
                          f"multiple of {microbatches * dp}, or change model.pipeline_microbatches")
    if m.attention_impl not in ("xla", "dot_product_attention", "cudnn"):
        raise ConfigError(f"mesh.stage={stages} with model.attention_impl={m.attention_impl!r}: the Pallas kernels "
                          "are not run inside pipeline stages yet; use 'xla' (or 'cudnn' on GPUs)")


def _validate_kernel_platform(impl: str, platform: str | None) -> None:
    """cuDNN runs on NVIDIA GPUs only; a Pallas kernel on its own platform, or interpreted on a CPU (tests)."""
    native = attention.KERNEL_PLATFORMS.get(impl)
    allowed = (None, native) if impl == "cudnn" else (None, native, "cpu")
    if native and platform not in allowed:
        where = {"gpu": "NVIDIA GPUs", "tpu": "TPUs"}[native]
        raise ConfigError(f"model.attention_impl={impl!r} runs on {where} only, and these devices are {platform}; "
                          f"use 'xla'" + ("" if impl == "cudnn" else " (a CPU runs it in Pallas interpret mode, "
                                                                    "for tests)"))


def _check_dtype(key: str, value: str) -> None:
    try:
        jnp.dtype(value)
    except TypeError:
        raise ConfigError(f"{key}={value!r} is not a dtype (float32, bfloat16, ...)") from None


POSITIVE, NON_NEGATIVE = (lambda v: v > 0, "> 0"), (lambda v: v >= 0, ">= 0")
AT_LEAST_1 = (lambda v: v >= 1, ">= 1")
FRACTION = (lambda v: 0 <= v < 1, "in [0, 1)")
# Every numeric key -> (True for a value training can run with, that range as the error message says it).
RANGES = {
    "seed": NON_NEGATIVE,
    "seq_len": (lambda v: v >= 2, ">= 2 (a row needs a token and its target)"),
    "global_batch_size": AT_LEAST_1,
    "microbatches": AT_LEAST_1,
    "num_train_steps": AT_LEAST_1,
    "log_every": AT_LEAST_1,
    "eval_every": (lambda v: v >= -1, ">= -1 (0: only at the end; -1: never)"),
    "eval_batches": (lambda v: v >= 0, ">= 0 (0: the whole split)"),
    "eval_num_fewshot": NON_NEGATIVE,
    "eval_task_batch": AT_LEAST_1,
    "checkpoint_every": (lambda v: v >= 0, ">= 0 (0: only at the end)"),
    "keep_checkpoints": (lambda v: v is None or v >= 1, ">= 1"),
    "max_consecutive_nonfinite": AT_LEAST_1,
    "peak_flops_per_device": (lambda v: v >= 0, ">= 0 (0: measured at start-up)"),
    "hf_export_every": (lambda v: v >= 0, ">= 0 (0: off)"),
    "ema_decay": (lambda v: 0 <= v < 1, "in [0, 1) (0: off)"),
    "mesh.max_replicated_fraction": (lambda v: v >= 0, ">= 0 (0: no replication the rules did not ask for)"),
    "data.num_threads": NON_NEGATIVE,
    "data.prefetch": NON_NEGATIVE,
    "generate.sample_every": (lambda v: v >= 0, ">= 0 (0: off)"),
    "generate.max_new_tokens": AT_LEAST_1,
    "model.vocab_size": AT_LEAST_1,
    "model.dim": AT_LEAST_1,
    "model.num_layers": AT_LEAST_1,
    "model.num_heads": AT_LEAST_1,
    "model.num_kv_heads": AT_LEAST_1,
    "model.head_dim": (lambda v: v >= 0, ">= 0 (0: dim // num_heads)"),
    "model.mlp_dim": AT_LEAST_1,
    "model.rope_theta": POSITIVE,
    "model.rope_scaling.factor": (lambda v: v >= 1, ">= 1 (1: off)"),
    "model.rope_scaling.low_freq_factor": POSITIVE,
    "model.rope_scaling.original_max_position": AT_LEAST_1,
    "model.norm_eps": POSITIVE,
    "model.init_std": POSITIVE,
    "model.z_loss": (lambda v: v >= 0, ">= 0 (0: off)"),
    "model.logits_chunk": (lambda v: v >= 0, ">= 0 (0: all positions at once)"),
    "model.pipeline_microbatches": (lambda v: v >= 0, ">= 0 (0: as many as mesh.stage)"),
    "model.pipeline_repeats": AT_LEAST_1,
    "mlm.mask_rate": (lambda v: 0 < v < 1, "in (0, 1)"),
    "spike.sigma": (lambda v: v >= 0, ">= 0 (0: off)"),
    "spike.window": (lambda v: v >= 2, ">= 2"),
    "spike.rollback_batches": (lambda v: v >= 0, ">= 0 (0: off)"),
    "spike.max_rollbacks": NON_NEGATIVE,
    "optimizer.peak_learning_rate": POSITIVE,
    "optimizer.warmup_steps": NON_NEGATIVE,
    "optimizer.decay_steps": (lambda v: v >= 0, ">= 0 (0: the schedule's default length)"),
    "optimizer.decay_fraction": (lambda v: 0 < v <= 1, "in (0, 1]"),
    "optimizer.final_learning_rate_fraction": (lambda v: 0 <= v <= 1, "in [0, 1]"),
    "optimizer.b1": FRACTION,
    "optimizer.b2": FRACTION,
    "optimizer.eps": POSITIVE,
    "optimizer.weight_decay": NON_NEGATIVE,
    "optimizer.grad_clip_norm": (lambda v: v >= 0, ">= 0 (0: no clipping)"),
}


def _check_ranges(config: ml_collections.ConfigDict) -> None:
    for key, (holds, needs) in RANGES.items():
        section, _, name = key.rpartition(".")
        value = (config[section] if section else config)[name]
        if not holds(value):
            raise ConfigError(f"{key}={value!r} must be {needs}")


def _validate_optimizer(opt: ml_collections.ConfigDict, num_train_steps: int) -> None:
    """Names and ranges of the optimizer section, and the schedules' needs: a negative peak or a decay longer
    than the run would otherwise train (on a wrong schedule) rather than fail."""
    for key, choices in (("schedule", optimizer.SCHEDULES), ("decay_shape", optimizer.DECAY_SHAPES)):
        if opt[key] not in choices:
            raise ConfigError(f"optimizer.{key}={opt[key]!r}; choose one of {sorted(choices)}")
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
