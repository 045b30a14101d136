"""A CPU scaling sweep on this machine's Python standard library: 5 model sizes x 3 IsoFLOP budgets,
and one larger held-out run that the fits must predict.

    python -m data_prep prepare --config=configs/data/demo.py --config.output_dir=data/scaling \
        --config.vocab_size=1024
    python -m pretrain_jax.scaling sweep --config=configs/scaling/stdlib.py --root=workdirs/scaling
    python -m pretrain_jax.scaling fit --root=workdirs/scaling --tolerance=0.03
    python -m pretrain_jax.scaling plot --root=workdirs/scaling --out=docs/scaling

Data: the demo corpus with a 1,024-token vocabulary (5.19M train and 79K validation
tokens): with 8,000 tokens the tied embedding alone would outweigh every model here.
Models: 60K to 770K parameters (N of 6N, tied head included), MHA with 16-wide heads,
Llama MLP width. Budgets 1e12, 2e12 and 4e12 FLOPs give every size 0.2 to 120 tokens per
parameter, so each IsoFLOP profile has models on both sides of its minimum (the smallest
model at 4e12 reads 7.2M tokens, 1.4 epochs of the corpus). The held-out
run is larger than every fitted one in N (957K) and in compute (6e12).
Cost: 4.1e13 FLOPs in all; at the demo's measured 1,900 tokens/s x 12.4 MFLOPs
(2.4e10 FLOP/s on 2 idle cores) about 29 minutes of training, plus compilation and a
full validation pass per run (16 runs); budgeted at 2e10 FLOP/s: about 35 minutes.
Results: to be filled in by running it (README, "Scaling laws").
"""

from configs.scaling import base


def get_config():
    c = base.get_config()
    c.train_config = "configs/demo.py"
    c.overrides = (
        ("data.dir", "data/scaling"),
        ("model.vocab_size", 1024),
        ("global_batch_size", 16),  # 4,096 tokens a step: fewer, larger steps than the demo's for small models
        ("eval_every", 0),  # one validation pass, at the end: the loss every fit uses
        ("eval_batches", 0),  # the whole validation split (79K tokens)
        ("log_every", 50),
        ("checkpoint_every", 500),
        ("keep_checkpoints", 1),
        ("generate.sample_every", 0),  # no sample texts: time goes to training
    )
    c.sizes = (  # (dim, layers, heads, kv heads, mlp): N = 60K, 109K, 226K, 458K, 771K
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
