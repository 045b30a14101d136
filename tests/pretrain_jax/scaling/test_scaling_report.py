"""The whole analysis and its figures, on an IsoFLOP sweep drawn from a known law: a test of the fitters and
the plotting (can they recover and draw a law they are given?), not of real training curves."""

import json
import os

import numpy as np
import pytest

from pretrain_jax import cli
from pretrain_jax.cli import scaling as scaling_cli
from pretrain_jax.scaling import laws, plots, report, results
from pretrain_jax.scaling.results import RunResult

TRUE = laws.ParametricLaw(E=1.9, A=250.0, B=600.0, alpha=0.35, beta=0.32)
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def six_n(n):
    """FLOPs per token in the laws' convention, C = 6ND."""
    return 6.0 * n


def with_attention(n):
    """FLOPs per token as this trainer counts them: 6N plus attention, whose share shrinks with N (here 1.1 to 2x)."""
    return 6.0 * n + 3400.0 * np.sqrt(n)


def synthetic_rows(noise=0.002, seed=0, flops_per_token=six_n) -> list[RunResult]:
    """5 sizes x 3 IsoFLOP budgets around the law's optimum, and one larger held-out run; each run trained on
    the tokens its budget buys at `flops_per_token`, as the sweep does."""
    rng = np.random.default_rng(seed)
    rows = []
    for budget in (1e15, 4e15, 1.6e16):
        n_opt, _ = TRUE.optimal(budget)
        for n in n_opt * np.geomspace(1 / 6, 6, 5):
            rows.append(_row("fit", budget, n, flops_per_token(n), rng, noise))
    n_big, _ = TRUE.optimal(5e16)
    rows.append(_row("holdout", 5e16, n_big, flops_per_token(n_big), rng, noise))
    return rows


def _row(role, budget, n, flops_per_token, rng, noise, learning_rate=3e-3, penalty=0.0) -> RunResult:
    """A run of N parameters (a 2-layer MHA shape of about that size) spending `budget`; `penalty` is added to
    the loss, as a worse learning rate would."""
    d = budget / flops_per_token
    loss = float(TRUE.loss(n, d) * np.exp(rng.normal(0, noise))) + penalty
    dim = round(np.sqrt(n / 24))
    return RunResult(f"{role}-{budget:.0e}-{n:.0f}-lr{learning_rate:g}", role, budget, dim, 2, dim // 16, dim // 16,
                     4 * dim, int(n), int(n), int(n), int(d), flops_per_token, budget, learning_rate, 16, loss)


@pytest.fixture(scope="module")
def analysis():
    rows = synthetic_rows()
    return rows, report.analyze(rows, "isoflop", samples=8, starts=4)


def test_analysis_reports_goodness_and_predicts_the_held_out_run(analysis):
    rows, out = analysis
    assert out["runs"] == 15 and out["unfinished"] == []
    assert out["parametric"]["goodness"]["r2"] > 0.99
    assert out["parametric"]["exponents"]["a"] == pytest.approx(TRUE.a, abs=0.05)
    check = out["holdout"][0]
    assert check["observed"] == rows[-1].eval_loss
    assert check["parametric"]["relative_error"] < 0.01
    lo, hi = check["parametric"]["interval_5_95"]
    assert lo <= check["parametric"]["predicted"] * 1.001 and hi >= check["parametric"]["predicted"] * 0.999
    assert len(out["isoflop"]["profiles"]) == 3
    assert out["isoflop"]["params_opt_law"]["p"] == pytest.approx(TRUE.a, abs=0.05)
    assert out["loss_vs_compute"]["law"]["p"] < 0  # loss falls with compute
    json.dumps(out)  # the CLI writes it as JSON


def test_unfinished_runs_are_listed_and_left_out(analysis):
    rows, _ = analysis
    pending = RunResult(**{**rows[0].__dict__, "name": "pending", "eval_loss": float("nan")})
    out = report.analyze([*rows, pending], "isoflop", samples=0, starts=4)
    assert out["unfinished"] == ["pending"] and out["runs"] == 15


def test_plots_are_written_as_png(analysis, tmp_path):
    rows, out = analysis
    paths = plots.plot_all(rows, out, str(tmp_path))
    assert sorted(os.path.basename(p) for p in paths) == ["fitted_vs_observed.png", "isoflop.png",
                                                           "loss_vs_compute.png"]
    for path in paths:
        with open(path, "rb") as f:
            assert f.read(8) == PNG_MAGIC
        assert os.path.getsize(path) > 10_000


def test_planner_reads_back_the_fitted_law(analysis, tmp_path, capsys):
    _, out = analysis
    path = tmp_path / "fit.json"
    path.write_text(json.dumps(out))
    law = report.fitted_law(str(path))
    assert law == laws.ParametricLaw(**out["parametric"]["law"])
    cli.main(["scaling", "plan", "--compute=1e16", "--params=2e5", f"--fit={path}", "--config=configs/tiny.py",
              "--head_dim=16"])
    printed = capsys.readouterr().out
    assert "chinchilla" in printed and "20 tokens/param" in printed and "fitted" in printed
    assert f"{float(law.tokens_for(2e5)):.3e}" in printed


def test_cli_fails_with_one_line_on_a_folder_without_a_sweep(tmp_path):
    with pytest.raises(SystemExit, match="FATAL .*sweep.json not found"):
        cli.main(["scaling", "fit", f"--root={tmp_path}"])
    assert results.MANIFEST == "sweep.json"


def test_best_learning_rate_against_compute_when_swept():
    """Two learning rates per cell; the synthetic loss favours the one nearer 0.1 C^-0.1 (a made-up optimum)."""
    rows = []
    for budget in (1e15, 4e15, 1.6e16):
        best_lr = 0.1 * budget ** -0.1
        for lr in (best_lr, 3 * best_lr):
            loss = 3.0 + abs(np.log(lr / best_lr))
            rows.append(RunResult(f"{budget:.0e}-{lr:.2e}", "fit", budget, 64, 2, 4, 4, 192, 1000, 1000, 1000,
                                  10_000, 6e3, budget, lr, 16, loss))
    out = report.analyze(rows, "grid", samples=0)
    assert out["best_learning_rate"]["law"]["p"] == pytest.approx(-0.1, abs=1e-9)
    assert out["best_learning_rate"]["law"]["k"] == pytest.approx(0.1, rel=1e-6)
    assert "best_batch_size" not in out  # one batch size: nothing to choose


def test_a_fit_the_runs_do_not_support_is_reported_and_the_others_still_made(analysis):
    """A concave IsoFLOP profile has no minimum: that section says why; L(N, D) and the check remain."""
    rows, _ = analysis
    bent = [RunResult(**{**r.__dict__, "eval_loss": 6.0 - 0.01 * (np.log(r.params) - 14) ** 2})
            if r.budget == 1e15 else r for r in rows]
    out = report.analyze(bent, "isoflop", samples=0, starts=4)
    assert "not convex" in out["isoflop"]["error"]
    assert "law" in out["parametric"] and "parametric" in out["holdout"][0]
    assert plots.isoflop_curves(bent, out, "unused.png") is None


def test_isoflop_d_opt_is_what_the_budget_buys_a_model_of_n_opt():
    """The budgets were spent at the trainer's FLOPs per token (6N + attention), so D_opt = C / FLOPs per token
    at N_opt, interpolated over the runs; C / 6N_opt would overstate it by the attention share."""
    out = report.analyze(synthetic_rows(flops_per_token=with_attention), "isoflop", samples=0, starts=4)
    for profile in out["isoflop"]["profiles"]:
        n_opt, d_opt = profile["params_opt"], profile["tokens_opt"]
        assert d_opt * with_attention(n_opt) == pytest.approx(profile["compute"], rel=0.01)
        assert d_opt < profile["compute"] / (6 * n_opt) / 1.1


def test_fit_report_states_the_convention_of_each_compute_optimum(analysis, capsys):
    _, out = analysis
    scaling_cli._print_report(out)
    printed = capsys.readouterr().out
    assert "D_opt = C / FLOPs per token at N_opt" in printed  # IsoFLOP: C as the runs spent it
    assert f"N_opt ~ C^{out['parametric']['exponents']['a']:.3f} with C = 6ND" in printed  # L(N, D): the paper's


def test_with_learning_rates_swept_the_laws_are_fitted_on_each_cells_best_run():
    """Hoffmann et al. fit the best hyperparameters of each size and budget: runs with a worse learning rate
    must not pull L(N, D) nor narrow the IsoFLOP parabolas to one or two sizes."""
    best = synthetic_rows()
    rng = np.random.default_rng(1)
    worse = [_row("fit", r.budget, r.params, r.flops_per_token, rng, 0.0, lr, penalty)
             for r in best if r.role == "fit" for lr, penalty in ((1e-3, 0.05), (1e-2, 0.1))]
    swept = report.analyze([*best, *worse], "isoflop", samples=0, starts=4)
    alone = report.analyze(best, "isoflop", samples=0, starts=4)
    assert (swept["runs"], swept["cells"]) == (45, 15)
    assert swept["isoflop"] == alone["isoflop"]
    assert swept["parametric"]["law"] == alone["parametric"]["law"]
    assert {cell["best"] for cell in swept["best_learning_rate"]["cells"]} == {3e-3}


def test_plan_with_a_fit_whose_parametric_law_failed_says_why(tmp_path):
    path = tmp_path / "fit.json"
    path.write_text(json.dumps({"parametric": {"error": "every bootstrap resample failed to fit"}}))
    with pytest.raises(SystemExit, match="FATAL .*no parametric law: every bootstrap resample failed to fit"):
        cli.main(["scaling", "plan", "--compute=1e16", f"--fit={path}"])
