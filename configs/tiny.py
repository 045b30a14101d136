"""A tiny model for tests: compiles and trains in seconds on a CPU.

    pretrain-jax train --config=configs/tiny.py --workdir=/tmp/tiny --config.data.dir=DATA
"""

from configs import base


def get_config():
    c = base.get_config()
    c.model.update(vocab_size=512, dim=64, num_layers=2, num_heads=8, num_kv_heads=4, mlp_dim=128)
    c.seq_len = 64
    c.global_batch_size = 8
    c.num_train_steps = 10
    c.optimizer.update(peak_learning_rate=3e-3, warmup_steps=2)
    c.log_every = 1
    c.eval_every = 0
    c.eval_batches = 2
    c.checkpoint_every = 5
    c.peak_flops_per_device = 1e11  # a fixed figure: tests need no start-up measurement
    return c
