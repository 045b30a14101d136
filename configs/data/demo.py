"""The demo dataset: this machine's Python standard library, ready for a tiny model.

Run: data-prep run --config=configs/data/demo.py --config.output_dir=/tmp/demo-data
On 2 CPU cores (Python 3.12): 751 files (12.1 MB), 3 empty and 4 exact duplicates removed, 735 train
and 9 validation documents, 3.6M train tokens in 13,894 sequences of 256 and 55K validation
tokens, in 10 to 30 s.

Curation is read + exact dedup only: the corpus is Python source code, which the
prose filters (Gopher, C4, FineWeb) and English language ID would nearly all drop.
configs/data/fineweb.py is the full recipe for web pages.
"""

import ml_collections

from configs.data import base


def get_config() -> ml_collections.ConfigDict:
    c = base.get_config()
    c.inputs = ("python-stdlib",)  # real text every machine has (data_prep/corpora.py)
    c.stages = ("exact_dedup",)  # a few stdlib modules are byte-identical copies
    c.vocab_size = 8000  # a few-million-parameter model cannot afford a large embedding
    c.seq_len = 256  # short contexts: CPU steps stay fast
    c.validation_fraction = 0.02  # about 10 files: enough for a stable loss estimate
    c.num_train_shards = 2
    return c
