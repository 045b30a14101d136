"""The `make demo` model: a small Llama trained on this machine's Python standard library.

    data-prep run --config=configs/data/demo.py --config.output_dir=data/demo
    pretrain-jax train --config=configs/demo.py --workdir=workdirs/demo --config.data.dir=data/demo

About 1.8M parameters (4 layers, width 128, GQA 4/2 heads, 8k vocabulary, tied
head) on 256-token rows. On 2 CPU cores: a few minutes; the validation loss
ends far below the corpus's unigram entropy.
"""

from configs import base


def get_config():
    c = base.get_config()
    c.model.update(vocab_size=8000, dim=128, num_layers=4, num_heads=4, num_kv_heads=2, mlp_dim=384,
                   tie_embeddings=True)
    # Unrolled: on CPU its steps are faster and, at a few layers, so is its compile (BENCHMARKS.md,
    # "Compile time against depth"); base.py scans, which keeps compile time flat in depth on TPU and GPU.
    c.model.scan_layers = False
    c.data.dir = "data/demo"
    c.seq_len = 256
    c.global_batch_size = 8
    c.num_train_steps = 240
    c.optimizer.update(peak_learning_rate=3e-3, warmup_steps=24)
    c.log_every = 20
    c.eval_every = 80
    c.eval_batches = 0  # the whole validation split
    c.checkpoint_every = 80
    c.generate.update(sample_every=80, prompts=("def ", "import ", "class "))  # at each validation pass
    return c
