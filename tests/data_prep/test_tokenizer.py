"""tokenizer: the Llama recipe (digits split, byte fallback, lossless) and parallel encoding."""

import os

import numpy as np
import pytest

from data_prep import tokenizer
from pretrain_common.errors import ConfigError


@pytest.fixture(scope="module")
def sp(tokenizer_path):
    return tokenizer.load_tokenizer(tokenizer_path)


def test_model_is_written_under_its_standard_name(tokenizer_path):
    assert os.path.basename(tokenizer_path) == tokenizer.TOKENIZER_FILE
    assert sorted(os.listdir(os.path.dirname(tokenizer_path))) == [tokenizer.TOKENIZER_FILE]


def test_vocab_size_and_special_ids_follow_the_config(sp):
    assert sp.vocab_size() == 1000
    assert (sp.unk_id(), sp.bos_id(), sp.eos_id(), sp.pad_id()) == (0, 1, 2, -1)


def test_numbers_are_split_into_single_digits(sp):
    pieces = sp.encode("port 8080 and 1234567", out_type=str)
    digits = [p.lstrip("▁") for p in pieces if any(c.isdigit() for c in p)]
    assert digits == list("80801234567")


@pytest.mark.parametrize("text", ["naïve café 🙂 ∑ 漢字", "def f():\n\tif x:\n        return  {1: 2}\n\n"])
def test_any_text_round_trips_exactly(sp, text):
    assert sp.decode(sp.encode(text)) == text
    assert sp.unk_id() not in sp.encode(text)


def test_unseen_characters_fall_back_to_bytes(sp):
    assert sp.encode("🙂", out_type=str)[-4:] == ["<0xF0>", "<0x9F>", "<0x99>", "<0x82>"]


def test_training_lines_skip_blank_lines_and_respect_the_cap():
    texts = ["a\n\n  \nb", "c\nd"]
    assert list(tokenizer.training_lines(texts, max_lines=3)) == ["a", "b", "c"]


def test_parallel_encoding_matches_serial_and_ends_each_document_with_eos(sp, tokenizer_path, stdlib_texts):
    texts = stdlib_texts[:60] + ["", "x"]
    encoded = list(tokenizer.encode_documents(tokenizer_path, texts, num_workers=2))
    assert len(encoded) == len(texts)
    for text, ids in zip(texts, encoded):
        assert ids.dtype == np.int32
        assert ids.tolist() == sp.encode(text) + [sp.eos_id()]


def test_the_model_bytes_do_not_depend_on_the_number_of_threads(tmp_path, stdlib_texts):
    models = []
    for threads in (1, 2):
        folder = tmp_path / str(threads)
        folder.mkdir()
        lines = tokenizer.training_lines(stdlib_texts[:100], max_lines=20_000)
        with open(tokenizer.train_tokenizer(lines, str(folder), vocab_size=400, num_threads=threads), "rb") as f:
            models.append(f.read())
    assert models[0] == models[1]
    assert tokenizer.load_tokenizer(str(tmp_path / "1" / tokenizer.TOKENIZER_FILE)).vocab_size() == 400


def test_a_vocabulary_larger_than_the_sample_supports_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match=r"config.vocab_size=5000 .* supports at most \d+"):
        tokenizer.train_tokenizer(["hello world", "abc def"] * 50, str(tmp_path), vocab_size=5000, num_threads=1)
