"""The learning-rate schedules and which parameters weight decay touches."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from configs import base
from pretrain_jax import optimizer

PEAK, FINAL, WARMUP, TOTAL = 3e-4, 0.1, 2000, 100_000  # the Llama defaults over a 100k-step run
# Start, mid-warmup, end of warmup, mid-stable (wsd) / mid-decay, wsd's decay start, middle and end, past the end.
STEPS = [0, 1000, 2000, 40_000, 51_000, 90_000, 95_000, 99_999, 100_000, 120_000]
# float32 rounding at the peak's scale: under jit XLA multiplies by a reciprocal where a schedule divides, so a
# decay to 0 ends at -1.4e-11, not 0.
ATOL = PEAK * 1e-6


def opt_config(**overrides):
    cfg = base.get_config().optimizer
    cfg.update(overrides)
    return cfg


def decayed(shape, done, peak=PEAK, final=FINAL):
    """The decay formulas by hand: `done` is the fraction of the decay done (clipped to [0, 1])."""
    done, end = min(max(done, 0.0), 1.0), peak * final
    return {"linear": peak + (end - peak) * done,
            "cosine": end + (peak - end) * 0.5 * (1 + math.cos(math.pi * done)),
            "1-sqrt": end + (peak - end) * (1 - math.sqrt(done))}[shape]


def closed_form(schedule, step, decay_shape="linear"):
    """Each schedule written out for the defaults (2,000 warmup steps, decay_steps 0, wsd's last 10%)."""
    if step < WARMUP:
        return PEAK * step / WARMUP
    return {
        "cosine": lambda: decayed("cosine", (step - WARMUP) / (TOTAL - WARMUP)),
        "linear": lambda: decayed("linear", (step - WARMUP) / (TOTAL - WARMUP)),
        "wsd": lambda: decayed(decay_shape, (step - 0.9 * TOTAL) / (0.1 * TOTAL)),
        "constant": lambda: PEAK,
        "inverse_sqrt": lambda: PEAK * math.sqrt(WARMUP / step),
    }[schedule]()


def values(schedule, steps):
    """The schedule at int32 steps under jit, as the train step reads it."""
    return np.asarray(jax.jit(schedule)(jnp.asarray(steps, jnp.int32)), np.float64)


SCHEDULE_VARIANTS = [("cosine", "linear"), ("linear", "linear"), ("constant", "linear"), ("inverse_sqrt", "linear"),
                     *[("wsd", shape) for shape in optimizer.DECAY_SHAPES]]


@pytest.mark.parametrize("name, decay_shape", SCHEDULE_VARIANTS)
def test_every_schedule_equals_its_closed_form(name, decay_shape):
    schedule = optimizer.learning_rate_schedule(opt_config(schedule=name, decay_shape=decay_shape), TOTAL)
    expected = [closed_form(name, step, decay_shape) for step in STEPS]
    np.testing.assert_allclose(values(schedule, STEPS), expected, rtol=1e-5, atol=ATOL)


def test_the_default_is_cosine_from_the_peak_to_a_tenth():
    schedule = optimizer.learning_rate_schedule(opt_config(), TOTAL)
    np.testing.assert_allclose(values(schedule, [WARMUP, TOTAL, 2 * TOTAL]), [PEAK, PEAK * FINAL, PEAK * FINAL],
                               rtol=1e-6)


@pytest.mark.parametrize("name", ["cosine", "linear"])
def test_decay_steps_ends_the_decay_early_and_the_rate_stays_flat(name):
    schedule = optimizer.learning_rate_schedule(opt_config(schedule=name, decay_steps=8000), TOTAL)
    steps = [WARMUP, WARMUP + 2000, WARMUP + 8000, 50_000, TOTAL]
    expected = [decayed(name, min((s - WARMUP) / 8000, 1)) for s in steps]
    np.testing.assert_allclose(values(schedule, steps), expected, rtol=1e-5)


def test_linear_without_warmup_to_zero_is_the_olmo_anneal():
    """Starts at the peak and reaches 0 at the last step."""
    schedule = optimizer.learning_rate_schedule(
        opt_config(schedule="linear", warmup_steps=0, final_learning_rate_fraction=0.0), 1000)
    np.testing.assert_allclose(values(schedule, [0, 250, 999, 1000]), [PEAK, 0.75 * PEAK, PEAK / 1000, 0.0],
                               rtol=1e-5, atol=ATOL)


@pytest.mark.parametrize("decay_shape", optimizer.DECAY_SHAPES)
def test_a_wsd_run_cools_down_from_any_of_its_checkpoints(decay_shape):
    """A run continuing a WSD run's state at step S with num_train_steps = S + D and decay_steps = D follows the
    original's stable rate up to S and the closed-form cooldown started at S from there."""
    start, length = 37_000, 3_000
    original = optimizer.learning_rate_schedule(opt_config(schedule="wsd", decay_shape=decay_shape), TOTAL)
    cooldown = optimizer.learning_rate_schedule(
        opt_config(schedule="wsd", decay_shape=decay_shape, decay_steps=length), start + length)
    before = [0, 1000, WARMUP, 20_000, start - 1]
    np.testing.assert_array_equal(values(cooldown, before), values(original, before))
    after = [start, start + 1, start + 1000, start + length - 1, start + length, start + 2 * length]
    expected = [decayed(decay_shape, (step - start) / length) for step in after]
    np.testing.assert_allclose(values(cooldown, after), expected, rtol=1e-5, atol=ATOL)


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
