"""A training workdir is enough to load the model back: config, parameters, tokenizer."""

import os

import jax
import numpy as np
import pytest

from configs import tiny
from pretrain_common import records
from pretrain_jax import trained


def test_load_gives_the_config_parameters_and_tokenizer_of_the_run(tiny_run, tiny_dataset, restore):
    model = trained.load(tiny_run)

    config = tiny.get_config()
    config.data.dir = tiny_dataset
    assert model.config.to_dict() == config.to_dict()
    assert model.step == config.num_train_steps
    state, _ = restore(config, tiny_run, with_data=False)
    jax.tree.map(np.testing.assert_array_equal, model.params, state.params)
    metadata = records.read_metadata(tiny_dataset)
    assert model.tokenizer.vocab_size() == metadata.vocab_size
    assert model.tokenizer.eos_id() == metadata.eos_id


def test_load_places_parameters_on_the_devices_given(tiny_run):
    devices = jax.devices()[:2]
    model = trained.load(tiny_run, devices)
    leaf = jax.tree.leaves(model.params)[0]
    assert set(leaf.sharding.device_set) == set(devices)


def test_a_folder_that_is_not_a_workdir_is_named_in_the_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="--workdir of a training run"):
        trained.load(str(tmp_path))


def test_a_workdir_without_checkpoints_is_an_error(tiny_run, tmp_path):
    for name in (trained.CONFIG_FILE, trained.TOKENIZER_FILE):
        os.link(os.path.join(tiny_run, name), tmp_path / name)
    with pytest.raises(FileNotFoundError, match="no checkpoint"):
        trained.load(str(tmp_path))
