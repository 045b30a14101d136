"""Llama 7B (Touvron et al. 2023, Table 2): dim 4096, 32 heads, 32 layers, lr 3e-4, 4M-token batches, 1.0T tokens.

Valid, not runnable on a laptop. Check the fit first, then launch on a pod:
    python -m pretrain_jax.train --config=configs/llama_7b.py --workdir=gs://BUCKET/llama_7b
"""

from configs import base


def get_config():
    c = base.get_config()
    c.model.update(dim=4096, num_layers=32, num_heads=32, num_kv_heads=32, mlp_dim=11008, dtype="bfloat16")
    c.optimizer.peak_learning_rate = 3e-4
    c.num_train_steps = 250_000  # 1.0T tokens at 4M per step
    c.mesh.update(data=1, fsdp=-1)  # FSDP across all devices
    return c
