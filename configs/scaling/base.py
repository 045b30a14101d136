"""The sweep config schema (`pretrain-jax scaling sweep`): every key, its default and why.

A sweep is a grid of training runs, each the training config file `train_config`
with `overrides`, one model size and one budget. Sweep configs start from
`get_config()` here and set what differs (configs/scaling/stdlib.py).
"""

import ml_collections


def get_config() -> ml_collections.ConfigDict:
    c = ml_collections.ConfigDict()
    c.train_config = "configs/demo.py"  # the training config file every run starts from
    c.overrides = ()  # (key, value) pairs set on every run, e.g. ("data.dir", "data/scaling")
    c.sizes = ()  # model sizes: (dim, num_layers, num_heads, num_kv_heads, mlp_dim) each
    # Budgets, exactly one of the two. IsoFLOP profiles (Hoffmann et al. 2022, approach 2): every size is
    # trained for C / (FLOPs per token) tokens of each compute budget C, in FLOPs. A grid: every size is
    # trained for each number of tokens.
    c.compute_budgets = ()
    c.token_budgets = ()
    c.learning_rates = ()  # peak learning rates tried in every cell; empty: the training config's
    c.batch_sizes = ()  # global batch sizes (rows) tried in every cell; empty: the training config's
    c.warmup_fraction = 0.05  # warmup steps as a fraction of each run; the cosine decay spans the whole run
    # Runs left out of every fit, to test the fits' predictions: ((dim, layers, heads, kv_heads, mlp_dim), budget)
    # with the budget in the sweep's unit (FLOPs or tokens).
    c.holdout = ()
    c.flops_per_second = 2.0e10  # assumed achieved FLOP/s, only for the duration estimate printed at the start
    return c
