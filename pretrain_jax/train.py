"""The training loop (its command line: pretrain_jax/cli/train.py, `pretrain-jax train`).

The jitted step (pretrain_jax/train_step.py) is pure, `(state, batch) -> (state,
metrics)`; the loop around it is generic, and the periodic work (checkpoints,
TensorBoard, validation, samples, exports, spike rollbacks) is hooks registered on
the run (pretrain_jax/hooks.py). Restarting with the same workdir resumes from the
latest checkpoint; --init_from starts a new run from another run's checkpoint.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import time
from typing import Sequence

import jax
import ml_collections
from etils import epath

from pretrain_common import records
from pretrain_common.errors import ConfigError
from pretrain_jax import config as config_lib
from pretrain_jax import (hooks, host_memory, input_pipeline, metrics, model, pipeline, train_data, train_state,
                          train_step, trained)
from pretrain_jax.checkpointing import Checkpointer
from pretrain_jax.preemption import PreemptionWatcher
from pretrain_jax.scaling import accounting
from pretrain_jax.train_state import TrainState

STOPPED_FILE = "stopped.json"  # why a run stopped for non-finite updates, and the config it stopped with


def _stopped_file(workdir: str) -> epath.Path:
    return epath.Path(workdir) / STOPPED_FILE


def _check_not_stopped(fingerprint: str, workdir: str) -> None:
    """A run stopped for non-finite updates reruns only with a changed config (it then resumes from its
    newest checkpoint, saved before them); the same command again would only repeat the stop."""
    path = _stopped_file(workdir)
    if not path.exists():
        return
    stopped = json.loads(path.read_text())
    if stopped["config"] == fingerprint:
        raise hooks.TrainingStopped(f"{stopped['message']} [{path}; the config is unchanged since that stop, so "
                                    "this run would stop the same way]")
    metrics.log(f"the run stopped at step {stopped['step']} ({path.name}); the config changed since: resuming")
    if jax.process_index() == 0:
        path.unlink()


def _fingerprint(config: ml_collections.ConfigDict) -> str:
    return hashlib.sha256(config.to_json(sort_keys=True).encode()).hexdigest()


def _record_stop(fingerprint: str, workdir: str, step: int, error: hooks.NonFiniteError) -> None:
    if jax.process_index() == 0:
        _stopped_file(workdir).write_text(json.dumps({"step": step, "message": str(error), "config": fingerprint}))


def resolve_init(config: ml_collections.ConfigDict, workdir: str) -> None:
    """Pins config.init.source to WORKDIR@STEP (a resumed run keeps the step it started from), and with
    init.peak_from_source sets optimizer.peak_learning_rate to the source run's learning rate at that step."""
    if not config.init.source:
        return
    saved = epath.Path(workdir) / trained.CONFIG_FILE
    if saved.exists() and trained.latest_step(workdir) is not None:
        pinned = trained.load_config(workdir).init.source
        if pinned and trained.parse_source(pinned)[0] == trained.parse_source(config.init.source)[0]:
            config.init.source = pinned
    source, step = trained.source_step(config.init.source)
    trained.check_source(config, source, step)
    config.init.source = f"{source}@{step}"
    if config.init.peak_from_source:
        config.optimizer.peak_learning_rate = trained.learning_rate_at(source, step)


def _first_state(config: ml_collections.ConfigDict, setup: train_state.Setup) -> TrainState:
    """A new run's first state: config.init.source's parameters (and optimizer state), else a fresh init."""
    if not config.init.source:
        return setup.init(config)
    state = trained.state_from_source(config, setup)
    metrics.log(f"initialized from {config.init.source}"
                + (", optimizer state and step included" if config.init.optimizer_state else ""))
    return state


def _check_datasets(config: ml_collections.ConfigDict, metadata: records.DatasetMetadata) -> None:
    """Every shard the run will read (data.dir's, each data stage's, the validation split), before the first step."""
    input_pipeline.check_shards(config.data.dir, metadata, [config.data.train_split]
                                + ([config.data.eval_split] if config.eval_every >= 0 else []))
    for data_dir in dict.fromkeys(d for _, _, d in train_data.stage_entries(config)[1:] if d != config.data.dir):
        input_pipeline.check_shards(data_dir, records.read_metadata(data_dir), [config.data.train_split])


def train(config: ml_collections.ConfigDict, workdir: str,
          devices: Sequence[jax.Device] | None = None) -> dict[str, float]:
    """Trains to config.num_train_steps (resuming from workdir); returns the last scalars written."""
    devices = list(jax.devices() if devices is None else devices)
    config_lib.validate(config, len(devices), devices[0].platform)
    if not config.data.dir:
        raise ConfigError("config.data.dir is empty: set --config.data.dir to a folder that "
                          "`data-prep run` wrote")
    metadata = records.read_metadata(config.data.dir)
    input_pipeline.check_compatible(metadata, config)
    if config.eval_every >= 0 and config.data.eval_split not in metadata.splits:
        raise ConfigError(f"config.eval_every={config.eval_every} validates on split {config.data.eval_split!r}, "
                          f"which {config.data.dir} does not have (it has {sorted(metadata.splits)}); set "
                          "--config.eval_every=-1 to train without validation, or --config.data.eval_split")
    _check_datasets(config, metadata)
    fingerprint = _fingerprint(config)  # the config as given, before init.source is pinned
    _check_not_stopped(fingerprint, workdir)
    if (epath.Path(workdir) / trained.CONFIG_FILE).exists() and trained.load_config(workdir).averaged_from:
        raise ConfigError(f"{workdir} holds an average of checkpoints (parameters only, no optimizer state): "
                          f"start a new run from it with --init_from={workdir} --workdir=NEW")
    resolve_init(config, workdir)
    setup = train_state.setup(config, devices)
    for line in train_state.replication_report(config, setup).lines():  # ConfigError past mesh.max_replicated_fraction
        metrics.log(line)
    data = train_data.TrainData(config, metadata)
    trained.check_same_parameters(config, workdir)
    ckpt = Checkpointer(os.path.join(workdir, trained.CHECKPOINTS), config.checkpoint_every, config.keep_checkpoints,
                        config.async_checkpointing, set_aside_damaged=True)
    state = ckpt.restore(setup.abstract, data)
    trained.save_run_files(config, workdir)  # after a restore that worked: config.json describes the checkpoints
    if state is None:
        state = _first_state(config, setup)
    else:
        metrics.log(f"resumed from {workdir} at step {int(state.step)}")

    peak = config.peak_flops_per_device or metrics.measure_peak_flops(jax.local_devices()[0],
                                                                         dtype=config.model.dtype)
    progress = hooks.Progress(metrics.training_flops_per_token(config.model, config.seq_len), peak * len(devices))
    _log_start(config, setup.mesh, peak, progress.flops_per_token)
    metrics.log(accounting.budget_line(accounting.of_config(config)))
    run = hooks.Run(config, workdir, setup, state, data, ckpt, metrics.ScalarWriter(os.path.join(workdir, "tensorboard")),
                    progress, step=int(state.step))
    hooks.standard_hooks(run, metadata)
    watcher = PreemptionWatcher()
    try:
        _loop(run, train_step.jit_train_step(config, setup), watcher)
    except hooks.NonFiniteError as e:
        _record_stop(fingerprint, workdir, run.step, e)
        raise
    finally:
        watcher.close()
        ckpt.close()
        run.writer.close()
    return run.scalars


def _read(run: hooks.Run, step: int, step_metrics: dict, timed: bool, last: bool = False) -> bool:
    """Reads step `step`'s metrics (waiting for it) and runs the metrics hooks due; False when one of
    them moved the run to another step (a rollback), which drops the steps dispatched since."""
    run.metrics = jax.device_get(step_metrics)
    run.progress.add(run.metrics, time.perf_counter(), timed)
    current = run.step
    for hook in run.metrics_hooks:
        if hook.when.due(step, last):
            hook.fn(run, step)
            if run.step != current:
                return False
    return True


def _loop(run: hooks.Run, step_fn: train_step.StepFn, watcher: PreemptionWatcher) -> None:
    """Steps to the end or to a pre-emption, running the hooks due after each step.

    Metrics of step s are read after step s+1 is dispatched, so the host never stalls the device,
    except before a state hook: its step is read (and logged) first, and the next step, which
    waits for the hook, is left untimed.
    """
    config, mesh, pending = run.config, run.setup.mesh, None
    if run.step >= config.num_train_steps:
        metrics.log(f"the run is already at step {run.step} of config.num_train_steps={config.num_train_steps}")
    while run.step < config.num_train_steps:
        with jax.set_mesh(mesh):
            run.state, step_metrics = step_fn(run.state, input_pipeline.global_batch(next(run.data), mesh))
        timed = pending is not None  # else: the first step (compilation), or one after other work
        run.step += 1
        if pending is not None and not _read(run, *pending):
            pending = None
            continue
        pending = (run.step, step_metrics, timed)
        final, stop = run.step == config.num_train_steps, watcher.should_stop(run.step)
        due = [hook for hook in run.hooks if hook.when.due(run.step, final)]
        if due or stop or final:
            read, pending = _read(run, *pending, last=stop or final), None
            if not read:
                continue
        if stop:
            run.ckpt.save(run.state, run.data, force=True)
            metrics.log(f"pre-empted: saved a checkpoint at step {run.step}; run the same command again to resume")
            return
        for hook in due:
            hook.fn(run, run.step)


def _log_start(config, mesh, peak: float, flops_per_token: float) -> None:
    counts = model.param_count(config.model)
    metrics.log(
        f"model: {counts['total'] / 1e6:.2f}M parameters ({counts['non_embedding'] / 1e6:.2f}M non-embedding), "
        f"{flops_per_token / 1e6:.1f} MFLOPs per training token | mesh {dict(mesh.shape)} | "
        f"{config.global_batch_size} x {config.seq_len} tokens per step | peak {peak / 1e9:.1f} GFLOP/s per device | "
        f"host allocator {host_memory.loaded_allocator()}")
    stages = mesh.shape["stage"]
    if stages > 1:
        microbatches, repeats = config.model.pipeline_microbatches or stages, config.model.pipeline_repeats
        bubble = pipeline.bubble_fraction(stages, microbatches, repeats)
        metrics.log(f"pipeline: {stages} stages x {repeats} repeats, {microbatches} microbatches: {100 * bubble:.1f}% "
                    "of each stage's iterations idle (the bubble)")


if __name__ == "__main__":  # `python -m pretrain_jax.train ...`: an alias of `pretrain-jax train ...`
    from pretrain_jax import cli

    cli.main(["train", *sys.argv[1:]])
