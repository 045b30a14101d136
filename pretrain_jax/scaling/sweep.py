"""A sweep: model sizes x budgets (x learning rates x batch sizes) as training runs, each in its own workdir.

The runs are a pure function of the sweep config (configs/scaling/base.py). They
run here one after another (`run_sweep`), or anywhere through the launch scripts
(`launch_commands`). A run is finished when its workdir holds the validation loss
at its last step; finished runs are skipped, interrupted ones resume from their
checkpoint, so the same command can be repeated until everything is done.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import os
import shlex
import time
from typing import Any, Sequence

import jax
import ml_collections

from pretrain_common import cli
from pretrain_jax import metrics, trained
from pretrain_jax.scaling import accounting, planner, results

ROLES = ("fit", "holdout")


@dataclasses.dataclass(frozen=True)
class Run:
    name: str  # also its workdir under the sweep root
    role: str  # "fit", or "holdout": never used in a fit
    budget: float  # the nominal budget of its cell: FLOPs (IsoFLOP sweep) or tokens (grid)
    overrides: tuple[tuple[str, Any], ...]  # on top of the training config file


def load_config_file(path: str) -> ml_collections.ConfigDict:
    """`get_config()` of a config file, as --config=PATH would load it (pretrain_common/cli.py)."""
    if not os.path.isfile(path.split(":", 1)[0]):
        raise FileNotFoundError(f"config file {path} not found")
    return cli.load_config(path)


def apply_overrides(config: ml_collections.ConfigDict, overrides) -> ml_collections.ConfigDict:
    """Sets dotted keys; an unknown key is an error, as on the command line."""
    for key, value in overrides:
        *parents, leaf = key.split(".")
        node = config
        for part in parents:
            node = node[part] if part in node else None
            if not isinstance(node, ml_collections.ConfigDict):
                raise KeyError(f"override {key!r}: no such config key")
        if leaf not in node:
            raise KeyError(f"override {key!r}: no such config key")
        node[leaf] = value
    return config


def run_config(sweep_cfg: ml_collections.ConfigDict, run: Run) -> ml_collections.ConfigDict:
    """The full training config of one run."""
    config = apply_overrides(load_config_file(sweep_cfg.train_config), run.overrides)
    config.lock()
    return config


def _label(x: float) -> str:
    return f"{x:.3g}".replace("+", "")


def _size_name(dim: int, layers: int, heads: int, kv_heads: int, mlp_dim: int) -> str:
    """d{dim}-l{layers}-h{heads}, with -kv{kv_heads} unless attention is MHA and -m{mlp_dim} unless the MLP has
    Llama's width (planner.mlp_dim_for): every size its own name, the usual ones short."""
    return (f"d{dim}-l{layers}-h{heads}" + (f"-kv{kv_heads}" if kv_heads != heads else "")
            + (f"-m{mlp_dim}" if mlp_dim != planner.mlp_dim_for(dim) else ""))


def _run(sweep_cfg, role: str, size, budget: float, lr: float | None, batch: int | None) -> Run:
    """One run: size and batch set, then the steps that spend the budget (rounded to whole steps)."""
    if len(size) != 5:
        raise ValueError(f"a size is (dim, num_layers, num_heads, num_kv_heads, mlp_dim); got {size}")
    dim, layers, heads, kv_heads, mlp_dim = size
    overrides = [*sweep_cfg.overrides, ("model.dim", dim), ("model.num_layers", layers), ("model.num_heads", heads),
                 ("model.num_kv_heads", kv_heads), ("model.mlp_dim", mlp_dim), ("optimizer.decay_steps", 0)]
    name = f"{_size_name(*size)}-{'C' if sweep_cfg.compute_budgets else 'D'}{_label(budget)}"
    if lr is not None:
        overrides.append(("optimizer.peak_learning_rate", lr))
        name += f"-lr{_label(lr)}"
    if batch is not None:
        overrides.append(("global_batch_size", batch))
        name += f"-b{batch}"
    config = apply_overrides(load_config_file(sweep_cfg.train_config), overrides)
    tokens = budget / accounting.of_config(config).flops_per_token if sweep_cfg.compute_budgets else budget
    steps = max(1, round(tokens / (config.global_batch_size * config.seq_len)))
    overrides += [("num_train_steps", steps), ("optimizer.warmup_steps", max(1, round(sweep_cfg.warmup_fraction * steps)))]
    return Run(name + ("-holdout" if role == "holdout" else ""), role, float(budget), tuple(overrides))


def plan_runs(sweep_cfg: ml_collections.ConfigDict) -> list[Run]:
    """Every run of the sweep, smallest budget first; the held-out runs last."""
    if bool(sweep_cfg.compute_budgets) == bool(sweep_cfg.token_budgets):
        raise ValueError("set exactly one of compute_budgets (IsoFLOP profiles) and token_budgets (a grid)")
    if not sweep_cfg.sizes:
        raise ValueError("the sweep has no model sizes")
    budgets = sorted(sweep_cfg.compute_budgets or sweep_cfg.token_budgets)
    specs = [("fit", tuple(size), budget, lr, batch) for budget, size, lr, batch in itertools.product(
        budgets, sweep_cfg.sizes, sweep_cfg.learning_rates or (None,), sweep_cfg.batch_sizes or (None,))]
    specs += [("holdout", tuple(size), budget, None, None) for size, budget in sweep_cfg.holdout]
    runs = [_run(sweep_cfg, *spec) for spec in specs]
    _check_unique_names(runs, specs)
    return runs


def _check_unique_names(runs: Sequence[Run], specs: Sequence[tuple]) -> None:
    """Each run needs its own workdir; say which two runs would share one, and why."""
    first = {}
    for run, spec in zip(runs, specs):
        if run.name in first:
            a, b = (", ".join(f"{key} {value:g}" if isinstance(value, float) else f"{key} {value}"
                              for key, value in zip(("role", "size", "budget", "learning rate", "batch size"), s)
                              if value is not None) for s in (first[run.name], spec))
            raise ValueError(f"{a} is listed twice in the sweep config (workdir {run.name})" if a == b else
                             f"two runs would share the workdir {run.name}: [{a}] and [{b}]; names keep 3 "
                             "significant figures of budgets and learning rates")
        first[run.name] = spec


def write_manifest(sweep_cfg: ml_collections.ConfigDict, runs: Sequence[Run], root: str) -> None:
    """root/sweep.json: what results.collect reads back (runs, roles, budgets, the sweep config)."""
    os.makedirs(root, exist_ok=True)
    manifest = {"sweep": json.loads(sweep_cfg.to_json()), "mode": "isoflop" if sweep_cfg.compute_budgets else "grid",
                "runs": [dataclasses.asdict(r) for r in runs]}
    with open(os.path.join(root, results.MANIFEST) + ".tmp", "w", encoding="utf-8") as f:
        json.dump(manifest, f, indent=2)
    os.replace(os.path.join(root, results.MANIFEST) + ".tmp", os.path.join(root, results.MANIFEST))


def _check_same_run(config: ml_collections.ConfigDict, workdir: str) -> None:
    """A workdir resumes only the run that started it."""
    path = os.path.join(workdir, trained.CONFIG_FILE)
    if os.path.exists(path):
        with open(path, encoding="utf-8") as f:
            if json.load(f) != json.loads(config.to_json()):
                raise ValueError(f"{workdir} holds a run with a different config; remove it or use another root")


def launch_commands(sweep_cfg: ml_collections.ConfigDict, root: str, launcher: str = "launch/local.sh") -> list[str]:
    """One shell command per unfinished run: `LAUNCHER CONFIG WORKDIR --config.KEY=VALUE ...`.

    `launcher` is any P3 launch script with its own leading arguments, e.g.
    "sbatch launch/gpu_slurm.sbatch" or "launch/tpu_pod.sh NAME ZONE TYPE".
    """
    runs = plan_runs(sweep_cfg)
    write_manifest(sweep_cfg, runs, root)
    commands = []
    for run in runs:
        config = run_config(sweep_cfg, run)
        workdir = os.path.join(root, run.name)
        _check_same_run(config, workdir)
        if results.is_finished(workdir, config.num_train_steps):
            continue
        overrides = [f"--config.{k}={v}" for k, v in run.overrides]
        commands.append(" ".join(shlex.quote(a) for a in
                                 [*shlex.split(launcher), sweep_cfg.train_config, workdir, *overrides]))
    return commands


def run_sweep(sweep_cfg: ml_collections.ConfigDict, root: str,
              devices: Sequence[jax.Device] | None = None) -> dict[str, str]:
    """Trains every unfinished run here, in order; returns {name: 'trained' | 'skipped' | 'pre-empted'}.

    A SIGTERM stops the run in training at its next step (saved, as train does) and the sweep with it.
    """
    from pretrain_jax import train  # the trainer loads the whole stack; planning and fits do not need it

    runs = plan_runs(sweep_cfg)
    write_manifest(sweep_cfg, runs, root)
    configs = [run_config(sweep_cfg, r) for r in runs]
    total = sum(accounting.of_config(c).compute for c in configs)
    metrics.log(f"sweep: {len(runs)} runs, {total:.3e} FLOPs in all, about "
                f"{metrics.format_duration(total / sweep_cfg.flops_per_second)} at "
                f"{sweep_cfg.flops_per_second:.2g} FLOP/s")
    status, done, start = {}, 0.0, time.perf_counter()
    for i, (run, config) in enumerate(zip(runs, configs), 1):
        workdir = os.path.join(root, run.name)
        compute = accounting.of_config(config).compute
        _check_same_run(config, workdir)
        if results.is_finished(workdir, config.num_train_steps):
            status[run.name] = "skipped"
            total -= compute
            continue
        eta = (total - done) * (time.perf_counter() - start) / done if done else float("nan")
        metrics.log(f"[{i}/{len(runs)}] {run.name} ({run.role}): {config.num_train_steps} steps, C {compute:.3e} "
                    f"FLOPs | sweep ETA {metrics.format_duration(eta)}")
        train.train(config, workdir, devices)
        jax.clear_caches()  # the next run has another shape
        if not results.is_finished(workdir, config.num_train_steps):  # SIGTERM: it saved and returned early
            metrics.log(f"sweep stopped: {run.name} was pre-empted; run the same command again to resume")
            status[run.name] = "pre-empted"
            break
        status[run.name] = "trained"
        done += compute
    return status
