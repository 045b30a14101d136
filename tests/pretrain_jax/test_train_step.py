"""The train step: the z-loss, spike skipping, EMA, per-group norms."""

from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from pretrain_common import records
from pretrain_jax import input_pipeline, model, norms, objectives, train_data, train_state, train_step

ONE_DEVICE = jax.devices()[:1]


@pytest.fixture
def batches(tiny_config):
    data = train_data.TrainData(tiny_config, records.read_metadata(tiny_config.data.dir))
    return [{k: jnp.asarray(v) for k, v in next(data).items()} for _ in range(40)]


def stepper(config):
    setup = train_state.setup(config, ONE_DEVICE)
    return setup.init(config), jax.jit(train_step.make_train_step(config, setup.tx))


def test_the_z_loss_adds_its_coefficient_times_the_mean_squared_log_normalizer(tiny_config, batches):
    tiny_config.model.z_loss = 1e-2
    tiny_config.optimizer.grad_clip_norm = 0.0
    state, step = stepper(tiny_config)
    batch = batches[0]

    @jax.jit
    def mean_log_z_squared(params):
        logits = model.apply(tiny_config.model, params, batch["tokens"], batch["segment_ids"], batch["positions"])
        _, weights = objectives.causal_lm_targets(batch["tokens"], batch["segment_ids"])
        return jnp.sum(jax.nn.logsumexp(logits, axis=-1)**2 * weights) / jnp.sum(weights)

    expected = 1e-2 * float(mean_log_z_squared(state.params))

    _, m = step(state, batch)
    tiny_config.model.z_loss = 0.0
    _, plain = stepper(tiny_config)[1](state, batch)
    assert float(m["z_loss"]) == pytest.approx(expected, rel=1e-5) and expected > 0
    assert float(m["loss"]) == pytest.approx(float(plain["loss"]), rel=1e-6)  # train/loss stays the cross-entropy

    def objective(params):
        sums = objectives.causal_lm_loss(partial(model.apply, tiny_config.model), params, batch)
        return (sums.loss + 1e-2 * sums.log_z_squared) / sums.count

    grad_norm = optax_global_norm(jax.jit(jax.grad(objective))(state.params))
    assert float(m["grad_norm"]) == pytest.approx(grad_norm, rel=1e-5)
    assert float(m["grad_norm"]) != pytest.approx(float(plain["grad_norm"]), rel=1e-5)


def optax_global_norm(tree):
    return float(jnp.sqrt(sum(jnp.sum(x.astype(jnp.float32) ** 2) for x in jax.tree.leaves(tree))))


def test_an_engineered_spike_is_skipped_and_counted_and_training_goes_on(tiny_config, batches):
    tiny_config.spike.update(sigma=6.0, window=8)
    state, step = stepper(tiny_config)
    for batch in batches[:30]:  # a healthy start: losses fall smoothly
        state, m = step(state, batch)
        assert not m["spike"]
    # The spike: rows of one repeated token the model has learned to find unlikely.
    spike_batch = dict(batches[30], tokens=jnp.full_like(batches[30]["tokens"], 400))
    before = jax.tree.map(np.asarray, (state.params, state.opt_state))
    after, m = step(state, spike_batch)
    assert bool(m["spike"]) and int(m["spikes_total"]) == 1, (float(m["loss"]), float(m["grad_norm"]))
    for a, b in zip(jax.tree.leaves(before), jax.tree.leaves((after.params, after.opt_state))):
        np.testing.assert_array_equal(a, np.asarray(b))  # the update did not happen
    assert float(m["learning_rate"]) > 0
    after, m = step(after, batches[31])
    assert not m["spike"] and int(m["spikes_total"]) == 1
    assert not np.array_equal(before[0]["head"], np.asarray(after.params["head"]))


def test_spike_checks_wait_for_half_a_window(tiny_config, batches):
    tiny_config.spike.update(sigma=1e-6, window=8)  # anything above the mean would be a spike
    state, step = stepper(tiny_config)
    spikes = []
    for batch in batches[:10]:
        state, m = step(state, batch)
        spikes.append(bool(m["spike"]))
    assert not any(spikes[:4]) and any(spikes[4:])  # history of 4 = window // 2 before the first check


def test_the_ema_follows_the_applied_updates(tiny_config, batches):
    tiny_config.ema_decay = 0.9
    state, step = stepper(tiny_config)
    ema = jax.tree.map(np.asarray, state.params)
    for batch in batches[:3]:
        state, _ = step(state, batch)
        ema = jax.tree.map(lambda e, p: 0.9 * e + 0.1 * np.asarray(p), ema, state.params)
    for a, b in zip(jax.tree.leaves(ema), jax.tree.leaves(state.ema_params)):
        np.testing.assert_allclose(a, np.asarray(b), rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("scan_layers", [True, False])
def test_group_norms_add_up_to_the_global_norm_and_split_by_layer(tiny_config, scan_layers):
    tiny_config.model.scan_layers = scan_layers
    params = train_state.setup(tiny_config, ONE_DEVICE).init(tiny_config).params
    squares = norms.squared_norms(params, tiny_config.model)
    assert squares["attention"].shape == squares["mlp"].shape == (tiny_config.model.num_layers,)
    np.testing.assert_allclose(float(norms.global_norm(squares)), optax_global_norm(params), rtol=1e-6)
    layer = params["layers"]["mlp"]["w_up"][1] if scan_layers else params["layers_1"]["mlp"]["w_up"]
    assert float(squares["mlp"][1]) >= float(jnp.sum(layer**2))
    scalars = norms.scalars("grad", jax.device_get(squares))
    assert set(scalars) >= {"norms/grad/embedding", "norms/grad/head", "norms/grad/layer_01/attention"}


def test_step_metrics_carry_the_batch_tokens_for_a_ramp(tiny_config, batches):
    state, step = stepper(tiny_config)
    half = {k: v[:4] for k, v in batches[0].items()}
    _, m = step(state, half)
    assert float(m["tokens"]) == 4 * tiny_config.seq_len
    assert input_pipeline.local_batch_size(8) == 8
