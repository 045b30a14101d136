"""The tokenizer of a prepared dataset: its file name, the special ids every model relies on, and its loader.

data_prep trains it (data_prep/tokenizer.py) and pretrain_jax reads it (masks, generation,
evaluation, export): both go through this module.
"""

from __future__ import annotations

import sentencepiece as spm

TOKENIZER_FILE = "tokenizer.model"

# The settings of the Llama 2 tokenizer (Touvron et al. 2023, section 2.1), as stored in
# its tokenizer.model: byte fallback means no text is ever unknown, split digits
# means numbers are read digit by digit, and identity normalization with kept
# whitespace means decode(encode(text)) == text, code indentation included.
LLAMA_RECIPE = dict(
    model_type="bpe",
    split_digits=True,
    byte_fallback=True,
    allow_whitespace_only_pieces=True,
    character_coverage=0.99995,
    max_sentencepiece_length=16,
    normalization_rule_name="identity",
    remove_extra_whitespaces=False,
    add_dummy_prefix=True,
    unk_id=0,
    bos_id=1,
    eos_id=2,
    pad_id=-1,
)


def load_tokenizer(path: str) -> spm.SentencePieceProcessor:
    return spm.SentencePieceProcessor(model_file=path)
