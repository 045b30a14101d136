"""The two-stage example (launch/two_stage.sh): pretrain on one domain, anneal on another from a checkpoint.

    pretrain-jax train --config=configs/two_stage.py:pretrain --workdir=W/pretrain \
        --config.data.dir=DATA/general
    pretrain-jax train --config=configs/two_stage.py:anneal --workdir=W/anneal \
        --config.data.dir=DATA/gui --init_from=W/pretrain@500

pretrain: the demo model, 600 steps of warmup-stable-decay (WSD, the last 100 steps decaying
linearly to 10%): its step-500 checkpoint is still at the peak learning rate, as OLMo 2's
pretraining checkpoints are when mid-training starts from them. anneal: 100 steps from such a
checkpoint on another domain, starting at the learning rate the source had there and decaying
linearly to 0 (the OLMo 2 / OLMo 3 anneal), with fresh optimizer moments. On 2 CPU cores: about
3 and 1 minutes.
"""

import ml_collections

from configs import demo


def get_config(stage: str = "pretrain") -> ml_collections.ConfigDict:
    c = demo.get_config()
    c.keep_checkpoints = 10
    c.checkpoint_every = 100
    c.eval_every = 100
    c.generate.sample_every = 0
    if stage == "pretrain":
        c.num_train_steps = 600
        c.optimizer.update(schedule="wsd", warmup_steps=24, decay_steps=100)
    elif stage == "anneal":
        c.num_train_steps = 100
        c.optimizer.update(schedule="linear", warmup_steps=0, final_learning_rate_fraction=0.0)
        c.init.peak_from_source = True
        c.eval_every = 50
    else:
        raise ValueError(f"configs/two_stage.py:{stage}: choose pretrain or anneal")
    return c
