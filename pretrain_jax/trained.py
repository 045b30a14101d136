"""A trained model read back from its workdir: config, parameters and tokenizer.

Training writes config.json and tokenizer.model beside its checkpoints, so a
workdir alone is enough to generate from, evaluate, fine-tune or export a model,
with no need to remember the config file, its overrides or the dataset folder.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
from collections.abc import Sequence
from typing import Any

import jax
import ml_collections
import sentencepiece as spm
from jax.sharding import Mesh

from configs import base
from data_prep import records
from data_prep import tokenizer as tokenizer_lib
from pretrain_jax import checkpointing, optimizer, sharding, train_state

CONFIG_FILE = "config.json"
TOKENIZER_FILE = "tokenizer.model"
CHECKPOINTS = "checkpoints"


def save_run_files(config: ml_collections.ConfigDict, workdir: str) -> None:
    """config.json and the dataset's tokenizer.model in `workdir` (process 0; rewritten on each start)."""
    if jax.process_index() != 0:
        return
    os.makedirs(workdir, exist_ok=True)
    _write_atomically(os.path.join(workdir, CONFIG_FILE), config.to_json(indent=2).encode("utf-8"))
    metadata = records.read_metadata(config.data.dir)
    tokenizer_path = os.path.join(workdir, TOKENIZER_FILE)
    shutil.copyfile(os.path.join(config.data.dir, metadata.tokenizer), tokenizer_path + ".tmp")
    os.replace(tokenizer_path + ".tmp", tokenizer_path)


def _write_atomically(path: str, data: bytes) -> None:
    with open(path + ".tmp", "wb") as f:
        f.write(data)
    os.replace(path + ".tmp", path)


def load_config(workdir: str) -> ml_collections.ConfigDict:
    """The config a run trained with: the schema's defaults updated by its config.json."""
    path = os.path.join(workdir, CONFIG_FILE)
    if not os.path.exists(path):
        raise FileNotFoundError(f"{path} not found: is {workdir} the --workdir of a training run?")
    config = base.get_config()
    with open(path, encoding="utf-8") as f:
        config.update(json.load(f))
    return config


def restore_state(config: ml_collections.ConfigDict, workdir: str, mesh: Mesh,
                  data_iterator: Any = None) -> train_state.TrainState | None:
    """The newest checkpointed state of a run, placed on `mesh` (see Checkpointer.restore_latest)."""
    tx = optimizer.make_optimizer(config.optimizer, config.num_train_steps)
    shardings = train_state.state_shardings(config.model, tx, mesh)
    ckpt = checkpointing.Checkpointer(os.path.join(workdir, CHECKPOINTS), every=0, keep=None)  # reads only
    try:
        return ckpt.restore_latest(train_state.abstract_state(config.model, tx, shardings), data_iterator)
    finally:
        ckpt.close()


@dataclasses.dataclass(frozen=True)
class Trained:
    config: ml_collections.ConfigDict
    params: Any  # unboxed parameter pytree, as model.apply takes it
    tokenizer: spm.SentencePieceProcessor
    step: int


def load(workdir: str, devices: Sequence[jax.Device] | None = None) -> Trained:
    """The newest checkpoint of the run in `workdir`, on `devices` (default: the first local device)."""
    config = load_config(workdir)
    devices = list(devices) if devices is not None else jax.local_devices()[:1]
    mesh = sharding.make_mesh(base.get_config().mesh, devices)  # the default: data parallel, any device count
    state = restore_state(config, workdir, mesh)
    if state is None:
        raise FileNotFoundError(f"no checkpoint in {os.path.join(workdir, CHECKPOINTS)}")
    sp = tokenizer_lib.load_tokenizer(os.path.join(workdir, TOKENIZER_FILE))
    return Trained(config=config, params=state.params, tokenizer=sp, step=int(state.step))
