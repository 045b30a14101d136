"""Every data_prep config key, with its default and meaning; other data configs override these.

Run: python -m data_prep prepare --config=configs/data/base.py \
         --config.inputs='("web=/data/crawl",)' --config.output_dir=/data/prepared
"""

import ml_collections


def get_config() -> ml_collections.ConfigDict:
    c = ml_collections.ConfigDict()
    # What to read: paths to files or folders (read recursively), or corpus names
    # ("python-stdlib"); `name=path` names the source, else it is the folder's name.
    c.inputs = ()
    c.output_dir = ""  # where the shards, tokenizer.model, metadata.json and report.json go
    c.overwrite = False  # replace a dataset already in output_dir
    c.vocab_size = 32000  # tokenizer vocabulary, 259 of it special and byte pieces (Llama 2: 32000)
    c.seq_len = 2048  # tokens per packed record, documents and separators laid end to end
    c.validation_fraction = 0.01  # share of documents (by id hash) held out for validation
    c.num_train_shards = 8  # ArrayRecord files for train: contiguous, equal document ranges
    c.num_validation_shards = 1  # ArrayRecord files for validation; 0 when validation_fraction is 0
    c.seed = 0  # of the split and the tokenizer sample; the same seed gives the same dataset
    c.num_workers = 0  # tokenizer processes; 0 = every core this process may use
    c.tokenizer_sample_bytes = 200_000_000  # UTF-8 text of train documents the tokenizer learns from
    c.tokenizer_max_lines = 10_000_000  # cap on lines (SentencePiece sentences) in that sample
    return c
