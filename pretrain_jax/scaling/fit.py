"""Laws fitted to runs: the L(C) frontier, the parametric L(N, D), IsoFLOP minima, best hyperparameters.

Pure functions of arrays (one entry per run); results.py reads the runs and the
CLI writes what these return. Every fit reports its goodness of fit in log space.
Compute C is what the runs spent by the trainer's accounting (6N + attention); only
L(N, D)'s own optimum (laws.ParametricLaw.optimal) takes C = 6ND, as Hoffmann et al. do.
"""

from __future__ import annotations

import dataclasses
import itertools
from typing import Callable, Sequence

import numpy as np
from scipy import optimize

from pretrain_jax.scaling import laws


@dataclasses.dataclass(frozen=True)
class Goodness:
    """Residuals of log(predicted) - log(observed): r2 of log y, rmse and worst case as relative errors."""

    r2: float
    rmse: float
    max_abs: float
    points: int


def goodness(predicted, observed) -> Goodness:
    residual = np.log(predicted) - np.log(observed)
    log_y = np.log(observed)
    total = np.sum((log_y - log_y.mean()) ** 2)
    r2 = 1 - np.sum(residual ** 2) / total if total > 0 else float("nan")
    return Goodness(float(r2), float(np.sqrt(np.mean(residual ** 2))), float(np.max(np.abs(residual))), len(log_y))


@dataclasses.dataclass(frozen=True)
class PowerLawFit:
    law: laws.PowerLaw
    goodness: Goodness


def fit_power_law(x, y) -> PowerLawFit:
    """y = k x^p by least squares on log y against log x."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    if len(x) < 2 or len(np.unique(x)) < 2:
        raise ValueError(f"a power law needs at least 2 distinct x values, got {len(np.unique(x))}")
    if np.any(x <= 0) or np.any(y <= 0):
        raise ValueError("a power law is fitted in log space: x and y must be positive")
    p, log_k = np.polyfit(np.log(x), np.log(y), 1)
    law = laws.PowerLaw(float(np.exp(log_k)), float(p))
    return PowerLawFit(law, goodness(law(x), y))


def frontier(compute, loss, budgets=None, rtol: float = 0.05) -> np.ndarray:
    """Indices, by compute, of the minimum-loss envelope: runs no run of lower loss and no more compute beats.

    Compute within `rtol` counts as the same; with `budgets` (an IsoFLOP sweep's nominal
    budget per run), only the best run of each budget can be on it: the runs of one
    budget differ only by the rounding of their step counts.
    """
    compute, loss = np.asarray(compute, dtype=float), np.asarray(loss, dtype=float)
    beaten = (loss[None, :] < loss[:, None]) & (compute[None, :] <= compute[:, None] * (1 + rtol))
    if budgets is not None:
        budgets = np.asarray(budgets, dtype=float)
        beaten |= (loss[None, :] < loss[:, None]) & (budgets[None, :] == budgets[:, None])
    keep = np.flatnonzero(~beaten.any(axis=1))
    return keep[np.argsort(compute[keep], kind="stable")]


def fit_loss_vs_compute(compute, loss, budgets=None) -> tuple[PowerLawFit, np.ndarray]:
    """L(C) = k C^p on the compute-optimal frontier (Kaplan et al. 2020, fig. 1); also the frontier's indices."""
    compute, loss = np.asarray(compute, dtype=float), np.asarray(loss, dtype=float)
    on_frontier = frontier(compute, loss, budgets)
    return fit_power_law(compute[on_frontier], loss[on_frontier]), on_frontier


# --- the parametric law, Hoffmann et al. (2022) approach 3 (section 3.3, appendix D.2) ---

# Their initialization grid: alpha, beta in {0, 0.5, ..., 2}, e in {-1, -0.5, ..., 1}, a, b in {0, 5, ..., 25}.
HOFFMANN_GRID = (np.arange(0, 2.01, 0.5), np.arange(0, 2.01, 0.5), np.arange(-1, 1.01, 0.5),
                 np.arange(0, 25.1, 5), np.arange(0, 25.1, 5))
HUBER_DELTA = 1e-3  # Hoffmann et al.: robust to outliers, good held-out prediction


@dataclasses.dataclass(frozen=True)
class ParametricFit:
    law: laws.ParametricLaw
    objective: float  # summed Huber loss at the optimum
    goodness: Goodness


def _huber_objective(theta, log_n, log_d, log_loss, delta):
    """Summed Huber loss of LSE(a - alpha log N, b - beta log D, e) - log L, and its gradient in theta."""
    alpha, beta, e, a, b = theta
    t_n, t_d = a - alpha * log_n, b - beta * log_d
    lse = np.logaddexp(np.logaddexp(t_n, t_d), e)
    r = lse - log_loss
    huber = np.where(np.abs(r) <= delta, 0.5 * r ** 2, delta * (np.abs(r) - 0.5 * delta))
    slope = np.clip(r, -delta, delta)  # dHuber/dr; dLSE/d(term) is each term's softmax weight
    w_n, w_d, w_e = slope * np.exp(t_n - lse), slope * np.exp(t_d - lse), slope * np.exp(e - lse)
    grad = np.array([-(w_n * log_n).sum(), -(w_d * log_d).sum(), w_e.sum(), w_n.sum(), w_d.sum()])
    return float(huber.sum()), grad


def _grid_objectives(grid: np.ndarray, log_n, log_d, log_loss, delta) -> np.ndarray:
    """The Huber objective at every initialization at once: [points, 5] -> [points]."""
    alpha, beta, e, a, b = (grid[:, i:i + 1] for i in range(5))
    lse = np.logaddexp(np.logaddexp(a - alpha * log_n, b - beta * log_d), e)
    r = np.abs(lse - log_loss)
    return np.where(r <= delta, 0.5 * r ** 2, delta * (r - 0.5 * delta)).sum(axis=1)


def fit_parametric(n, d, loss, delta: float = HUBER_DELTA, starts: int | None = 16,
                   init: Sequence[laws.ParametricLaw] = ()) -> ParametricFit:
    """L(N, D) = E + A/N^alpha + B/D^beta: Huber loss on log L, E, A, B as exponentials (LSE form), L-BFGS.

    Every point of Hoffmann et al.'s initialization grid (4,500) is scored at once;
    L-BFGS then starts from the best `starts` of them (None: from all, as the paper
    does, which takes minutes; on 30 synthetic runs 16 and 64 starts reached the same
    optimum) and the lowest optimum wins. `init` adds starting laws (a bootstrap refit
    starts from the full fit).
    """
    n, d, loss = (np.asarray(v, dtype=float) for v in (n, d, loss))
    if len(loss) < 5:
        raise ValueError(f"the parametric law has 5 parameters; got only {len(loss)} runs")
    if np.any(n <= 0) or np.any(d <= 0) or np.any(loss <= 0):
        raise ValueError("N, D and the loss must be positive")
    log_n, log_d, log_loss = np.log(n), np.log(d), np.log(loss)
    grid = np.array(list(itertools.product(*HOFFMANN_GRID)))
    if starts is not None:
        grid = grid[np.argsort(_grid_objectives(grid, log_n, log_d, log_loss, delta))[:starts]]
    grid = np.concatenate([np.reshape([_theta(law) for law in init], (-1, 5)), grid])
    # Scaled by 1/delta^2 so the summed loss is of order 1: L-BFGS-B's stopping rule compares
    # improvements with max(|f|, 1), and would stop at once on an objective of order delta^2.
    scaled = lambda theta: tuple(v / delta ** 2 for v in _huber_objective(theta, log_n, log_d, log_loss, delta))  # noqa: E731
    best = min((optimize.minimize(scaled, theta0, jac=True, method="L-BFGS-B") for theta0 in grid),
               key=lambda result: result.fun)
    alpha, beta, e, a, b = best.x
    law = laws.ParametricLaw(E=float(np.exp(e)), A=float(np.exp(a)), B=float(np.exp(b)), alpha=float(alpha),
                             beta=float(beta))
    return ParametricFit(law, float(best.fun) * delta ** 2, goodness(law.loss(n, d), loss))


def _theta(law: laws.ParametricLaw) -> np.ndarray:
    """The fit's parameters of a law: (alpha, beta, log E, log A, log B)."""
    return np.array([law.alpha, law.beta, np.log(law.E), np.log(law.A), np.log(law.B)])


# --- IsoFLOP profiles, Hoffmann et al. approach 2 (section 3.2) ---

def flops_per_token_at(n, run_params, run_flops_per_token) -> np.ndarray:
    """Training FLOPs per token of a model of N parameters, read off the sweep's own runs.

    A budget C buys C / (FLOPs per token) tokens, and this trainer's FLOPs per token are 6N
    plus attention (metrics.training_flops_per_token), whose share depends on the shape:
    only the runs know it. Linear in log-log between the runs' sizes (the mean over runs of
    one size), the nearest run's ratio to 6N beyond them.
    """
    run_params, run_flops = np.asarray(run_params, dtype=float), np.asarray(run_flops_per_token, dtype=float)
    sizes, which = np.unique(run_params, return_inverse=True)
    log_ratio = np.bincount(which, np.log(run_flops / (6 * run_params))) / np.bincount(which)
    n = np.asarray(n, dtype=float)
    return 6 * n * np.exp(np.interp(np.log(n), np.log(sizes), log_ratio))


@dataclasses.dataclass(frozen=True)
class IsoFlopProfile:
    compute: float  # the budget shared by the runs of this profile: C as the runs spend it (6N + attention)
    coefficients: tuple[float, float, float]  # L = c0 + c1 x + c2 x^2 in x = log N
    params_opt: float  # the parabola's minimum
    tokens_opt: float  # C / FLOPs per token at params_opt (flops_per_token_at): the tokens that budget buys it
    loss_opt: float
    params_range: tuple[float, float]  # the smallest and largest N the parabola was fitted through
    inside: bool  # the minimum lies within params_range; outside it is an extrapolation


# Runs on each side of a profile's lowest loss that its parabola is fitted through: far from the
# minimum, loss against log N is not a parabola (it flattens), and would pull the fitted minimum away.
ISOFLOP_NEIGHBOURS = 2


def isoflop_profiles(n, loss, budgets, flops_per_token,
                     neighbours: int = ISOFLOP_NEIGHBOURS) -> list[IsoFlopProfile]:
    """A parabola in log N through each budget's lowest-loss run and its neighbours (3 runs at least),
    and its minimum, N_opt(C), with the D_opt that C buys a model of that size.

    One run per size and budget: with learning rates or batch sizes swept, pass each
    cell's best run (best_per_cell).
    """
    n, loss, budgets = (np.asarray(v, dtype=float) for v in (n, loss, budgets))
    profiles = []
    for budget in np.unique(budgets):
        at = np.flatnonzero(budgets == budget)
        if len(at) < 3:
            raise ValueError(f"IsoFLOP budget {budget:.3g} has {len(at)} runs; a parabola needs at least 3")
        at = at[np.argsort(n[at])]
        best = int(np.argmin(loss[at]))
        start = min(max(best - neighbours, 0), len(at) - 3)
        at = at[start:max(best + neighbours + 1, start + 3)]
        c2, c1, c0 = np.polyfit(np.log(n[at]), loss[at], 2)
        if c2 <= 0:
            raise ValueError(f"IsoFLOP budget {budget:.3g}: loss against log N is not convex, so it has no "
                             "minimum; widen the range of model sizes around the optimum")
        x_opt = -c1 / (2 * c2)
        n_opt, n_range = float(np.exp(x_opt)), (float(n[at].min()), float(n[at].max()))
        profiles.append(IsoFlopProfile(
            float(budget), (float(c0), float(c1), float(c2)), n_opt,
            float(budget / flops_per_token_at(n_opt, n, flops_per_token)), float(c0 + c1 * x_opt + c2 * x_opt ** 2),
            n_range, bool(n_range[0] <= n_opt <= n_range[1])))
    return profiles


def fit_isoflop(n, loss, budgets, flops_per_token) -> tuple[list[IsoFlopProfile], PowerLawFit]:
    """The profiles and N_opt = k C^a through the minima inside their sizes.

    A minimum beyond a profile's smallest or largest model extrapolates the parabola, which
    says little about where the optimum is, so it is reported but left out of the law.
    """
    profiles = isoflop_profiles(n, loss, budgets, flops_per_token)
    inside = [p for p in profiles if p.inside]
    if len(inside) < 2:
        raise ValueError(f"{len(inside)} of {len(profiles)} IsoFLOP minima lie within their model sizes; N_opt(C) "
                         "needs 2: add sizes on the side of the minima")
    return profiles, fit_power_law([p.compute for p in inside], [p.params_opt for p in inside])


# --- the best run of each cell, and hyperparameters against compute ---

def best_per_cell(cells, loss) -> tuple[list, np.ndarray]:
    """The cells (a model size x budget) in order of first appearance, and the index of each one's lowest-loss run.

    Hoffmann et al. fit their laws on the best hyperparameters of each size and budget: a
    sweep over learning rates or batch sizes is reduced to these runs before the fits.
    """
    cells, loss = list(cells), np.asarray(loss, dtype=float)
    keys = list(dict.fromkeys(cells))
    best = [min((i for i, c in enumerate(cells) if c == key), key=lambda i: loss[i]) for key in keys]
    return keys, np.asarray(best, dtype=int)


# --- uncertainty ---

def bootstrap(fit_and_predict: Callable[[np.ndarray], np.ndarray], num_runs: int, samples: int = 100,
              seed: int = 0) -> np.ndarray:
    """Predictions refitted on runs resampled with replacement: [kept samples, ...].

    A resample that cannot be fitted (too few distinct runs for the law) or whose fit runs
    off to infinite parameters, as a 5-parameter law on a dozen runs sometimes does, is dropped.
    """
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(samples):
        try:
            with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
                prediction = np.asarray(fit_and_predict(rng.integers(0, num_runs, num_runs)), dtype=float)
        except ValueError:
            continue
        if np.all(np.isfinite(prediction)):
            out.append(prediction)
    if not out:
        raise ValueError("every bootstrap resample failed to fit")
    return np.asarray(out)
