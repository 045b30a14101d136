"""Periodic work of a training run, registered on it as hooks, so the loop stays generic (Levanter's add_hook).

A hook is a plain function `fn(run, step)` with a schedule: every N steps, at given
steps, and/or at the last step. Two kinds:

    run.add_hook(fn, every=N)          after step `step`: sees `run.state` (checkpoints, validation,
                                       samples, Hugging Face exports)
    run.add_metrics_hook(fn, every=N)  when step `step`'s metrics are read: sees `run.metrics` (the log
                                       line and TensorBoard, the non-finite stop, spike rollbacks)

The loop reads a step's metrics one step late, so the host never stalls the device,
except before a state hook runs: then the step's metrics are read first. Hooks run
in the order they were added; `standard_hooks` adds the ones the config asks for.
"""

from __future__ import annotations

import dataclasses
import json
import os
import time
from typing import Any, Callable

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from pretrain_jax import evaluate, generate, metrics, norms, train_data, trained
from pretrain_jax.checkpointing import Checkpointer, DamagedCheckpoint
from pretrain_jax.train_state import Setup, TrainState


class TrainingStopped(RuntimeError):
    """The run cannot go on as configured; the message says why and what to change."""


class NonFiniteError(TrainingStopped):
    """Too many updates in a row had a non-finite loss or gradient."""


@dataclasses.dataclass(frozen=True)
class When:
    every: int = 0  # every N steps (0: not periodically)
    at: frozenset[int] = frozenset()
    at_end: bool = False  # at the last step (num_train_steps; for metrics hooks also a pre-emption stop)

    def due(self, step: int, last: bool) -> bool:
        return (self.every > 0 and step % self.every == 0) or step in self.at or (self.at_end and last)


@dataclasses.dataclass(frozen=True)
class Hook:
    fn: Callable[[Run, int], None]
    when: When


class Progress:
    """Averages step metrics over a log interval and turns them into scalars.

    Every step's loss counts; only timed steps count towards the step time, so compilation,
    validation, sampling and checkpoint writes do not lower tokens/s and MFU.
    """

    def __init__(self, flops_per_token: float, peak_flops: float):
        self.flops_per_token, self.peak_flops = flops_per_token, peak_flops
        self.last_read = time.perf_counter()
        self.reset()

    def reset(self) -> None:
        self.seconds, self.timed_tokens, self.loss_sum, self.token_sum = 0.0, 0.0, 0.0, 0.0

    def add(self, m: dict, now: float, timed: bool) -> None:
        """Step metrics `m`, read at `now`; a timed step took the time since the previous read."""
        if timed:
            self.seconds += now - self.last_read
            self.timed_tokens += float(m["tokens"])
        self.last_read = now
        self.loss_sum += float(m["loss"]) * float(m["target_tokens"])
        self.token_sum += float(m["target_tokens"])

    def scalars(self, m: dict) -> dict[str, float]:
        """train/* of the interval (and of `m`, its last step); perf/* when a step in it was timed."""
        loss = self.loss_sum / max(self.token_sum, 1.0)
        scalars = {
            "train/loss": loss, "train/perplexity": metrics.perplexity(loss), "train/z_loss": float(m["z_loss"]),
            "train/target_tokens": float(m["target_tokens"]), "train/learning_rate": float(m["learning_rate"]),
            "train/grad_norm": float(m["grad_norm"]), "train/param_norm": float(m["param_norm"]),
            "train/nonfinite_skipped_total": float(m["nonfinite_total"]),
            "train/spikes_skipped_total": float(m["spikes_total"]), "train/rollbacks": float(m["rollbacks"]),
        }
        if self.timed_tokens:
            tokens_per_s = self.timed_tokens / self.seconds
            scalars.update({"perf/step_time_seconds": float(m["tokens"]) / tokens_per_s,
                            "perf/tokens_per_second": tokens_per_s,
                            "perf/model_flops_per_second": tokens_per_s * self.flops_per_token,
                            "perf/mfu": tokens_per_s * self.flops_per_token / self.peak_flops})
        return scalars


@dataclasses.dataclass
class Run:
    """A training run as its hooks see it. The loop sets `state` and `step`; a hook may replace both (rollback)."""

    config: ml_collections.ConfigDict
    workdir: str
    setup: Setup
    state: TrainState
    data: train_data.TrainData
    ckpt: Checkpointer
    writer: metrics.ScalarWriter
    progress: Progress
    step: int = 0
    metrics: dict[str, Any] = dataclasses.field(default_factory=dict)  # host copy, in metrics hooks
    scalars: dict[str, float] = dataclasses.field(default_factory=dict)  # the last ones written
    hooks: list[Hook] = dataclasses.field(default_factory=list)
    metrics_hooks: list[Hook] = dataclasses.field(default_factory=list)

    def add_hook(self, fn: Callable[[Run, int], None], every: int = 0, at: tuple[int, ...] = (),
                 at_end: bool = False) -> None:
        self.hooks.append(Hook(fn, When(every, frozenset(at), at_end)))

    def add_metrics_hook(self, fn: Callable[[Run, int], None], every: int = 0, at: tuple[int, ...] = (),
                         at_end: bool = False) -> None:
        self.metrics_hooks.append(Hook(fn, When(every, frozenset(at), at_end)))

    def write(self, step: int, scalars: dict[str, float]) -> None:
        self.writer.write(step, scalars)
        self.scalars = {**self.scalars, **scalars}


# --- the standard hooks ---

def checkpoint(run: Run, step: int) -> None:
    run.ckpt.save(run.state, run.data, force=step == run.config.num_train_steps)


def log(run: Run, step: int) -> None:
    """The interval's scalars to TensorBoard, per-group norms included, and the progress line."""
    m, config = run.metrics, run.config
    scalars = run.progress.scalars(m)
    tokens = train_data.rows_between(train_data.batch_schedule(config), 0, step) * config.seq_len
    scalars["perf/cumulative_flops"] = tokens * run.progress.flops_per_token
    for kind, squares in m["norms"].items():
        scalars.update(norms.scalars(kind, squares))
    run.progress.reset()
    run.write(step, scalars)
    metrics.log(metrics.progress_line(step, config.num_train_steps, scalars))


def stop_on_nonfinite(run: Run, step: int) -> None:
    """Stops after config.max_consecutive_nonfinite skipped updates in a row, saving nothing: the newest
    checkpoint holds the parameters from before them, and a rerun must not push it out (train.py)."""
    m, config = run.metrics, run.config
    in_row = int(m["nonfinite_in_row"])
    if in_row < config.max_consecutive_nonfinite:
        return
    run.write(step, {"train/nonfinite_skipped_total": float(m["nonfinite_total"]), "train/nonfinite_in_row": in_row})
    run.ckpt.wait()
    newest = run.ckpt.latest_step()
    raise NonFiniteError(
        f"steps {step - in_row + 1} to {step}: {in_row} updates in a row had a non-finite loss or gradient, and "
        f"were skipped (config.max_consecutive_nonfinite={config.max_consecutive_nonfinite}); stopped at step "
        f"{step} without saving. The newest checkpoint is step {newest}"
        + ("" if newest is None else " (its parameters are from before these updates)")
        + ". Lower optimizer.peak_learning_rate (or check the data) and run the same command with the change: "
          "it resumes from that checkpoint")


def rollback(run: Run, step: int) -> None:
    """On a spike: restore the newest intact checkpoint before it, and read on past the batches read since (the
    spike's among them), at least config.spike.rollback_batches batches past that checkpoint's position
    (PaLM); recorded in rollbacks.jsonl, counted in train/rollbacks."""
    m, spike = run.metrics, run.config.spike
    if not m["spike"]:
        return
    done = int(m["rollbacks"])
    if done >= spike.max_rollbacks:
        raise TrainingStopped(f"step {step} is a loss spike after {done} rollbacks (config.spike.max_rollbacks="
                              f"{spike.max_rollbacks}): stopped; lower optimizer.peak_learning_rate or raise "
                              "spike.max_rollbacks")
    run.ckpt.wait()
    reached = run.data.row
    try:
        state = run.ckpt.restore(run.setup.abstract, run.data, before=step)  # the newest intact one
    except DamagedCheckpoint as e:  # every one before the spike is damaged: go on without a rollback
        metrics.log(f"step {step}: a loss spike, skipped; {e}")
        return
    if state is None:
        metrics.log(f"step {step}: a loss spike, skipped; no checkpoint before it to roll back to")
        return
    row = run.data.row
    run.data.skip(spike.rollback_batches, to_row=reached)
    run.state = state.replace(rollbacks=jax.device_put(jnp.asarray(done + 1, jnp.int32), run.setup.shardings.rollbacks))
    run.step = int(state.step)
    record = {"spike_step": step, "restored_step": run.step, "skipped_batches": spike.rollback_batches,
              "skipped_rows": [row, run.data.row]}
    if jax.process_index() == 0:
        with open(os.path.join(run.workdir, "rollbacks.jsonl"), "a", encoding="utf-8") as f:
            f.write(json.dumps(record) + "\n")
    run.write(step, {"train/rollbacks": done + 1})
    metrics.log(f"step {step}: a loss spike; rolled back to step {run.step} and skipped "
                f"{spike.rollback_batches} batches (rows {record['skipped_rows'][0]} to {record['skipped_rows'][1]})")


def validation(config: ml_collections.ConfigDict, metadata: Any, setup: Setup) -> Callable[[Run, int], None]:
    """The validation pass: held-out metrics (and config.eval_tasks) as eval/*, of the EMA too as eval_ema/*."""
    run_eval = evaluate.periodic_eval(config, metadata, setup.mesh, setup.shardings.params)

    def validate(run: Run, step: int) -> None:
        scalars = _eval_scalars("validation", run_eval(run.state.params), step, "eval")
        if run.state.ema_params is not None:
            scalars.update(_eval_scalars("EMA validation", run_eval(run.state.ema_params), step, "eval_ema"))
        run.write(step, scalars)

    return validate


def _eval_scalars(what: str, result: dict[str, float], step: int, prefix: str) -> dict[str, float]:
    extra = "".join(f", {k} {v:.4f}" for k, v in result.items() if k == "bits_per_byte" or k.endswith("/acc"))
    metrics.log(f"step {step}: {what} loss {result['loss']:.4f}, perplexity {result['perplexity']:.2f} "
                f"over {result['tokens']:,.0f} tokens{extra}")
    return {f"{prefix}/{k}": v for k, v in result.items() if k not in ("tokens", "bytes")}


def samples(config: ml_collections.ConfigDict, metadata: Any) -> Callable[[Run, int], None]:
    """Greedy completions of config.generate.prompts, as TensorBoard texts."""
    complete = generate.periodic_samples(config, metadata)
    return lambda run, step: run.writer.write_texts(step, complete(run.state.params))


def hf_export(run: Run, step: int) -> None:
    """The parameters as a Hugging Face folder, workdir/hf/step_<N> (OLMo-core's HFConverterCallback)."""
    from jax.experimental import multihost_utils

    from pretrain_jax import hf  # the hf extra (transformers, safetensors): checked by config.validate

    params = jax.tree.map(np.asarray, multihost_utils.process_allgather(run.state.params, tiled=True))
    if jax.process_index() == 0:
        output = os.path.join(run.workdir, "hf", f"step_{step}")
        hf.save_pretrained(run.config.model, params, os.path.join(run.workdir, trained.TOKENIZER_FILE),
                           run.config.seq_len, output)
        metrics.log(f"step {step}: wrote {output}")


def standard_hooks(run: Run, metadata: Any) -> None:
    """The hooks the config asks for, in order: a checkpoint is written before validation can fail."""
    config = run.config
    run.add_metrics_hook(log, every=config.log_every, at_end=True)
    run.add_metrics_hook(stop_on_nonfinite, every=1)
    if config.spike.rollback_batches > 0:
        run.add_metrics_hook(rollback, every=1)
    run.add_hook(checkpoint, every=config.checkpoint_every, at_end=True)
    if config.eval_every >= 0:
        run.add_hook(validation(config, metadata, run.setup), every=config.eval_every, at_end=True)
    if config.generate.sample_every > 0:
        run.add_hook(samples(config, metadata), every=config.generate.sample_every)
    if config.hf_export_every > 0:
        run.add_hook(hf_export, every=config.hf_export_every, at_end=True)
