"""A sweep's runs read back from their workdirs: one row per run, from config.json and TensorBoard.

Nothing but the workdirs is needed, so runs trained here and runs trained through
the launch scripts are collected the same way.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import os

from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tensorboard.util import tensor_util

from pretrain_jax import trained
from pretrain_jax.scaling import accounting

EVAL_LOSS = "eval/loss"
MANIFEST = "sweep.json"  # the runs of a sweep and their roles, written by sweep.py


def scalar_series(workdir: str, tag: str) -> dict[int, float]:
    """{step: value} of one TensorBoard scalar of a run (all its event files); empty if none."""
    logdir = os.path.join(workdir, "tensorboard")
    if not os.path.isdir(logdir):
        return {}
    events = EventAccumulator(logdir, size_guidance={"tensors": 0})
    events.Reload()
    if tag not in events.Tags()["tensors"]:
        return {}
    return {e.step: float(tensor_util.make_ndarray(e.tensor_proto)) for e in events.Tensors(tag)}


def is_finished(workdir: str, num_train_steps: int) -> bool:
    """Finished runs logged the validation loss at their last step."""
    return num_train_steps in scalar_series(workdir, EVAL_LOSS)


@dataclasses.dataclass(frozen=True)
class RunResult:
    name: str
    role: str  # fit | holdout
    budget: float  # nominal: FLOPs (IsoFLOP sweep) or tokens (grid)
    dim: int
    num_layers: int
    num_heads: int
    num_kv_heads: int
    mlp_dim: int
    params_total: int
    params_non_embedding: int
    params: int  # N in C = 6ND (accounting.compute_params)
    tokens: int  # D
    flops_per_token: float
    compute: float  # C = FLOPs per token x D
    learning_rate: float
    batch_size: int
    eval_loss: float  # validation loss at the last step; nan until the run finishes

    @property
    def cell(self) -> tuple:
        """The sweep cell: model size and budget, which the learning rate and batch size axes share."""
        return self.dim, self.num_layers, self.num_heads, self.num_kv_heads, self.mlp_dim, self.budget


def read_manifest(root: str) -> dict:
    """root/sweep.json: {'sweep': the sweep config, 'mode': 'isoflop' | 'grid', 'runs': [...]}."""
    path = os.path.join(root, MANIFEST)
    if not os.path.exists(path):
        raise FileNotFoundError(f"{path} not found: is {root} the root of a sweep (pretrain-jax scaling "
                                "sweep --root=...)?")
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def collect(root: str) -> list[RunResult]:
    """Every started run of the sweep in root; eval_loss is nan for the unfinished."""
    manifest = read_manifest(root)
    rows = []
    for run in manifest["runs"]:
        workdir = os.path.join(root, run["name"])
        if not os.path.exists(os.path.join(workdir, trained.CONFIG_FILE)):
            continue  # never started
        config = trained.load_config(workdir)
        acc = accounting.of_config(config)
        loss = scalar_series(workdir, EVAL_LOSS).get(config.num_train_steps, float("nan"))
        m = config.model
        rows.append(RunResult(
            run["name"], run["role"], run["budget"], m.dim, m.num_layers, m.num_heads, m.num_kv_heads, m.mlp_dim,
            acc.params_total, acc.params_non_embedding, acc.params, acc.tokens, acc.flops_per_token, acc.compute,
            config.optimizer.peak_learning_rate, config.global_batch_size, loss))
    return rows


def write_csv(rows: list[RunResult], path: str) -> None:
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, [field.name for field in dataclasses.fields(RunResult)])
        writer.writeheader()
        writer.writerows(dataclasses.asdict(r) for r in rows)
