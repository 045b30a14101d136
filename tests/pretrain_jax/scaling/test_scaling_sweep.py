"""Sweeps: a 2 x 2 grid of tiny models trained on real text, each in its own workdir, resumable, read back."""

import json
import os
import signal
import subprocess
import threading
import time

import jax
import pytest

from configs.scaling import base as sweep_base
from configs.scaling import stdlib
from pretrain_jax import cli
from pretrain_jax import config as config_lib
from pretrain_jax.preemption import PreemptionWatcher
from pretrain_jax.scaling import accounting, results, sweep

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
ONE_DEVICE = jax.devices()[:1]
SIZES = ((32, 1, 4, 2, 64), (64, 2, 8, 4, 128))  # (dim, layers, heads, kv heads, mlp)
ROWS = 8 * 64  # tokens per step of configs/tiny.py


def grid_config(data_dir):
    c = sweep_base.get_config()
    c.train_config = "configs/tiny.py"
    c.overrides = (("data.dir", data_dir), ("log_every", 1))
    c.sizes = SIZES
    c.token_budgets = (2 * ROWS, 4 * ROWS)  # 2 and 4 steps
    return c


@pytest.fixture(scope="module")
def finished_sweep(tiny_dataset, tmp_path_factory):
    root = str(tmp_path_factory.mktemp("sweep"))
    cfg = grid_config(tiny_dataset)
    return cfg, root, sweep.run_sweep(cfg, root, ONE_DEVICE)


def event_files(root):
    return sorted(os.path.join(d, f) for d, _, files in os.walk(root) for f in files if "tfevents" in f)


def test_every_run_trains_in_its_own_workdir(finished_sweep):
    cfg, root, status = finished_sweep
    assert len(status) == 4 and set(status.values()) == {"trained"}
    for name in status:
        for part in ("config.json", "tensorboard", "checkpoints"):
            assert os.path.exists(os.path.join(root, name, part)), (name, part)
    assert sorted(sweep.run_config(cfg, r).num_train_steps for r in sweep.plan_runs(cfg)) == [2, 2, 4, 4]


def test_rerun_skips_finished_runs(finished_sweep):
    cfg, root, _ = finished_sweep
    before = event_files(root)
    assert set(sweep.run_sweep(cfg, root, ONE_DEVICE).values()) == {"skipped"}
    assert event_files(root) == before  # nothing was trained or evaluated again
    assert sweep.launch_commands(cfg, root) == []  # nothing left to launch


def test_results_table_has_each_runs_size_budget_compute_and_loss(finished_sweep, tmp_path):
    _, root, _ = finished_sweep
    rows = results.collect(root)
    assert sorted((r.dim, r.tokens) for r in rows) == [(32, 2 * ROWS), (32, 4 * ROWS), (64, 2 * ROWS), (64, 4 * ROWS)]
    for r in rows:
        assert r.role == "fit" and 0 < r.eval_loss < 10
        assert r.compute == pytest.approx(r.flops_per_token * r.tokens)
        cumulative = results.scalar_series(os.path.join(root, r.name), "perf/cumulative_flops")
        assert cumulative[r.tokens // ROWS] == pytest.approx(r.compute, rel=1e-6)  # logged at the last step
    results.write_csv(rows, str(tmp_path / "results.csv"))
    lines = (tmp_path / "results.csv").read_text().splitlines()
    assert len(lines) == 5 and lines[0].startswith("name,role,budget,dim")


def test_a_workdir_is_never_reused_for_another_run(finished_sweep):
    cfg, root, _ = finished_sweep
    changed = grid_config(cfg.overrides[0][1])
    changed.overrides = (*changed.overrides, ("optimizer.peak_learning_rate", 1e-3))  # same names, other runs
    with pytest.raises(ValueError, match="different config"):
        sweep.run_sweep(changed, root, ONE_DEVICE)


def test_sigterm_stops_the_sweep_with_the_run_in_training_saved(tiny_dataset, tmp_path):
    cfg = grid_config(tiny_dataset)
    cfg.sizes, cfg.token_budgets = SIZES[:1], (200 * ROWS, 300 * ROWS)
    root = str(tmp_path)

    def sigterm_once_training_watches_for_it():
        while not isinstance(getattr(signal.getsignal(signal.SIGTERM), "__self__", None), PreemptionWatcher):
            time.sleep(0.001)
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=sigterm_once_training_watches_for_it, daemon=True).start()
    first, second = [r.name for r in sweep.plan_runs(cfg)]
    assert sweep.run_sweep(cfg, root, ONE_DEVICE) == {first: "pre-empted"}  # the second run never started
    assert os.path.isdir(os.path.join(root, first, "checkpoints")) and not os.path.exists(os.path.join(root, second))
    assert sweep.run_sweep(cfg, root, ONE_DEVICE) == {first: "trained", second: "trained"}  # the same command resumes


def test_launch_commands_run_each_unfinished_run_through_a_launch_script(tiny_dataset, tmp_path):
    cfg = grid_config(tiny_dataset)
    commands = sweep.launch_commands(cfg, str(tmp_path), launcher="launch/local.sh --dry-run")
    assert len(commands) == 4
    first = sweep.plan_runs(cfg)[0]
    assert commands[0].startswith(f"launch/local.sh --dry-run configs/tiny.py {tmp_path}/{first.name} ")
    printed = subprocess.run(["bash", "-c", commands[0]], cwd=REPO, capture_output=True, text=True, check=True).stdout
    assert "-m pretrain_jax train --config=configs/tiny.py" in printed and "--config.num_train_steps=2" in printed
    assert os.path.exists(tmp_path / results.MANIFEST)


def test_isoflop_runs_spend_their_budget(tiny_dataset):
    cfg = grid_config(tiny_dataset)
    cfg.token_budgets = ()
    cfg.compute_budgets = (1e10, 2e10)
    for run in sweep.plan_runs(cfg):
        acc = accounting.of_config(sweep.run_config(cfg, run))
        assert acc.compute == pytest.approx(run.budget, rel=0.5 * ROWS * acc.flops_per_token / run.budget + 1e-9)


def test_a_sweep_needs_exactly_one_kind_of_budget(tiny_dataset):
    cfg = grid_config(tiny_dataset)
    cfg.compute_budgets = (1e10,)
    with pytest.raises(ValueError, match="exactly one"):
        sweep.plan_runs(cfg)


def test_run_names_tell_apart_sizes_that_differ_only_in_kv_heads_or_mlp_width():
    """MHA and Llama's MLP width (192 at dim 64) keep the short name; any other value is named."""
    cfg = grid_config("unused")
    cfg.sizes = ((64, 2, 8, 8, 192), (64, 2, 8, 4, 192), (64, 2, 8, 8, 256))
    cfg.token_budgets = (2 * ROWS,)
    assert [r.name for r in sweep.plan_runs(cfg)] == ["d64-l2-h8-D1.02e03", "d64-l2-h8-kv4-D1.02e03",
                                                      "d64-l2-h8-m256-D1.02e03"]


def test_runs_that_would_share_a_workdir_are_refused_with_the_reason():
    cfg = grid_config("unused")
    cfg.sizes = (SIZES[0], SIZES[0])
    with pytest.raises(ValueError, match=r"size \(32, 1, 4, 2, 64\), budget 1024 is listed twice"):
        sweep.plan_runs(cfg)
    cfg.sizes = SIZES
    cfg.learning_rates = (1e-3, 1.0001e-3)
    with pytest.raises(ValueError, match="share the workdir d32-l1-h4-kv2-m64-D1.02e03-lr0.001: .*3 significant"):
        sweep.plan_runs(cfg)


def test_budget_line_says_tokens_and_compute():
    acc = accounting.Accounting(params_total=10, params_non_embedding=8, params=9, flops_per_token=60.0, tokens=100)
    line = accounting.budget_line(acc)
    assert "100 training tokens" in line and "C 6.000e+03 FLOPs" in line


def test_fit_and_plot_commands_on_the_finished_sweep(finished_sweep, capsys):
    """Four runs: enough for the L(C) frontier; the 5-parameter law and IsoFLOP profiles are left out."""
    _, root, _ = finished_sweep
    cli.main(["scaling", "fit", f"--root={root}", "--samples=0"])
    assert "L(C) on the frontier" in capsys.readouterr().out
    with open(os.path.join(root, "fit.json"), encoding="utf-8") as f:
        out = json.load(f)
    assert out["runs"] == 4 and "parametric" not in out and "isoflop" not in out
    assert os.path.exists(os.path.join(root, "results.csv"))
    cli.main(["scaling", "plot", f"--root={root}"])
    assert os.listdir(os.path.join(root, "plots")) == ["loss_vs_compute.png"]


def test_the_stdlib_sweep_is_6_sizes_x_3_budgets_and_a_larger_held_out_run():
    cfg = stdlib.get_config()
    runs = sweep.plan_runs(cfg)
    configs = [sweep.run_config(cfg, r) for r in runs]
    for config in configs:
        config_lib.validate(config, 1)
    acc = [accounting.of_config(c) for c in configs]
    fitted = [a for a, r in zip(acc, runs) if r.role == "fit"]
    (held_out,) = [a for a, r in zip(acc, runs) if r.role == "holdout"]
    assert len(fitted) == 18 and len({a.params for a in fitted}) == 6
    assert runs[0].name == "d24-l2-h2-C1e12"  # the workdirs of docs/scaling.md's measured sweep keep their names
    assert held_out.params > max(a.params for a in fitted) and held_out.compute > max(a.compute for a in fitted)
    for a, r in zip(acc, runs):
        assert a.compute == pytest.approx(r.budget, rel=0.015)  # whole steps
    assert sum(a.compute for a in acc) == pytest.approx(4.8e13, rel=0.01)  # docs/scaling.md's cost
