"""The learning-rate schedule and which parameters weight decay touches."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from configs import base
from pretrain_jax import optimizer


def opt_config(**overrides):
    cfg = base.get_config().optimizer
    cfg.update(overrides)
    return cfg


def expected_lr(step, peak=3e-4, warmup=2000, total=100_000, final=0.1):
    if step < warmup:
        return peak * step / warmup
    progress = min((step - warmup) / (total - warmup), 1.0)
    return peak * (final + (1 - final) * 0.5 * (1 + math.cos(math.pi * progress)))


@pytest.mark.parametrize("step", [0, 1, 1000, 2000, 2001, 30_000, 51_000, 99_999, 100_000, 120_000])
def test_learning_rate_is_linear_warmup_then_cosine_to_a_tenth(step):
    schedule = optimizer.learning_rate_schedule(opt_config(), num_train_steps=100_000)
    assert float(schedule(step)) == pytest.approx(expected_lr(step), rel=1e-5, abs=1e-12)


def test_schedule_ends_at_the_final_fraction_of_the_peak():
    schedule = optimizer.learning_rate_schedule(opt_config(final_learning_rate_fraction=0.1), 10_000)
    assert float(schedule(10_000)) == pytest.approx(3e-5, rel=1e-5)


def params():
    return {"embedding": jnp.ones((4, 2)), "final_norm": {"scale": jnp.ones(2)},
            "layers": {"attention": {"wq": jnp.ones((2, 2))}, "mlp_norm": {"scale": jnp.ones(2)},
                       "proj": {"bias": jnp.ones(2)}}}


def test_weight_decay_mask_skips_norms_and_biases():
    mask = optimizer.weight_decay_mask(params(), decay_embeddings=False)
    assert mask == {"embedding": False, "final_norm": {"scale": False},
                    "layers": {"attention": {"wq": True}, "mlp_norm": {"scale": False}, "proj": {"bias": False}}}
    assert optimizer.weight_decay_mask(params(), decay_embeddings=True)["embedding"] is True


def test_with_zero_gradients_only_decayed_weights_shrink():
    tx = optimizer.make_optimizer(opt_config(warmup_steps=0, peak_learning_rate=0.1), num_train_steps=10)
    p = params()
    updates, _ = tx.update(jax.tree.map(jnp.zeros_like, p), tx.init(p), p)
    new = jax.tree.map(lambda a, u: a + u, p, updates)
    assert np.all(new["layers"]["attention"]["wq"] < 1.0)
    np.testing.assert_array_equal(new["final_norm"]["scale"], 1.0)
    np.testing.assert_array_equal(new["layers"]["mlp_norm"]["scale"], 1.0)
    np.testing.assert_array_equal(new["layers"]["proj"]["bias"], 1.0)


def test_gradients_are_clipped_to_the_global_norm_before_adam():
    """Two steps with gradient norms 20 and 0.5 match AdamW fed the clipped gradients by hand."""
    cfg = opt_config(weight_decay=0.0, grad_clip_norm=1.0, warmup_steps=0, peak_learning_rate=0.1)
    grads = [{"w": jnp.array([12.0, 16.0])}, {"w": jnp.array([0.3, -0.4])}]
    clipped = [{"w": jnp.array([0.6, 0.8])}, grads[1]]
    reference = optax.adamw(optimizer.learning_rate_schedule(cfg, 10), b1=cfg.b1, b2=cfg.b2, eps=cfg.eps,
                            weight_decay=0.0)
    ours = optimizer.make_optimizer(cfg, num_train_steps=10)
    p = {"w": jnp.zeros(2)}
    ours_state, ref_state = ours.init(p), reference.init(p)
    for g, c in zip(grads, clipped):
        ours_update, ours_state = ours.update(g, ours_state, p)
        ref_update, ref_state = reference.update(c, ref_state, p)
    np.testing.assert_allclose(ours_update["w"], ref_update["w"], rtol=1e-6)
