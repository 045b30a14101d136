"""The fitters, on synthetic runs drawn from a known law with noise: a test of the fitter (can it recover a
law it is given?), not a claim about real training curves."""

import numpy as np
import pytest

from pretrain_jax.scaling import fit, laws

TRUE = laws.ParametricLaw(E=1.8, A=300.0, B=500.0, alpha=0.36, beta=0.30)
NOISE = 0.003  # relative, about what separate seeds of one small run give


def synthetic_grid(noise=NOISE, seed=0):
    """6 model sizes x 5 token budgets, loss from TRUE times lognormal noise."""
    n = np.repeat(np.geomspace(5e4, 5e6, 6), 5)
    d = np.tile(np.geomspace(1e6, 1e8, 5), 6)
    rng = np.random.default_rng(seed)
    return n, d, TRUE.loss(n, d) * np.exp(rng.normal(0, noise, len(n)))


def test_parametric_fit_recovers_the_law_without_noise():
    n, d, loss = synthetic_grid(noise=0.0)
    result = fit.fit_parametric(n, d, loss, starts=4)
    got = result.law
    assert (got.alpha, got.beta) == pytest.approx((TRUE.alpha, TRUE.beta), abs=0.01)
    assert got.E == pytest.approx(TRUE.E, rel=0.02)
    assert result.goodness.max_abs < 1e-3


def test_parametric_fit_with_noise_recovers_exponents_and_predicts_a_larger_run():
    n, d, loss = synthetic_grid()
    result = fit.fit_parametric(n, d, loss, starts=4)
    assert result.law.alpha == pytest.approx(TRUE.alpha, abs=0.05)
    assert result.law.beta == pytest.approx(TRUE.beta, abs=0.05)
    assert result.goodness.r2 > 0.99 and result.goodness.rmse < 2 * NOISE
    big_n, big_d = 2e7, 4e8  # outside the fitted range in both N and D
    assert result.law.loss(big_n, big_d) == pytest.approx(TRUE.loss(big_n, big_d), rel=0.01)


def test_parametric_fit_is_robust_to_one_outlier():
    """Huber loss with delta 1e-3 barely moves for a diverged run, where least squares would."""
    n, d, loss = synthetic_grid()
    clean = fit.fit_parametric(n, d, loss, starts=4).law
    loss = loss.copy()
    loss[7] *= 1.5
    robust = fit.fit_parametric(n, d, loss, starts=4).law
    assert robust.loss(2e7, 4e8) == pytest.approx(clean.loss(2e7, 4e8), rel=0.005)


def test_parametric_fit_refuses_too_few_runs():
    with pytest.raises(ValueError, match="5 parameters"):
        fit.fit_parametric([1e5, 1e6], [1e7, 1e7], [3.0, 2.8])


def test_frontier_is_the_minimum_loss_envelope():
    compute = np.array([1.0, 2.0, 2.0, 4.0, 8.0, 8.0])
    loss = np.array([5.0, 4.0, 4.5, 4.2, 3.0, 3.5])
    assert fit.frontier(compute, loss).tolist() == [0, 1, 4]  # 4.2 at C=4 is worse than 4.0 at C=2


def test_frontier_treats_one_budgets_rounding_as_the_same_compute():
    """IsoFLOP runs of one budget differ by step rounding: a worse run with 0.1% less compute is not on it."""
    assert fit.frontier([1.0, 0.999, 2.0], [4.0, 5.0, 3.0]).tolist() == [0, 2]
    # Few steps round further; the nominal budget says which runs belong together.
    assert fit.frontier([1.0, 0.9, 2.0], [4.0, 5.0, 3.0]).tolist() == [1, 0, 2]
    assert fit.frontier([1.0, 0.9, 2.0], [4.0, 5.0, 3.0], budgets=[1, 1, 2]).tolist() == [0, 2]


def test_power_law_on_the_frontier_recovers_exponent():
    """Runs of the synthetic law at several sizes per budget; the envelope follows L ~ C^p."""
    rng = np.random.default_rng(1)
    compute = np.repeat(np.geomspace(1e15, 1e19, 5), 4)
    true = laws.PowerLaw(40.0, -0.05)
    loss = true(compute) * np.exp(np.abs(rng.normal(0, 0.02, len(compute))))  # off-frontier runs are worse
    loss[::4] = true(compute[::4])  # one compute-optimal run per budget
    result, on = fit.fit_loss_vs_compute(compute, loss)
    assert result.law.p == pytest.approx(-0.05, abs=1e-6)
    assert result.law.k == pytest.approx(40.0, rel=1e-5)
    assert result.goodness.r2 == pytest.approx(1.0)
    assert sorted(on.tolist()) == list(range(0, 20, 4))


def test_isoflop_minima_follow_the_law_optimum():
    """Approach 2 on IsoFLOP runs of the synthetic law: the parabola minima track N_opt(C) of the law."""
    budgets = np.geomspace(1e16, 1e18, 3)
    rows = []
    for c in budgets:
        n_opt, _ = TRUE.optimal(c)
        for n in n_opt * np.geomspace(0.25, 4, 7):
            rows.append((c, n, TRUE.loss(n, c / (6 * n))))
    c, n, loss = (np.array(x) for x in zip(*rows))
    profiles, n_law = fit.fit_isoflop(n, loss, c, 6 * n)
    for profile in profiles:
        assert profile.params_opt == pytest.approx(TRUE.optimal(profile.compute)[0], rel=0.1)
        assert profile.tokens_opt == pytest.approx(TRUE.optimal(profile.compute)[1], rel=0.1)  # both in C = 6ND
    assert n_law.law.p == pytest.approx(TRUE.a, abs=0.02)


def test_isoflop_minima_beyond_a_profiles_sizes_are_reported_but_left_out_of_the_law():
    budgets = np.geomspace(1e16, 1e18, 3)
    rows = []
    for i, c in enumerate(budgets):
        n_opt, _ = TRUE.optimal(c)
        sizes = n_opt * np.geomspace(2, 16, 5) if i == 0 else n_opt * np.geomspace(0.25, 4, 7)  # first: all too big
        rows += [(c, n, TRUE.loss(n, c / (6 * n))) for n in sizes]
    c, n, loss = (np.array(x) for x in zip(*rows))
    profiles, n_law = fit.fit_isoflop(n, loss, c, 6 * n)
    assert [p.inside for p in profiles] == [False, True, True]
    assert n_law.law.p == pytest.approx(TRUE.a, abs=0.02)  # from the two profiles that bracket their optimum
    with pytest.raises(ValueError, match="1 of 2 IsoFLOP minima"):
        fit.fit_isoflop(n[c < budgets[2]], loss[c < budgets[2]], c[c < budgets[2]], 6 * n[c < budgets[2]])


def test_isoflop_needs_a_convex_profile():
    with pytest.raises(ValueError, match="not convex"):
        fit.isoflop_profiles([1e5, 2e5, 4e5], [3.0, 3.2, 3.0], [1e15] * 3, [6e5, 1.2e6, 2.4e6])


def test_flops_per_token_at_a_size_is_log_log_linear_between_runs_and_keeps_the_nearest_ratio_beyond():
    n = np.array([1e5, 1e5, 4e5, 1.6e6])  # two runs of the smallest size
    flops = np.array([9e5, 9e5, 3e6, 1.08e7])  # 1.5, 1.25 and 1.125 x 6N: attention's share falls with N
    at = lambda x: fit.flops_per_token_at(x, n, flops)  # noqa: E731
    np.testing.assert_allclose(at(n), flops)
    assert at(2e5) == pytest.approx(np.sqrt(9e5 * 3e6))  # halfway in log N: halfway in log FLOPs
    assert at(1e4) == pytest.approx(1.5 * 6e4) and at(1e7) == pytest.approx(1.125 * 6e7)


def test_best_run_per_cell():
    cells = [("s", 1)] * 3 + [("m", 2)] * 3 + [("l", 4)] * 3
    loss = [3.0, 2.9, 3.1, 2.8, 2.7, 2.75, 2.6, 2.65, 2.7]
    keys, best = fit.best_per_cell(cells, loss)
    assert keys == [("s", 1), ("m", 2), ("l", 4)] and best.tolist() == [1, 4, 6]


def test_bootstrap_interval_covers_the_truth():
    n, d, loss = synthetic_grid()
    full = fit.fit_parametric(n, d, loss, starts=4).law
    samples = fit.bootstrap(
        lambda idx: fit.fit_parametric(n[idx], d[idx], loss[idx], starts=1, init=[full]).law.loss(2e7, 4e8),
        len(loss), samples=12, seed=0)
    assert samples.shape == (12,)
    lo, hi = np.percentile(samples, [0, 100])
    truth = TRUE.loss(2e7, 4e8)
    assert lo - 0.01 * truth <= truth <= hi + 0.01 * truth
    assert hi - lo < 0.05 * truth
