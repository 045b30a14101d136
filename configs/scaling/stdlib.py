"""A CPU scaling sweep on this machine's Python standard library: 6 model sizes x 3 IsoFLOP budgets,
and one larger held-out run that the fits must predict.

    data-prep run --config=configs/data/demo.py --config.output_dir=data/scaling \
        --config.vocab_size=1024
    pretrain-jax scaling sweep --config=configs/scaling/stdlib.py --root=workdirs/scaling
    pretrain-jax scaling fit --root=workdirs/scaling --tolerance=0.03
    pretrain-jax scaling plot --root=workdirs/scaling --out=docs/scaling

Data: the demo corpus with a 1,024-token vocabulary (5.19M train and 79K validation
tokens): with 8,000 tokens the tied embedding alone would outweigh every model here.
Models: 40K to 770K parameters (N of 6N, tied head included), MHA with 16-wide heads
(12-wide at dim 24), Llama MLP width. Budgets 1e12, 2e12 and 4e12 FLOPs give every size
0.2 to 260 tokens per parameter, so each IsoFLOP profile has models on both sides of its
minimum. 1,024 tokens a step: with 4,096 (batch 16) the larger models got 42 to 670 steps
and loss rose with N at every budget, so no profile had a minimum. The held-out run is
larger than every fitted one in N (957K) and in compute (6e12).
Cost: 4.8e13 FLOPs in all, 19 runs; measured 30 minutes on 2 cores (2026-12-01), with
layers scanned (configs/demo.py has since unrolled them, faster on CPU).
Results: docs/scaling.md; figures in docs/scaling/.
"""

from configs.scaling import base


def get_config():
    c = base.get_config()
    c.train_config = "configs/demo.py"
    c.overrides = (
        ("data.dir", "data/scaling"),
        ("model.vocab_size", 1024),
        ("global_batch_size", 4),  # 1,024 tokens a step: with 4,096 the larger models got too few steps (below)
        ("eval_every", 0),  # one validation pass, at the end: the loss every fit uses
        ("eval_batches", 0),  # the whole validation split (79K tokens)
        ("log_every", 50),
        ("checkpoint_every", 500),
        ("keep_checkpoints", 1),
        ("generate.sample_every", 0),  # no sample texts: time goes to training
    )
    c.sizes = (  # (dim, layers, heads, kv heads, mlp): N = 39K, 60K, 109K, 226K, 458K, 771K
        (24, 2, 2, 2, 72),  # 12-wide heads: the one size below 16
        (32, 2, 2, 2, 96),
        (48, 2, 3, 3, 144),
        (64, 3, 4, 4, 192),
        (96, 3, 6, 6, 288),
        (128, 3, 8, 8, 384),
    )
    c.compute_budgets = (1e12, 2e12, 4e12)
    c.holdout = (((144, 3, 9, 9, 432), 6e12),)  # N = 957K, 0.85M tokens
    c.flops_per_second = 2.0e10
    return c
