"""Every fit of a sweep at once, with goodness of fit and the held-out check, as one JSON-ready dict.

The CLI writes it to ROOT/fit.json; plots.py draws from it; the planner reads its
parametric law back (`fitted_law`).
"""

from __future__ import annotations

import dataclasses
import json
from typing import Sequence

import numpy as np

from pretrain_jax.scaling import fit, laws
from pretrain_jax.scaling.results import RunResult


BOOTSTRAP_STARTS = 2  # grid starts per bootstrap refit, besides the full fit's optimum: refits stay fast


def _array(rows: Sequence[RunResult], field: str) -> np.ndarray:
    return np.asarray([getattr(r, field) for r in rows], dtype=float)


def _intervals(boot: np.ndarray, samples: int) -> dict:
    """The 5th and 95th percentiles of bootstrap predictions [kept samples, held-out runs], per run."""
    return {"holdout_interval": [[float(np.percentile(boot[:, i], 5)), float(np.percentile(boot[:, i], 95))]
                                 for i in range(boot.shape[1])],
            "bootstrap_fits": f"{len(boot)} of {samples}"}


def _parametric(best_rows, holdout, samples: int, starts: int, seed: int) -> dict:
    n, d, loss = (_array(best_rows, f) for f in ("params", "tokens", "eval_loss"))
    result = fit.fit_parametric(n, d, loss, starts=starts)
    out = {"law": dataclasses.asdict(result.law), "huber_objective": result.objective,
           "goodness": dataclasses.asdict(result.goodness),
           "exponents": {"a": result.law.a, "b": result.law.b}}
    if holdout and samples:
        hn, hd = _array(holdout, "params"), _array(holdout, "tokens")
        refit = lambda idx: fit.fit_parametric(  # noqa: E731
            n[idx], d[idx], loss[idx], starts=BOOTSTRAP_STARTS, init=[result.law]).law.loss(hn, hd)
        boot = fit.bootstrap(refit, len(loss), samples, seed)
        out.update(_intervals(boot, samples))
    out["holdout_predicted"] = [float(x) for x in result.law.loss(_array(holdout, "params"), _array(holdout, "tokens"))]
    return out


def _frontier(fit_rows, holdout, samples: int, seed: int, isoflop: bool) -> dict:
    c, loss = _array(fit_rows, "compute"), _array(fit_rows, "eval_loss")
    budgets = _array(fit_rows, "budget") if isoflop else None
    result, on = fit.fit_loss_vs_compute(c, loss, budgets)
    hc = _array(holdout, "compute")
    out = {"law": dataclasses.asdict(result.law), "goodness": dataclasses.asdict(result.goodness),
           "frontier": [fit_rows[i].name for i in on], "holdout_predicted": [float(x) for x in result.law(hc)]}
    if holdout and samples:
        refit = lambda idx: fit.fit_loss_vs_compute(  # noqa: E731
            c[idx], loss[idx], None if budgets is None else budgets[idx])[0].law(hc)
        boot = fit.bootstrap(refit, len(loss), samples, seed)
        out.update(_intervals(boot, samples))
    return out


def _isoflop(best_rows) -> dict:
    profiles, n_opt = fit.fit_isoflop(*(_array(best_rows, f) for f in ("params", "eval_loss", "budget",
                                                                        "flops_per_token")))
    return {"profiles": [dataclasses.asdict(p) for p in profiles],
            "params_opt_law": dataclasses.asdict(n_opt.law), "goodness": dataclasses.asdict(n_opt.goodness)}


def _best_against_compute(fit_rows, field: str) -> dict | None:
    """The best value of a hyperparameter per (size, budget) cell, and a power law of it in compute."""
    if len({getattr(r, field) for r in fit_rows}) < 2:
        return None
    cells = [r.cell for r in fit_rows]
    keys, best = fit.best_per_cell(cells, _array(fit_rows, "eval_loss"))
    compute = [np.median([r.compute for r, c in zip(fit_rows, cells) if c == key]) for key in keys]
    values = _array(fit_rows, field)[best]
    out = {"cells": [{"compute": float(c), "best": float(b)} for c, b in zip(compute, values)]}
    if len(set(compute)) >= 2:
        result = fit.fit_power_law(compute, values)
        out.update(law=dataclasses.asdict(result.law), goodness=dataclasses.asdict(result.goodness))
    return out


def analyze(rows: Sequence[RunResult], mode: str, samples: int = 50, starts: int = 16, seed: int = 0) -> dict:
    """Fits on the finished 'fit' runs; predictions, with bootstrap intervals, for the finished held-out runs.

    L(N, D) and the IsoFLOP profiles see only the lowest-loss run of each (size, budget)
    cell (fit.best_per_cell); the L(C) frontier takes the best at each compute by itself.
    """
    finished = [r for r in rows if np.isfinite(r.eval_loss)]
    fit_rows = [r for r in finished if r.role == "fit"]
    holdout = [r for r in finished if r.role == "holdout"]
    if len(fit_rows) < 2:
        raise ValueError(f"{len(fit_rows)} finished runs to fit; the sweep needs more (is it still running?)")
    best_rows = [fit_rows[i] for i in fit.best_per_cell([r.cell for r in fit_rows], _array(fit_rows, "eval_loss"))[1]]
    report = {"runs": len(fit_rows), "cells": len(best_rows),
              "unfinished": [r.name for r in rows if not np.isfinite(r.eval_loss)],
              "loss_vs_compute": _attempt(_frontier, fit_rows, holdout, samples, seed, mode == "isoflop")}
    if len(best_rows) >= 5:
        report["parametric"] = _attempt(_parametric, best_rows, holdout, samples, starts, seed)
    if mode == "isoflop":
        report["isoflop"] = _attempt(_isoflop, best_rows)
    for field in ("learning_rate", "batch_size"):
        best = _attempt(_best_against_compute, fit_rows, field)
        if best is not None:
            report[f"best_{field}"] = best
    report["holdout"] = [_holdout_check(r, i, report) for i, r in enumerate(holdout)]
    return report


def _attempt(fit_fn, *args):
    """One fit's section, or {'error': why} when the runs do not support it (the other fits still count)."""
    try:
        return fit_fn(*args)
    except ValueError as e:
        return {"error": str(e)}


def _holdout_check(run: RunResult, i: int, report: dict) -> dict:
    """Observed against predicted loss of one held-out run, by each law that predicts it."""
    check = {"name": run.name, "params": run.params, "tokens": run.tokens, "compute": run.compute,
             "observed": run.eval_loss}
    for key in ("parametric", "loss_vs_compute"):
        if "holdout_predicted" in report.get(key, {}):
            predicted = report[key]["holdout_predicted"][i]
            check[key] = {"predicted": predicted, "relative_error": abs(predicted - run.eval_loss) / run.eval_loss}
            if "holdout_interval" in report[key]:
                check[key]["interval_5_95"] = report[key]["holdout_interval"][i]
    return check


def fitted_law(path: str) -> laws.ParametricLaw:
    """The parametric law of a fit.json written by `pretrain-jax scaling fit`."""
    with open(path, encoding="utf-8") as f:
        report = json.load(f)
    if "parametric" not in report:
        raise ValueError(f"{path} has no parametric law: its sweep had fewer than 5 finished cells")
    if "error" in report["parametric"]:
        raise ValueError(f"{path} has no parametric law: {report['parametric']['error']}")
    return laws.ParametricLaw(**report["parametric"]["law"])
