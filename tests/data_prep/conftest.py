"""Shared fixtures: real text from this Python's standard library (on every machine)."""

import json
import os
import re

import pytest
from array_record.python.array_record_module import ArrayRecordReader
from pydoc_data.topics import topics

from data_prep import classifier, corpora, readers, tokenizer
from data_prep.sampling import TRAIN, split_of
from pretrain_common import records

# A few hundred stdlib files (about 3 MB): real prose and code, quick to process.
STDLIB_FOLDERS = ("asyncio", "email", "encodings", "importlib", "json", "xml")
HELDOUT_FRACTION = 0.3  # of Language Reference topics (by id hash), which prose_model does not learn


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


def _blocks(text):
    return [block for block in re.split(r"\n\s*\n", text) if len(block.split()) >= 15]


@pytest.fixture(scope="session")
def prose_model(tmp_path_factory, stdlib_folders):
    """A quality model that prefers prose: Language Reference topics (`pydoc_data.topics`, 70% by id hash)
    against blank-line blocks of stdlib source (asyncio, importlib)."""
    prose = [b for name, text in sorted(topics.items()) if split_of(name, HELDOUT_FRACTION, 0) == TRAIN
             for b in _blocks(text) if not b[0].isspace()]
    code = [b for folder in (stdlib_folders[0], stdlib_folders[3])
            for doc in readers.read_files("stdlib", *readers.list_files(folder))
            if isinstance(doc, readers.Document) for b in _blocks(doc.text)]
    path = str(tmp_path_factory.mktemp("quality") / "quality.npz")
    classifier.train(prose + code, [1] * len(prose) + [0] * len(code)).save(path)
    return path


@pytest.fixture(scope="session")
def prose_and_code(tmp_path_factory, stdlib_folders):
    """Two inputs prose_model has not seen: the held-out topics (prose) and the stdlib email package (code)."""
    folder = tmp_path_factory.mktemp("prose")
    heldout = [text for name, text in sorted(topics.items()) if split_of(name, HELDOUT_FRACTION, 0) != TRAIN]
    (folder / "topics.jsonl").write_text("".join(json.dumps({"text": text}) + "\n" for text in heldout))
    return [f"prose={folder}", f"code={stdlib_folders[1]}"]
