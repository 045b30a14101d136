"""pretrain_jax: the model, the train loop, checkpoints, evaluation and scaling laws."""

from pretrain_jax import host_memory

host_memory.retain_freed_memory()  # before jax starts threads; see host_memory
