"""The model shapes the training benchmarks share (train_throughput.py, compile_time.py), as train configs.

"25m" and "125m" are the issue's CPU comparison shapes; "tiny" is configs/tiny.py's model.
"""

from __future__ import annotations

import ml_collections

from configs import base

# name -> (model section overrides, seq_len, batch)
CONFIGS = {
    "25m": (dict(vocab_size=8000, dim=384, num_layers=6, num_heads=6, num_kv_heads=2, mlp_dim=1024), 512, 8),
    "125m": (dict(vocab_size=32000, dim=768, num_layers=12, num_heads=12, num_kv_heads=4, mlp_dim=2048), 1024, 4),
    "tiny": (dict(vocab_size=512, dim=64, num_layers=2, num_heads=8, num_kv_heads=4, mlp_dim=128), 64, 8),
}


def bench_config(name: str) -> ml_collections.ConfigDict:
    """configs/base.py with shape `name`, its batch and sequence length, and a short warmup."""
    overrides, seq_len, batch = CONFIGS[name]
    config = base.get_config()
    config.model.update(**overrides)
    config.seq_len, config.global_batch_size, config.num_train_steps = seq_len, batch, 1000
    config.optimizer.warmup_steps = 10
    return config
