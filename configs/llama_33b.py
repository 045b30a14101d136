"""Llama 33B (Touvron et al. 2023, Table 2): dim 6656, 52 heads, 60 layers, lr 1.5e-4, 4M-token batches, 1.4T tokens.

Valid, not runnable on a laptop. Check the fit first, then launch on a pod:
    python -m pretrain_jax.train --config=configs/llama_33b.py --workdir=gs://BUCKET/llama_33b
"""

from configs import base


def get_config():
    c = base.get_config()
    c.model.update(dim=6656, num_layers=60, num_heads=52, num_kv_heads=52, mlp_dim=17920, dtype="bfloat16")
    c.optimizer.peak_learning_rate = 1.5e-4
    c.num_train_steps = 350_000  # 1.4T tokens at 4M per step
    c.mesh.update(data=1, fsdp=-1)  # FSDP across all devices
    return c
