"""The planner: Chinchilla's closed-form optimum, the tokens-per-parameter rule, model shapes, accounting."""

import numpy as np
import pytest
from scipy import optimize

from configs import base, demo, llama, tiny
from pretrain_jax import cli, metrics, model
from pretrain_jax.scaling import accounting, laws, planner

BUDGETS = [1e18, 1e21, 5.76e23, 1e25]  # 5.76e23: the Gopher / Chinchilla budget
CHINCHILLA = laws.CHINCHILLA


def test_chinchilla_exponents_are_beta_and_alpha_over_their_sum():
    assert CHINCHILLA.a == pytest.approx(0.28 / (0.34 + 0.28))
    assert CHINCHILLA.b == pytest.approx(0.34 / (0.34 + 0.28))
    assert CHINCHILLA.a + CHINCHILLA.b == pytest.approx(1.0)


@pytest.mark.parametrize("compute", BUDGETS)
def test_chinchilla_optimum_is_hoffmann_equation_4(compute):
    """N_opt = G (C/6)^a, D_opt = G^-1 (C/6)^b, G = (alpha A / (beta B))^(1/(alpha+beta)), typed out here."""
    g = (0.34 * 406.4 / (0.28 * 410.7)) ** (1 / (0.34 + 0.28))
    n, d = CHINCHILLA.optimal(compute)
    assert n == pytest.approx(g * (compute / 6) ** (0.28 / 0.62), rel=1e-12)
    assert d == pytest.approx((compute / 6) ** (0.34 / 0.62) / g, rel=1e-12)
    assert 6 * n * d == pytest.approx(compute, rel=1e-12)


@pytest.mark.parametrize("compute", BUDGETS)
def test_chinchilla_optimum_minimizes_the_loss_numerically(compute):
    """Minimizing L(N, C/(6N)) over log N by a bounded scalar search lands on the closed form."""
    loss_at = lambda log_n: CHINCHILLA.loss(np.exp(log_n), compute / (6 * np.exp(log_n)))  # noqa: E731
    result = optimize.minimize_scalar(loss_at, bounds=(np.log(1e3), np.log(1e15)), method="bounded",
                                      options={"xatol": 1e-10})
    n, _ = CHINCHILLA.optimal(compute)
    assert np.exp(result.x) == pytest.approx(n, rel=1e-4)
    assert loss_at(np.log(n)) <= result.fun + 1e-12


@pytest.mark.parametrize("law", [CHINCHILLA, laws.TokensPerParameter(20.0)], ids=["chinchilla", "20x"])
def test_tokens_for_a_model_size_is_the_optimum_that_gives_that_size(law):
    n, d = law.optimal(np.array(BUDGETS))
    np.testing.assert_allclose(law.tokens_for(n), d, rtol=1e-9)


def test_twenty_tokens_per_parameter_rule():
    n, d = laws.TokensPerParameter(20.0).optimal(1.2e21)
    assert d / n == pytest.approx(20.0)
    assert n == pytest.approx(np.sqrt(1.2e21 / (6 * 20)))
    assert 6 * n * d == pytest.approx(1.2e21)


def test_a_tokens_per_parameter_rule_must_be_positive():
    with pytest.raises(ValueError, match="must be positive"):
        laws.TokensPerParameter(0.0)


def test_plan_lists_every_law_and_predicts_loss_only_where_the_law_does():
    plans = planner.plan(1e21, {"chinchilla": CHINCHILLA, "20x": laws.TokensPerParameter()})
    assert [p.method for p in plans] == ["chinchilla", "20x"]
    assert plans[0].loss == pytest.approx(float(CHINCHILLA.loss(plans[0].params, plans[0].tokens)))
    assert plans[1].loss is None
    with pytest.raises(ValueError, match="positive"):
        planner.plan(0.0, {"chinchilla": CHINCHILLA})


def test_suggested_shape_for_6_7b_is_the_llama_7b_shape():
    cfg = planner.suggest_model(6.7e9, base.get_config().model, head_dim=128)
    llama_7b = llama.get_llama_config("7b").model
    assert (cfg.dim, cfg.num_layers, cfg.num_heads, cfg.mlp_dim) == (
        llama_7b.dim, llama_7b.num_layers, llama_7b.num_heads, llama_7b.mlp_dim)


@pytest.mark.parametrize("target", [3e5, 2e6, 3e7, 1e9])
def test_suggested_shape_is_near_the_target_and_valid(target):
    cfg = planner.suggest_model(target, demo.get_config().model, head_dim=32)
    assert accounting.compute_params(cfg) == pytest.approx(target, rel=0.1)
    assert cfg.dim == cfg.num_heads * 32 and cfg.num_heads % cfg.num_kv_heads == 0
    assert cfg.vocab_size == 8000 and cfg.tie_embeddings  # the rest of the base model is kept


def test_accounting_reuses_param_count_and_training_flops():
    config = demo.get_config()
    acc = accounting.of_config(config)
    counts = model.param_count(config.model)
    assert (acc.params_total, acc.params_non_embedding) == (counts["total"], counts["non_embedding"])
    assert acc.params == counts["non_embedding"] + config.model.dim * config.model.vocab_size  # the tied head
    assert acc.flops_per_token == metrics.training_flops_per_token(config.model, config.seq_len)
    assert acc.flops_per_token > 6 * acc.params  # plus attention
    assert acc.tokens == 240 * 8 * 256
    assert acc.compute == acc.flops_per_token * acc.tokens
    config.global_batch_schedule = ((0, 2), (100, 8))  # a batch-size ramp: fewer tokens in its first steps
    assert accounting.of_config(config).tokens == (100 * 2 + 140 * 8) * 256


def test_plan_prices_each_suggested_shape_as_the_trainer_does(capsys):
    """The laws plan in C = 6ND; the trainer adds attention, so the suggested run costs more than C by its count."""
    cli.main(["scaling", "plan", "--compute=1e16", "--config=configs/tiny.py", "--head_dim=16"])
    printed = capsys.readouterr().out
    assert "C = 6ND = 1.000e+16 FLOPs" in printed
    config = tiny.get_config()
    for p in planner.plan(1e16, {"chinchilla": CHINCHILLA, "20x": laws.TokensPerParameter()}):
        shape = planner.suggest_model(p.params, config.model, head_dim=16)
        cost = metrics.training_flops_per_token(shape, config.seq_len) * p.tokens
        assert f"({accounting.compute_params(shape):.3e}, {cost:.3e})" in printed
        assert cost > 6 * accounting.compute_params(shape) * p.tokens


@pytest.mark.parametrize("arg", ["--compute=-1e21", "--compute=nan", "--params=-5", "--params=0", "--ratio=0",
                                 "--head_dim=0"])
def test_plan_refuses_a_number_that_is_not_positive_with_a_usage_error(arg, capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["scaling", "plan", "--compute=1e21", arg])
    assert exit_info.value.code == 2
    flag, value = arg.split("=")
    assert f"{flag} must be positive" in capsys.readouterr().err
