"""Shared fixtures: real text from this Python's standard library (on every machine)."""

import os

import pytest
from array_record.python.array_record_module import ArrayRecordReader

from data_prep import corpora, readers, tokenizer
from pretrain_common import records

# A few hundred stdlib files (about 3 MB): real prose and code, quick to process.
STDLIB_FOLDERS = ("asyncio", "email", "encodings", "importlib", "json", "xml")


@pytest.fixture(scope="session")
def stdlib_folders():
    root, _ = corpora.python_stdlib_files()
    return [os.path.join(root, folder) for folder in STDLIB_FOLDERS]


@pytest.fixture(scope="session")
def stdlib_texts(stdlib_folders):
    texts = []
    for folder in stdlib_folders:
        root, files = readers.list_files(folder)
        texts += [r.text for r in readers.read_files("stdlib", root, files) if not isinstance(r, readers.Dropped)]
    return texts


@pytest.fixture(scope="session")
def tokenizer_path(tmp_path_factory, stdlib_texts):
    """A small tokenizer trained with the project recipe on stdlib text."""
    folder = tmp_path_factory.mktemp("tokenizer")
    lines = tokenizer.training_lines(stdlib_texts, max_lines=200_000)
    return tokenizer.train_tokenizer(lines, str(folder), vocab_size=1000, num_threads=2)


@pytest.fixture(scope="session")
def read_shard():
    """A function from a shard's path to its records, as int32 arrays."""

    def read(path):
        reader = ArrayRecordReader(path)
        try:
            return [records.decode_sequence(r) for r in reader.read_all()]
        finally:
            reader.close()

    return read
