"""The tiny test model as a masked LM (bidirectional, BERT masking): trains in seconds on a CPU.

    pretrain-jax train --config=configs/tiny_mlm.py --workdir=/tmp/tiny_mlm --config.data.dir=DATA

DATA prepared with a 512-piece tokenizer (as for configs/tiny.py): id 512 is the mask token.
"""

from configs import tiny


def get_config():
    c = tiny.get_config()
    c.model.update(vocab_size=513, causal=False)  # the tokenizer's 512 ids + the mask
    c.objective = "masked_lm"
    return c
