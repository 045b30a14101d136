"""PNG figures of a sweep: loss against compute with the frontier and its law, IsoFLOP curves, fitted
against observed. Matplotlib with the Agg backend: files only, no display needed.
"""

from __future__ import annotations

import os
from typing import Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from pretrain_jax.scaling import laws  # noqa: E402
from pretrain_jax.scaling.results import RunResult  # noqa: E402


def _fitted(report: dict, key: str) -> bool:
    return key in report and "error" not in report[key]


def _finished(rows: Sequence[RunResult], role: str) -> list[RunResult]:
    return [r for r in rows if r.role == role and np.isfinite(r.eval_loss)]


HOLDOUT_STYLE = dict(marker="*", s=160, c="orange", edgecolors="k", zorder=3)
LOSS_LABEL = "validation loss (nats/token)"


def _save(fig, ax, path: str, **axes) -> str:
    """Axes settings and legend, then the PNG; the figure is closed."""
    ax.set(**axes)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def loss_vs_compute(rows: Sequence[RunResult], report: dict, path: str) -> str | None:
    """Every run's loss against C, coloured by N; the frontier, its power law, and the held-out runs."""
    if not _fitted(report, "loss_vs_compute"):
        return None
    fit_rows, holdout = _finished(rows, "fit"), _finished(rows, "holdout")
    fig, ax = plt.subplots(figsize=(6.4, 4.4))
    points = ax.scatter([r.compute for r in fit_rows], [r.eval_loss for r in fit_rows],
                        c=np.log10([r.params for r in fit_rows]), cmap="viridis", s=28)
    fig.colorbar(points, ax=ax, label="log10 N")
    frontier = set(report["loss_vs_compute"]["frontier"])
    on = sorted((r for r in fit_rows if r.name in frontier), key=lambda r: r.compute)
    ax.plot([r.compute for r in on], [r.eval_loss for r in on], "k:", lw=1, label="frontier (min loss)")
    law = laws.PowerLaw(**report["loss_vs_compute"]["law"])
    c = np.geomspace(min(r.compute for r in fit_rows), max(r.compute for r in fit_rows + holdout), 100)
    ax.plot(c, law(c), "r-", lw=1.5, label=f"L = {law.k:.3g} C^{law.p:.3f}")
    if holdout:
        ax.scatter([r.compute for r in holdout], [r.eval_loss for r in holdout], label="held out", **HOLDOUT_STYLE)
    return _save(fig, ax, path, xscale="log", yscale="log", xlabel="compute C (FLOPs)", ylabel=LOSS_LABEL,
                 title="Loss against compute")


def isoflop_curves(rows: Sequence[RunResult], report: dict, path: str) -> str | None:
    """Loss against N at each compute budget, the fitted parabolas and their minima; None without profiles."""
    if not _fitted(report, "isoflop"):
        return None
    fit_rows = _finished(rows, "fit")
    fig, ax = plt.subplots(figsize=(6.4, 4.4))
    for profile, color in zip(report["isoflop"]["profiles"],
                              plt.cm.plasma(np.linspace(0, 0.8, len(report["isoflop"]["profiles"])))):
        at = [r for r in fit_rows if r.budget == profile["compute"]]
        ax.scatter([r.params for r in at], [r.eval_loss for r in at], color=color, s=24)
        n = np.geomspace(*profile["params_range"], 100)  # the runs the parabola was fitted through
        c0, c1, c2 = profile["coefficients"]
        ax.plot(n, c0 + c1 * np.log(n) + c2 * np.log(n) ** 2, color=color, lw=1.2,
                label=f"C = {profile['compute']:.2g}")
        if profile["inside"]:  # a minimum beyond the profile's sizes is an extrapolation: not drawn
            ax.plot(profile["params_opt"], profile["loss_opt"], "kx", ms=8)
    return _save(fig, ax, path, xscale="log", xlabel="parameters N (6N)", ylabel=LOSS_LABEL,
                 title="IsoFLOP profiles (x: fitted minimum within the sizes)")


def fitted_vs_observed(rows: Sequence[RunResult], report: dict, path: str) -> str | None:
    """The parametric law's prediction against each run's loss; None without a parametric fit."""
    if not _fitted(report, "parametric"):
        return None
    law = laws.ParametricLaw(**report["parametric"]["law"])
    fig, ax = plt.subplots(figsize=(5.2, 4.8))
    for role, style in (("fit", dict(marker="o", s=24, c="C0")),
                        ("holdout", HOLDOUT_STYLE)):
        at = _finished(rows, role)
        if at:
            ax.scatter([r.eval_loss for r in at], [law.loss(r.params, r.tokens) for r in at], label=role, **style)
    lo, hi = ax.get_xlim()
    ax.plot([lo, hi], [lo, hi], "k--", lw=1, label="predicted = observed")
    return _save(fig, ax, path, xlabel="observed " + LOSS_LABEL, ylabel="L(N, D) fitted",
                 title=f"E={law.E:.2f} A={law.A:.3g} B={law.B:.3g} alpha={law.alpha:.2f} beta={law.beta:.2f}")


def plot_all(rows: Sequence[RunResult], report: dict, out: str) -> list[str]:
    """The figures this report supports, written to out/; their paths."""
    os.makedirs(out, exist_ok=True)
    paths = [loss_vs_compute(rows, report, os.path.join(out, "loss_vs_compute.png")),
             isoflop_curves(rows, report, os.path.join(out, "isoflop.png")),
             fitted_vs_observed(rows, report, os.path.join(out, "fitted_vs_observed.png"))]
    return [p for p in paths if p is not None]
