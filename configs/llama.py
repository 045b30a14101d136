"""The Llama model table (Touvron et al. 2023, Table 2), as configs on top of base.py.

Valid, not runnable on one machine: check the fit with ahead-of-time compilation,
then launch on a pod slice. Each `configs/llama_<size>.py` is one row.
"""

import ml_collections

from configs import base

# size: (dim, heads, layers, SwiGLU hidden, peak learning rate, training tokens)
TABLE = {
    "7b": (4096, 32, 32, 11008, 3.0e-4, 1.0e12),
    "13b": (5120, 40, 40, 13824, 3.0e-4, 1.0e12),
    "33b": (6656, 52, 60, 17920, 1.5e-4, 1.4e12),
    "65b": (8192, 64, 80, 22016, 1.5e-4, 1.4e12),
}


def get_llama_config(size: str) -> ml_collections.ConfigDict:
    dim, heads, layers, mlp_dim, lr, tokens = TABLE[size]
    c = base.get_config()
    c.model.update(dim=dim, num_layers=layers, num_heads=heads, num_kv_heads=heads, mlp_dim=mlp_dim,
                   dtype="bfloat16")
    c.optimizer.peak_learning_rate = lr
    c.num_train_steps = int(tokens // (c.global_batch_size * c.seq_len))  # 4M-token batches
    c.mesh.update(data=1, fsdp=-1)  # FSDP across all devices
    return c
