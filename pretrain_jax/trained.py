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
from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import sentencepiece as spm
from etils import epath
from jax.sharding import Mesh

from pretrain_common import records
from pretrain_common.errors import ConfigError
from pretrain_jax import checkpointing, optimizer, sharding, train_state
from pretrain_jax import schema as base

# The model keys that shape the parameter tree: a workdir's checkpoints restore only under the same values.
PARAMETER_KEYS = ("vocab_size", "dim", "num_layers", "num_heads", "num_kv_heads", "head_dim", "mlp_dim",
                  "tie_embeddings", "scan_layers", "qk_norm")
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


def shape_differences(saved: ml_collections.ConfigDict, config: ml_collections.ConfigDict) -> list[str]:
    """The keys on which two configs' training states differ in shape: model shapes, EMA on or off, spike window."""
    keys = [f"model.{k}" for k in PARAMETER_KEYS] + ["spike.window"]
    value = lambda c, key: c.model[key[6:]] if key.startswith("model.") else c.spike[key[6:]]  # noqa: E731
    differ = [f"{k}={value(saved, k)!r}, not {value(config, k)!r}" for k in keys if value(saved, k) != value(config, k)]
    if (saved.ema_decay > 0) != (config.ema_decay > 0):
        differ.append(f"ema_decay={saved.ema_decay!r}, not {config.ema_decay!r} (EMA on in one, off in the other)")
    return differ


def check_same_parameters(config: ml_collections.ConfigDict, workdir: str) -> None:
    """Raises ConfigError when `workdir` holds a run whose training state `config` does not shape alike."""
    if not (epath.Path(workdir) / CONFIG_FILE).exists():
        return
    differ = shape_differences(load_config(workdir), config)
    if differ:
        fixes = " ".join(f"--config.{d.split(',')[0]}" for d in differ)
        raise ConfigError(f"{workdir} holds a run with another state shape (its {CONFIG_FILE}): "
                          + "; ".join(differ) + f"; pass {fixes} or use another --workdir")


def _reader(workdir: str) -> checkpointing.Checkpointer:
    return checkpointing.Checkpointer(os.path.join(workdir, CHECKPOINTS), every=0, keep=None)


def restore_state(config: ml_collections.ConfigDict, workdir: str, mesh: Mesh, data_iterator: Any = None,
                  step: int | None = None) -> train_state.TrainState | None:
    """A run's checkpointed state at `step` (default: the newest), placed on `mesh` (Checkpointer.restore)."""
    ckpt = _reader(workdir)
    try:
        return ckpt.restore(train_state.setup(config, mesh).abstract, data_iterator, step)
    finally:
        ckpt.close()


def restore_params(config: ml_collections.ConfigDict, workdir: str, mesh: Mesh, step: int | None = None,
                   ema: bool = False) -> tuple[Any, int] | None:
    """(parameters, step) of a run's checkpoint at `step` (default: the newest), placed on `mesh`; None if it
    has none. With `ema`, its exponential moving average of the parameters (config.ema_decay) instead."""
    field = "ema_params" if ema else "params"
    if ema and not config.ema_decay > 0:
        raise ConfigError(f"{workdir} was trained without an EMA of its parameters (ema_decay=0): there is none "
                          "to read")
    ckpt = _reader(workdir)
    try:
        if step is not None and step not in ckpt.all_steps():
            raise ConfigError(f"{workdir} has no checkpoint at step {step}; it has steps {ckpt.all_steps()}")
        restored = ckpt.restore_parts({field: train_state.setup(config, mesh).abstract.params}, step)
    finally:
        ckpt.close()
    return None if restored is None else (restored[0][field], restored[1])


def parse_source(text: str) -> tuple[str, int | None]:
    """'WORKDIR[@STEP]' -> (workdir, step or None for the newest checkpoint)."""
    workdir, at, step = text.rpartition("@") if "@" in text else (text, "", "")
    if at and not step.isdigit():
        raise ConfigError(f"{text!r}: expected WORKDIR or WORKDIR@STEP with STEP a checkpoint's step number")
    return workdir, int(step) if at else None


def source_step(text: str) -> tuple[str, int]:
    """(workdir, step) of 'WORKDIR[@STEP]', the newest checkpoint's step when none is given."""
    workdir, step = parse_source(text)
    if not (epath.Path(workdir) / CONFIG_FILE).exists():
        raise ConfigError(f"{workdir} is not the --workdir of a training run (no {CONFIG_FILE})")
    ckpt = _reader(workdir)
    try:
        steps = ckpt.all_steps()
    finally:
        ckpt.close()
    if not steps or (step is not None and step not in steps):
        raise ConfigError(f"{workdir} has no checkpoint" + (f" at step {step}; it has steps {steps}" if steps else ""))
    return workdir, steps[-1] if step is None else step


def latest_step(workdir: str) -> int | None:
    ckpt = _reader(workdir)
    try:
        return ckpt.latest_step()
    finally:
        ckpt.close()


def learning_rate_at(workdir: str, step: int) -> float:
    """The learning rate a run's optimizer had at the checkpoint of `step` (its schedule at the updates taken)."""
    config = load_config(workdir)
    ckpt = _reader(workdir)
    scalar = jax.ShapeDtypeStruct((), jnp.int32)
    try:
        counters, _ = ckpt.restore_parts({"step": scalar, "nonfinite_total": scalar, "spikes_total": scalar}, step)
    finally:
        ckpt.close()
    updates = int(counters["step"]) - int(counters["nonfinite_total"]) - int(counters["spikes_total"])
    return float(optimizer.learning_rate_schedule(config.optimizer, config.num_train_steps)(updates))


def check_source(config: ml_collections.ConfigDict, source: str, step: int) -> None:
    """Refuses a source run whose parameters `config` cannot take (before anything is written)."""
    if config.init.optimizer_state and step >= config.num_train_steps:
        raise ConfigError(f"config.init.optimizer_state=True continues {source} from its step {step}, at or past "
                          f"num_train_steps={config.num_train_steps}: set num_train_steps to {step} plus the steps "
                          "to train")
    source_config = load_config(source)
    differ = [d for d in shape_differences(source_config, config) if d.startswith("model.")]
    if differ:
        raise ConfigError(f"config.init.source={config.init.source!r} has other parameter shapes: "
                          + "; ".join(differ) + " (pass the source's values as --config.model.* overrides)")
    if config.init.optimizer_state and source_config.averaged_from:
        raise ConfigError(f"config.init.optimizer_state=True, but {source} is an average of checkpoints, which "
                          "holds parameters only: set --config.init.optimizer_state=False")


def state_from_source(config: ml_collections.ConfigDict, setup: train_state.Setup) -> train_state.TrainState:
    """The first state of a run that starts from config.init.source ('WORKDIR@STEP', pinned by train.py):
    its parameters, and with config.init.optimizer_state its optimizer state, step and skip counters too
    (the run continues that schedule: a WSD cooldown). The EMA starts at the parameters unless continued."""
    source, step = parse_source(config.init.source)
    parts = {"params": setup.abstract.params}
    scalar = setup.abstract.step
    if config.init.optimizer_state:
        parts.update(opt_state=setup.abstract.opt_state, step=scalar, nonfinite_total=scalar, spikes_total=scalar)
    ckpt = _reader(source)
    try:
        restored, _ = ckpt.restore_parts(parts, step)
    finally:
        ckpt.close()
    state = train_state.new_state(config, setup.tx, restored["params"], restored.get("opt_state"))
    counters = {k: restored[k] for k in ("step", "nonfinite_total", "spikes_total") if k in restored}
    return jax.jit(lambda s: s.replace(**counters), out_shardings=setup.shardings)(state)


@dataclasses.dataclass(frozen=True)
class Trained:
    config: ml_collections.ConfigDict
    params: Any  # unboxed parameter pytree, as model.apply takes it
    tokenizer: spm.SentencePieceProcessor
    step: int


def data_parallel_mesh(devices: Sequence[jax.Device]) -> Mesh:
    """The default mesh, data parallel over any number of devices: where a model is read for use, whatever
    mesh it trained on."""
    return sharding.make_mesh(base.get_config().mesh, devices)


def load(workdir: str, devices: Sequence[jax.Device] | None = None, step: int | None = None,
         ema: bool = False) -> Trained:
    """The parameters (no optimizer state) of the checkpoint at `step` (default: the newest) in `workdir`, or
    their EMA, on `devices` (default: the first local device)."""
    config = load_config(workdir)
    devices = list(devices) if devices is not None else jax.local_devices()[:1]
    restored = restore_params(config, workdir, data_parallel_mesh(devices), step, ema)
    if restored is None:
        raise FileNotFoundError(f"no checkpoint in {os.path.join(workdir, CHECKPOINTS)}")
    sp = spm.SentencePieceProcessor(model_proto=(epath.Path(workdir) / TOKENIZER_FILE).read_bytes())
    return Trained(config=config, params=restored[0], tokenizer=sp, step=restored[1])
