"""BERT-base's shape (Devlin et al. 2019, section 3: L=12, H=768, A=12) trained as a masked LM.

    data-prep run --config=configs/data/base.py --config.inputs='("/data/text",)' \
        --config.output_dir=/data/bert --config.vocab_size=30521 --config.seq_len=512
    pretrain-jax train --config=configs/bert_base.py --workdir=/runs/bert --config.data.dir=/data/bert

The blocks stay this codebase's (pre-norm RMSNorm, RoPE, SwiGLU with hidden width
3072, so each MLP has 1.5x BERT's weights): 136.7M parameters (BERT-base: 110M)
with a tied vocabulary of BERT's size, 30,522 ids, whose last is the mask token
(a 30,521-piece tokenizer + 1). Optimizer from the paper (appendix A.2): Adam lr 1e-4, b2 0.999,
weight decay 0.01, 10k warmup steps, 256 x 512-token batches, 1M steps (BERT
trained most steps at 128 tokens; this runs 512 throughout and decays by cosine,
not linearly, to 0).
"""

from configs import base


def get_config():
    c = base.get_config()
    c.model.update(vocab_size=30522, dim=768, num_layers=12, num_heads=12, num_kv_heads=12, mlp_dim=3072,
                   tie_embeddings=True, causal=False)
    c.objective = "masked_lm"
    c.seq_len = 512
    c.global_batch_size = 256
    c.num_train_steps = 1_000_000
    c.optimizer.update(peak_learning_rate=1e-4, warmup_steps=10_000, b2=0.999, weight_decay=0.01,
                       final_learning_rate_fraction=0.0)
    return c
