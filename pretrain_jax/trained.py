"""A trained model read back from its workdir: config, parameters and tokenizer.

Training writes config.json and tokenizer.model beside its checkpoints, so a
workdir alone is enough to generate from, evaluate, fine-tune or export a model,
with no need to remember the config file, its overrides or the dataset folder.
The workdir may be local or remote (gs://...): its files go through etils.epath, its
checkpoints through orbax.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Callable, Sequence
from typing import Any

import jax
import ml_collections
import sentencepiece as spm
from etils import epath
from jax.sharding import Mesh

from configs import base
from data_prep import records
from data_prep.errors import ConfigError
from pretrain_jax import checkpointing, optimizer, sharding, train_state

# The model keys that shape the parameter tree: a workdir's checkpoints restore only under the same values.
PARAMETER_KEYS = ("vocab_size", "dim", "num_layers", "num_heads", "num_kv_heads", "head_dim", "mlp_dim",
                  "tie_embeddings", "scan_layers")
CONFIG_FILE = "config.json"
TOKENIZER_FILE = "tokenizer.model"
CHECKPOINTS = "checkpoints"


def save_run_files(config: ml_collections.ConfigDict, workdir: str) -> None:
    """config.json and the dataset's tokenizer.model in `workdir` (process 0; rewritten on each start)."""
    if jax.process_index() != 0:
        return
    epath.Path(workdir).mkdir(parents=True, exist_ok=True)
    _write_atomically(epath.Path(workdir) / CONFIG_FILE, config.to_json(indent=2).encode("utf-8"))
    metadata = records.read_metadata(config.data.dir)
    with open(os.path.join(config.data.dir, metadata.tokenizer), "rb") as f:
        _write_atomically(epath.Path(workdir) / TOKENIZER_FILE, f.read())


def _write_atomically(path: epath.Path, data: bytes) -> None:
    """A reader sees the old file or the new one, never a part (a rename, where the filesystem has one)."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    tmp.replace(path)


def load_config(workdir: str) -> ml_collections.ConfigDict:
    """The config a run trained with: the schema's defaults updated by its config.json."""
    path = epath.Path(workdir) / CONFIG_FILE
    if not path.exists():
        raise FileNotFoundError(f"{path} not found: is {workdir} the --workdir of a training run?")
    config = base.get_config()
    config.update(json.loads(path.read_text(encoding="utf-8")))
    return config


def check_same_parameters(config: ml_collections.ConfigDict, workdir: str) -> None:
    """Raises ConfigError when `workdir` holds a run whose parameters `config.model` does not shape alike."""
    if not (epath.Path(workdir) / CONFIG_FILE).exists():
        return
    saved = load_config(workdir).model
    differ = [key for key in PARAMETER_KEYS if saved[key] != config.model[key]]
    if differ:
        raise ConfigError(f"{workdir} holds a run with other parameter shapes (its {CONFIG_FILE}): "
                          + ", ".join(f"model.{k}={saved[k]!r}, not {config.model[k]!r}" for k in differ)
                          + "; pass " + " ".join(f"--config.model.{k}={saved[k]}" for k in differ)
                          + " or use another --workdir")


def _restore(config: ml_collections.ConfigDict, workdir: str, mesh: Mesh, read: Callable) -> Any:
    """read(read-only Checkpointer, abstract TrainState placed on `mesh`)."""
    tx = optimizer.make_optimizer(config.optimizer, config.num_train_steps)
    abstract = train_state.abstract_state(config.model, tx, train_state.state_shardings(config.model, tx, mesh))
    ckpt = checkpointing.Checkpointer(os.path.join(workdir, CHECKPOINTS), every=0, keep=None)
    try:
        return read(ckpt, abstract)
    finally:
        ckpt.close()


def restore_state(config: ml_collections.ConfigDict, workdir: str, mesh: Mesh,
                  data_iterator: Any = None) -> train_state.TrainState | None:
    """The newest checkpointed state of a run, placed on `mesh` (see Checkpointer.restore_latest)."""
    return _restore(config, workdir, mesh, lambda ckpt, abstract: ckpt.restore_latest(abstract, data_iterator))


def restore_params(config: ml_collections.ConfigDict, workdir: str, mesh: Mesh) -> tuple[Any, int] | None:
    """(parameters, step) of the run's newest checkpoint, placed on `mesh`; None if it has none."""
    return _restore(config, workdir, mesh, lambda ckpt, abstract: ckpt.restore_latest_params(abstract.params))


@dataclasses.dataclass(frozen=True)
class Trained:
    config: ml_collections.ConfigDict
    params: Any  # unboxed parameter pytree, as model.apply takes it
    tokenizer: spm.SentencePieceProcessor
    step: int


def load(workdir: str, devices: Sequence[jax.Device] | None = None) -> Trained:
    """The parameters (no optimizer state) of the newest checkpoint in `workdir`, on `devices` (default: the
    first local device)."""
    config = load_config(workdir)
    devices = list(devices) if devices is not None else jax.local_devices()[:1]
    mesh = sharding.make_mesh(base.get_config().mesh, devices)  # the default: data parallel, any device count
    restored = restore_params(config, workdir, mesh)
    if restored is None:
        raise FileNotFoundError(f"no checkpoint in {os.path.join(workdir, CHECKPOINTS)}")
    sp = spm.SentencePieceProcessor(model_proto=(epath.Path(workdir) / TOKENIZER_FILE).read_bytes())
    return Trained(config=config, params=restored[0], tokenizer=sp, step=restored[1])
