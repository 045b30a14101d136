"""The model shapes the training benchmarks share, as train configs; our train step built for one; and
the fresh process each measured variant runs in.

"25m" and "125m" are the issue's CPU comparison shapes; "tiny" is configs/tiny.py's
model; "350m" and "1b" are the GPU shapes (benchmarks/gpu_throughput.py).
"""

from __future__ import annotations

import multiprocessing
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any

import jax
import ml_collections
import numpy as np

from configs import base
from pretrain_jax import sharding, train_state, train_step

# name -> (model section overrides, seq_len, batch)
CONFIGS = {
    "25m": (dict(vocab_size=8000, dim=384, num_layers=6, num_heads=6, num_kv_heads=2, mlp_dim=1024), 512, 8),
    "125m": (dict(vocab_size=32000, dim=768, num_layers=12, num_heads=12, num_kv_heads=4, mlp_dim=2048), 1024, 4),
    "tiny": (dict(vocab_size=512, dim=64, num_layers=2, num_heads=8, num_kv_heads=4, mlp_dim=128), 64, 8),
    # 349M parameters (316M without the embedding table), head_dim 64
    "350m": (dict(vocab_size=32000, dim=1024, num_layers=24, num_heads=16, num_kv_heads=8, mlp_dim=2816), 2048, 16),
    # 1.07B parameters (1.01B without the embedding table), head_dim 128
    "1b": (dict(vocab_size=32000, dim=2048, num_layers=20, num_heads=16, num_kv_heads=8, mlp_dim=5632), 2048, 8),
}


def bench_config(name: str) -> ml_collections.ConfigDict:
    """configs/base.py with shape `name`, its batch and sequence length, and a short warmup."""
    overrides, seq_len, batch = CONFIGS[name]
    config = base.get_config()
    config.model.update(**overrides)
    config.seq_len, config.global_batch_size, config.num_train_steps = seq_len, batch, 1000
    config.optimizer.warmup_steps = 10
    return config


def random_tokens(config: ml_collections.ConfigDict) -> np.ndarray:
    """A batch of random token ids: a step's speed does not depend on the text."""
    rng = np.random.default_rng(0)
    return rng.integers(0, config.model.vocab_size, (config.global_batch_size, config.seq_len), dtype=np.int32)


def compiled_train_step(config: ml_collections.ConfigDict) -> tuple[jax.stages.Compiled, Any, dict[str, jax.Array]]:
    """(step, initial state, batch): our train step exactly as pretrain_jax.train compiles it, on the first
    device, with freshly initialized state (donated to the step: pass each call the state it returned)
    and a batch of one document per row."""
    setup = train_state.setup(config, jax.devices()[:1])
    state = setup.init(config)
    tokens = random_tokens(config)
    batch = jax.device_put({"tokens": tokens, "segment_ids": np.ones_like(tokens),
                            "positions": np.broadcast_to(np.arange(config.seq_len, dtype=np.int32), tokens.shape)},
                           sharding.batch_sharding(setup.mesh))
    return train_step.jit_train_step(config, setup).lower(state, batch).compile(), state, batch


def in_fresh_process(fn, *args) -> dict:
    """fn(*args) in a new process, so each variant starts with nothing of another's: its own runtime,
    allocator and (on a GPU) the whole device memory. A process that dies (killed for memory, a crash
    in native code) gives {'error'}.
    """
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        try:
            return pool.submit(fn, *args).result()
        except BrokenProcessPool:
            return {"error": "the process died (killed for memory, or a crash in native code)"}
