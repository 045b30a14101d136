"""A small real dataset for training tests: part of this Python's standard library, prepared once."""

import os

import jax
import pytest

from configs import tiny
from configs.data import base as data_base
from data_prep import corpora, prepare, records
from pretrain_jax import input_pipeline, sharding, trained

STDLIB_FOLDERS = ("json", "email", "importlib", "asyncio")


@pytest.fixture(scope="session")
def tiny_dataset(tmp_path_factory) -> str:
    """Prepared with the tiny config's vocabulary and sequence length."""
    root, _ = corpora.python_stdlib_files()
    config = data_base.get_config()
    config.inputs = tuple(os.path.join(root, folder) for folder in STDLIB_FOLDERS)
    config.output_dir = str(tmp_path_factory.mktemp("tiny_dataset"))
    train_config = tiny.get_config()
    config.vocab_size = train_config.model.vocab_size
    config.seq_len = train_config.seq_len
    config.validation_fraction = 0.05
    config.num_train_shards = 2
    config.num_workers = 1  # no fork of this JAX-threaded process (see data_prep/curate.py)
    prepare.prepare(config)
    return config.output_dir


@pytest.fixture
def tiny_config(tiny_dataset):
    config = tiny.get_config()
    config.data.dir = tiny_dataset
    return config


@pytest.fixture
def restore():
    """(config, workdir, with_data=True) -> (latest state, the batch tokens its data iterator yields next).

    Reads on one device. Without data, only the state is read (any process count wrote it)
    and the second item is None.
    """

    def read(config, workdir, with_data=True):
        mesh = sharding.make_mesh(config.mesh, jax.devices()[:1])
        iterator = (input_pipeline.train_iterator(config, records.read_metadata(config.data.dir))
                    if with_data else None)
        state = trained.restore_state(config, workdir, mesh, iterator)
        return state, next(iterator)["tokens"] if with_data else None

    return read


@pytest.fixture(scope="session")
def tiny_run(tiny_dataset, tmp_path_factory) -> str:
    """The workdir of a finished 10-step tiny run: checkpoints, config.json, tokenizer.model."""
    from pretrain_jax import train

    config = tiny.get_config()
    config.data.dir = tiny_dataset
    workdir = str(tmp_path_factory.mktemp("tiny_run"))
    train.train(config, workdir, jax.devices()[:1])
    return workdir
