"""Causal-LM targets and loss over packed rows."""

import jax
import jax.numpy as jnp
import numpy as np

from pretrain_jax import objectives
from pretrain_jax.input_pipeline import segments_and_positions

EOS = 2


def test_targets_never_cross_a_document_boundary_or_touch_padding():
    batch = segments_and_positions(np.array([[5, 6, EOS, 7, 8, -1, -1]]), EOS)
    targets, weights = objectives.causal_lm_targets(jnp.asarray(batch["tokens"]),
                                                    jnp.asarray(batch["segment_ids"]))
    np.testing.assert_array_equal(targets[0, :5], [6, EOS, 7, 8, 0])
    # 5->6 and 6->EOS count; EOS->7 crosses documents; 7->8 counts; 8->pad and pad don't.
    np.testing.assert_array_equal(weights[0], [1, 1, 0, 1, 0, 0, 0])


def test_the_last_position_of_a_row_has_no_target():
    batch = segments_and_positions(np.array([[5, 6, 7, 8]]), EOS)
    _, weights = objectives.causal_lm_targets(jnp.asarray(batch["tokens"]), jnp.asarray(batch["segment_ids"]))
    np.testing.assert_array_equal(weights[0], [1, 1, 1, 0])


def test_cross_entropy_matches_a_hand_computation():
    logits = jnp.array([[[0.0, jnp.log(3.0)], [jnp.log(2.0), 0.0]]])  # p = [1/4, 3/4], [2/3, 1/3]
    targets = jnp.array([[1, 1]])
    loss = objectives.cross_entropy_sum(logits, targets, jnp.array([[1.0, 1.0]]))
    np.testing.assert_allclose(loss, -np.log(0.75) - np.log(1 / 3), rtol=1e-6)
    masked = objectives.cross_entropy_sum(logits, targets, jnp.array([[1.0, 0.0]]))
    np.testing.assert_allclose(masked, -np.log(0.75), rtol=1e-6)


def test_the_loss_is_computed_in_float32_from_bfloat16_logits():
    logits = jnp.array([[[10.0, 0.0, -10.0]]], jnp.bfloat16)
    loss = objectives.cross_entropy_sum(logits, jnp.array([[2]]), jnp.ones((1, 1)))
    assert loss.dtype == jnp.float32
    np.testing.assert_allclose(loss, 20.0 + np.log1p(np.exp(-10.0) + np.exp(-20.0)), rtol=1e-5)


def test_causal_lm_loss_returns_the_sum_and_the_target_count():
    tokens = jnp.array([[3, 4, EOS, 5]])
    batch = {k: jnp.asarray(v) for k, v in segments_and_positions(np.asarray(tokens), EOS).items()}
    uniform = lambda params, t, s, p: jnp.zeros(t.shape + (8,))  # noqa: E731
    loss_sum, count, log_z_squared = objectives.causal_lm_loss(uniform, None, batch)
    assert float(count) == 2.0
    np.testing.assert_allclose(loss_sum, 2 * np.log(8), rtol=1e-6)
    np.testing.assert_allclose(log_z_squared, 2 * np.log(8) ** 2, rtol=1e-6)  # uniform logits 0: log Z = log 8
    assert jax.numpy.isfinite(loss_sum)
