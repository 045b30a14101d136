"""A mixture end to end: prepare two real sources with weights, then the training data draws rows at those weights.

The sources differ in kind and size: 30 Python documentation pages (HTML, extracted)
and the stdlib `email` package (plain text). The weights put a quarter of the rows
on the docs, far from their share of the tokens, so only the loader's mixing can
produce the proportions checked here.
"""

import tarfile

import grain
import numpy as np
import pytest

from configs import tiny
from configs.data import base
from data_prep import prepare
from pretrain_common import records
from pretrain_jax import train_data

DOCS_PAGES = 30
WEIGHTS = {"docs": 0.25, "code": 0.75}  # the docs hold about 64% of the tokens
BATCHES = 60  # of 8 rows: 480 rows drawn


@pytest.fixture(scope="module")
def mixed_dataset(shared_corpora, stdlib_folders, tmp_path_factory):
    folder = tmp_path_factory.mktemp("docs")
    with tarfile.open(shared_corpora / "python-3.11-docs-html.tar.xz", "r:xz") as tar:
        library = sorted((m for m in tar.getmembers() if m.name.startswith("python-3.11-docs-html/library/")),
                         key=lambda m: m.name)
        tar.extractall(folder, members=library[::len(library) // DOCS_PAGES][:DOCS_PAGES], filter="data")
    train = tiny.get_config()
    config = base.get_config()
    config.update(dict(inputs=(f"docs={folder}", f"code={stdlib_folders[1]}"), stages=("extract",),
                       output_dir=str(tmp_path_factory.mktemp("mixed")), vocab_size=train.model.vocab_size,
                       seq_len=train.seq_len, validation_fraction=0.0, num_validation_shards=0, num_train_shards=4,
                       num_workers=2))
    config.mixture.weights = tuple(WEIGHTS.items())
    prepare.prepare(config)
    return config.output_dir


def _source_of_rows(data_dir, metadata):
    """Each train row's bytes, as batches show them (padding as 0), to the source whose shards hold it."""
    source_of = {}
    for name in metadata.mixture["train"]:
        source = grain.sources.ArrayRecordDataSource(metadata.shard_paths(data_dir, "train", name))
        source_of.update({np.maximum(records.decode_sequence(source[i]), 0).tobytes(): name
                          for i in range(len(source))})
    return source_of


def test_the_loader_draws_each_source_at_its_prepared_weight(mixed_dataset):
    metadata = records.read_metadata(mixed_dataset)
    sources = metadata.mixture["train"]
    assert {name: info.weight for name, info in sources.items()} == WEIGHTS
    token_share = sources["docs"].tokens / sum(info.tokens for info in sources.values())
    assert abs(token_share - WEIGHTS["docs"]) > 0.2  # unmixed reading would be far off
    config = tiny.get_config()
    config.data.dir = mixed_dataset
    iterator = train_data.TrainData(config, metadata)
    rows = np.concatenate([next(iterator)["tokens"] for _ in range(BATCHES)])
    source_of = _source_of_rows(mixed_dataset, metadata)
    drawn = [source_of[row.tobytes()] for row in rows]
    assert abs(drawn.count("docs") / len(drawn) - WEIGHTS["docs"]) < 0.03
    docs_rows = rows[[name == "docs" for name in drawn]]
    assert len(set(map(bytes, docs_rows))) == len(docs_rows)  # within an epoch, no row is drawn twice
