"""The training loop and its command line.

    python -m pretrain_jax.train --config=configs/demo.py --workdir=/tmp/demo \
        --config.num_train_steps=200

The jitted step is pure, `(state, batch) -> (state, metrics)`; the loop around it
does the I/O: data, checkpoints, TensorBoard, validation, the progress line.
Restarting with the same workdir resumes from the latest checkpoint.
"""

from __future__ import annotations

import os
import sys
import time
from functools import partial
from typing import Any, Callable, Sequence

import jax
import jax.numpy as jnp
import ml_collections
import optax
from absl import app, flags, logging
from ml_collections import config_flags

from configs import cli
from data_prep import records
from data_prep.errors import ConfigError
from pretrain_jax import config as config_lib
from pretrain_jax import distributed
from pretrain_jax import (evaluate, generate, input_pipeline, masking, metrics, model, objectives, optimizer,
                          sharding, train_state, trained)
from pretrain_jax.checkpointing import Checkpointer
from pretrain_jax.preemption import PreemptionWatcher
from pretrain_jax.scaling import accounting
from pretrain_jax.train_state import TrainState

Batch = dict[str, jax.Array]


class NonFiniteError(RuntimeError):
    """Too many updates in a row had a non-finite loss or gradient."""


def make_train_step(config: ml_collections.ConfigDict,
                    tx: optax.GradientTransformation) -> Callable[[TrainState, Batch], tuple[TrainState, dict]]:
    apply_fn = partial(model.apply, config.model)
    schedule = optimizer.learning_rate_schedule(config.optimizer, config.num_train_steps)
    loss_and_grad = jax.value_and_grad(objectives.loss_fn(config, apply_fn), has_aux=True)

    def summed_loss_and_grad(params: Any, batch: Batch, step: jax.Array):
        """Summed loss, target count and gradient of the summed loss, accumulated over microbatches.

        Masking (masked LM) draws from a key of (seed, step, microbatch), so a resumed run masks alike.
        """
        def accumulate(total, indexed_microbatch):
            index, microbatch = indexed_microbatch
            rng = masking.step_key(config.seed, step, index)
            (loss, count), grads = loss_and_grad(params, microbatch, rng)
            return jax.tree.map(jnp.add, total, (loss, count, grads)), None

        zeros = (jnp.zeros(()), jnp.zeros(()), jax.tree.map(jnp.zeros_like, params))
        microbatches = (jnp.arange(config.microbatches), input_pipeline.microbatches(batch, config.microbatches))
        return jax.lax.scan(accumulate, zeros, microbatches)[0]

    def train_step(state: TrainState, batch: Batch) -> tuple[TrainState, dict]:
        with sharding.activation_rules():
            loss_sum, count, grads = summed_loss_and_grad(state.params, batch, state.step)
        count = jnp.maximum(count, 1.0)
        loss = loss_sum / count
        with jax.named_scope("optimizer"):  # names the update's ops in profiles
            grads = jax.tree.map(lambda g: g / count, grads)
            grad_norm = optax.global_norm(grads)
            updates, opt_state = tx.update(grads, state.opt_state, state.params)
            params = optax.apply_updates(state.params, updates)
            # A non-finite loss or gradient leaves parameters and optimizer state as they were.
            finite = jnp.isfinite(loss) & jnp.isfinite(grad_norm)
            keep = lambda new, old: jax.tree.map(lambda a, b: jnp.where(finite, a, b), new, old)  # noqa: E731
            params, opt_state = keep(params, state.params), keep(opt_state, state.opt_state)
        skipped = 1 - finite.astype(jnp.int32)
        new_state = state.replace(
            step=state.step + 1, params=params, opt_state=opt_state,
            nonfinite_in_row=(state.nonfinite_in_row + 1) * skipped, nonfinite_total=state.nonfinite_total + skipped)
        step_metrics = {
            "loss": loss, "target_tokens": count, "grad_norm": grad_norm,
            "param_norm": optax.global_norm(new_state.params),
            "learning_rate": schedule(state.step - state.nonfinite_total),  # skipped steps do not advance it
            "nonfinite_in_row": new_state.nonfinite_in_row, "nonfinite_total": new_state.nonfinite_total,
        }
        return new_state, step_metrics

    return train_step


def jit_train_step(config: ml_collections.ConfigDict, tx: optax.GradientTransformation, mesh: jax.sharding.Mesh,
                   state_sh: TrainState) -> Callable[[TrainState, Batch], tuple[TrainState, dict]]:
    """The train step as the loop runs it (and `pretrain_jax.aot` compiles it): explicit shardings, state donated."""
    return jax.jit(make_train_step(config, tx), in_shardings=(state_sh, sharding.batch_sharding(mesh)),
                   out_shardings=(state_sh, sharding.replicated(mesh)), donate_argnums=0)


class _Progress:
    """Averages step metrics over a log interval and turns them into scalars.

    Every step's loss counts; only timed steps count towards the step time, so compilation,
    validation, sampling and checkpoint writes do not lower tokens/s and MFU.
    """

    def __init__(self, tokens_per_step: int, flops_per_token: float, peak_flops: float):
        self.tokens_per_step, self.flops_per_token, self.peak_flops = tokens_per_step, flops_per_token, peak_flops
        self.last_read = time.perf_counter()
        self.reset()

    def reset(self) -> None:
        self.seconds, self.timed_steps, self.loss_sum, self.token_sum = 0.0, 0, 0.0, 0.0

    def add(self, m: dict, now: float, timed: bool) -> None:
        """Step metrics `m`, read at `now`; a timed step took the time since the previous read."""
        if timed:
            self.seconds += now - self.last_read
            self.timed_steps += 1
        self.last_read = now
        self.loss_sum += float(m["loss"]) * float(m["target_tokens"])
        self.token_sum += float(m["target_tokens"])

    def scalars(self, m: dict) -> dict[str, float]:
        """train/* of the interval (and of `m`, its last step); perf/* when a step in it was timed."""
        loss = self.loss_sum / max(self.token_sum, 1.0)
        scalars = {
            "train/loss": loss, "train/perplexity": metrics.perplexity(loss),
            "train/target_tokens": float(m["target_tokens"]), "train/learning_rate": float(m["learning_rate"]),
            "train/grad_norm": float(m["grad_norm"]), "train/param_norm": float(m["param_norm"]),
            "train/nonfinite_skipped_total": float(m["nonfinite_total"]),
        }
        if self.timed_steps:
            step_time = self.seconds / self.timed_steps
            flops = self.tokens_per_step / step_time * self.flops_per_token
            scalars.update({"perf/step_time_seconds": step_time,
                            "perf/tokens_per_second": self.tokens_per_step / step_time,
                            "perf/model_flops_per_second": flops, "perf/mfu": flops / self.peak_flops})
        return scalars


def train(config: ml_collections.ConfigDict, workdir: str,
          devices: Sequence[jax.Device] | None = None) -> dict[str, float]:
    """Trains to config.num_train_steps (resuming from workdir); returns the last scalars written."""
    devices = list(jax.devices() if devices is None else devices)
    config_lib.validate(config, len(devices), devices[0].platform)
    if not config.data.dir:
        raise ConfigError("config.data.dir is empty: set --config.data.dir to a folder that "
                          "`python -m data_prep prepare` wrote")
    metadata = records.read_metadata(config.data.dir)
    input_pipeline.check_compatible(metadata, config)
    if config.eval_every >= 0 and config.data.eval_split not in metadata.splits:
        raise ConfigError(f"config.eval_every={config.eval_every} validates on split {config.data.eval_split!r}, "
                          f"which {config.data.dir} does not have (it has {sorted(metadata.splits)}); set "
                          "--config.eval_every=-1 to train without validation, or --config.data.eval_split")
    mesh = sharding.make_mesh(config.mesh, devices)
    tx = optimizer.make_optimizer(config.optimizer, config.num_train_steps)
    state_sh = train_state.state_shardings(config.model, tx, mesh)

    train_iter = input_pipeline.train_iterator(config, metadata)
    trained.check_same_parameters(config, workdir)
    ckpt = Checkpointer(os.path.join(workdir, trained.CHECKPOINTS), config.checkpoint_every, config.keep_checkpoints,
                        config.async_checkpointing)
    state = ckpt.restore_latest(train_state.abstract_state(config.model, tx, state_sh), train_iter)
    trained.save_run_files(config, workdir)  # after a restore that worked: config.json describes the checkpoints
    if state is None:
        state = train_state.init_state(config.model, tx, state_sh, config.seed)
    else:
        metrics.log(f"resumed from {workdir} at step {int(state.step)}")

    step_fn = jit_train_step(config, tx, mesh, state_sh)
    eval_params = evaluate.periodic_eval(config, metadata, mesh, state_sh.params)
    run_eval = lambda s: eval_params(s.params)  # noqa: E731
    samples = generate.periodic_samples(config, metadata) if config.generate.sample_every else None

    peak = config.peak_flops_per_device or metrics.measure_peak_flops(jax.local_devices()[0],
                                                                         dtype=config.model.dtype)
    progress = _Progress(config.global_batch_size * config.seq_len,
                         metrics.training_flops_per_token(config.model, config.seq_len), peak * len(devices))
    _log_start(config, mesh, peak, progress.flops_per_token)
    metrics.log(accounting.budget_line(accounting.of_config(config)))
    writer = metrics.ScalarWriter(os.path.join(workdir, "tensorboard"))
    watcher = PreemptionWatcher()
    try:
        scalars = _loop(config, state, step_fn, train_iter, mesh, ckpt, writer, progress, run_eval, samples,
                        watcher)
    finally:
        watcher.close()
        ckpt.close()
        writer.close()
    return scalars


def _loop(config, state, step_fn, train_iter, mesh, ckpt, writer, progress, run_eval, samples,
          watcher: PreemptionWatcher) -> dict[str, float]:
    """Steps to the end or to a pre-emption.

    Metrics of step s are read after step s+1 is dispatched, so the host never stalls the device,
    except before a checkpoint, validation or sampling: their step is read (and logged) first,
    and the next step, which waits for them, is left untimed.
    """
    step, scalars, pending = int(state.step), {}, None
    if step >= config.num_train_steps:
        metrics.log(f"the run is already at step {step} of config.num_train_steps={config.num_train_steps}")
    while step < config.num_train_steps:
        with jax.set_mesh(mesh):
            state, step_metrics = step_fn(state, input_pipeline.global_batch(next(train_iter), mesh))
        timed = pending is not None  # else: the first step (compilation), or one after other work
        step += 1
        if pending is not None:
            scalars = _after_step(config, *pending, state, train_iter, writer, progress, ckpt) or scalars
        pending = (step, step_metrics, timed)
        final, stop = step == config.num_train_steps, watcher.should_stop(step)
        evaluate_now = config.eval_every >= 0 and (final or config.eval_every > 0 and step % config.eval_every == 0)
        sample_now = config.generate.sample_every > 0 and step % config.generate.sample_every == 0
        if evaluate_now or sample_now or stop or final or ckpt.due(step):
            scalars = _after_step(config, *pending, state, train_iter, writer, progress, ckpt,
                                  last=stop or final) or scalars
            pending = None
        ckpt.save(state, train_iter, force=stop or final)  # before validation: a failing pass loses no steps
        if stop:
            metrics.log(f"pre-empted: saved a checkpoint at step {step}; run the same command again to resume")
            return scalars
        if evaluate_now:
            eval_scalars = _eval_scalars(run_eval(state), step)
            writer.write(step, eval_scalars)
            scalars = {**scalars, **eval_scalars}
        if sample_now:
            writer.write_texts(step, samples(state.params))
    return scalars


def _after_step(config, step, step_metrics, timed, state, train_iter, writer, progress, ckpt,
                last=False) -> dict[str, float] | None:
    """Reads step `step`'s metrics (waiting for it), stops on too many non-finite updates, and
    writes and logs the interval's scalars every config.log_every steps and at the `last` step."""
    m = jax.device_get(step_metrics)
    now = time.perf_counter()
    if int(m["nonfinite_in_row"]) >= config.max_consecutive_nonfinite:
        ckpt.save(state, train_iter, force=True)
        raise NonFiniteError(
            f"{int(m['nonfinite_in_row'])} updates in a row had a non-finite loss or gradient (step {step}); "
            f"stopped, with the last good parameters checkpointed at step {int(state.step)}. Lower the learning "
            "rate or check the data.")
    progress.add(m, now, timed)
    if step % config.log_every and not last:
        return None
    scalars = progress.scalars(m)
    scalars["perf/cumulative_flops"] = step * progress.tokens_per_step * progress.flops_per_token
    progress.reset()
    writer.write(step, scalars)
    metrics.log(metrics.progress_line(step, config.num_train_steps, scalars))
    return scalars


def _eval_scalars(result: dict[str, float], step: int) -> dict[str, float]:
    extra = "".join(f", {k} {v:.4f}" for k, v in result.items() if k == "bits_per_byte" or k.endswith("/acc"))
    metrics.log(f"step {step}: validation loss {result['loss']:.4f}, perplexity {result['perplexity']:.2f} "
                f"over {result['tokens']:,.0f} tokens{extra}")
    return {f"eval/{k}": v for k, v in result.items() if k not in ("tokens", "bytes")}


def _log_start(config, mesh, peak: float, flops_per_token: float) -> None:
    counts = model.param_count(config.model)
    metrics.log(
        f"model: {counts['total'] / 1e6:.2f}M parameters ({counts['non_embedding'] / 1e6:.2f}M non-embedding), "
        f"{flops_per_token / 1e6:.1f} MFLOPs per training token | mesh {dict(mesh.shape)} | "
        f"{config.global_batch_size} x {config.seq_len} tokens per step | peak {peak / 1e9:.1f} GFLOP/s per device")


def _main(argv: Sequence[str]) -> None:
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    logging.set_verbosity(logging.WARNING)  # orbax logs every file it writes at INFO
    try:
        distributed.initialize(_DISTRIBUTED.value, _COORDINATOR.value, _NUM_PROCESSES.value, _PROCESS_ID.value)
        train(cli.loaded_config(_CONFIG), _WORKDIR.value)
    except NonFiniteError as e:
        metrics.log(str(e))
        raise SystemExit(1)
    except (ConfigError, FileNotFoundError) as e:  # a config, dataset or device count that cannot run
        sys.exit(f"FATAL {e}")


_CONFIG = config_flags.DEFINE_config_file("config", None, "training config file (configs/*.py)", lock_config=True)
_WORKDIR = flags.DEFINE_string("workdir", None, "folder for checkpoints and TensorBoard logs; reused to resume")
_DISTRIBUTED = flags.DEFINE_enum("distributed", "auto", ["auto", "on", "off"],
                                  "join other processes: auto (coordinator given or SLURM/MPI/TPU detected), "
                                  "on (always; TPU pod workers), off")
_COORDINATOR = flags.DEFINE_string("coordinator_address", None,
                                   "host:port of process 0, for multi-process runs outside TPU pods and SLURM")
_NUM_PROCESSES = flags.DEFINE_integer("num_processes", None, "processes in the run (with --coordinator_address)")
_PROCESS_ID = flags.DEFINE_integer("process_id", None, "this process's index (with --coordinator_address)")
flags.mark_flags_as_required(["config", "workdir"])


def main() -> None:
    app.run(_main, flags_parser=cli.flags_parser("configs/base.py"))


if __name__ == "__main__":
    main()
