"""The chunked output head: the loss and its gradients equal the plain ones, without [batch, length, vocab] logits."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from pretrain_common import records
from pretrain_jax import model, objectives, train_data, train_state, train_step

ONE_DEVICE = jax.devices()[:1]


def loss_and_grads(config, params, batch):
    loss_fn = objectives.loss_fn(config, model.apply_for_loss(config.model))

    def objective(params):
        sums = loss_fn(params, batch, jax.random.key(0))
        return (sums.loss + 1e-3 * sums.log_z_squared) / sums.count, sums

    return jax.jit(jax.value_and_grad(objective, has_aux=True))(params)


@pytest.mark.parametrize("objective, tie_embeddings", [("causal_lm", False), ("masked_lm", True)])
def test_the_chunked_loss_and_gradients_equal_the_plain_ones(tiny_config, objective, tie_embeddings):
    if objective == "masked_lm":
        tiny_config.update(objective="masked_lm")
        tiny_config.model.update(causal=False, vocab_size=513)
    tiny_config.model.tie_embeddings = tie_embeddings
    params = train_state.setup(tiny_config, ONE_DEVICE).init(tiny_config).params
    batch = next(train_data.TrainData(tiny_config, records.read_metadata(tiny_config.data.dir)))
    (plain, plain_sums), plain_grads = loss_and_grads(tiny_config, params, batch)
    tiny_config.model.logits_chunk = 16  # 4 chunks of the 64 positions
    (chunked, chunked_sums), chunked_grads = loss_and_grads(tiny_config, params, batch)
    np.testing.assert_allclose(chunked, plain, rtol=1e-6)
    for a, b in zip(plain_sums, chunked_sums):
        np.testing.assert_allclose(b, a, rtol=1e-6)
    for a, b in zip(jax.tree.leaves(plain_grads), jax.tree.leaves(chunked_grads)):
        # Within 1e-6 of the gradient's scale: sums in another order differ by float32 rounding, which is
        # relatively large only on entries near zero.
        np.testing.assert_allclose(b, a, rtol=1e-6, atol=1e-6 * float(np.abs(a).max()))


def temporaries(config):
    setup = train_state.setup(config, ONE_DEVICE)
    batch = {k: jax.ShapeDtypeStruct((config.global_batch_size, config.seq_len), jnp.int32)
             for k in ("tokens", "segment_ids", "positions")}
    with jax.set_mesh(setup.mesh):
        compiled = jax.jit(train_step.make_train_step(config, setup.tx)).lower(setup.abstract, batch).compile()
    return compiled.memory_analysis().temp_size_in_bytes


def test_the_chunked_step_never_holds_the_logits(tiny_config):
    tiny_config.model.vocab_size = 32000
    tiny_config.update(seq_len=256, global_batch_size=16)
    logits = 16 * 256 * 32000 * 4  # float32: 524 MB
    plain = temporaries(tiny_config)
    tiny_config.model.logits_chunk = 32
    chunked = temporaries(tiny_config)
    print(f"step temporaries: {plain / 2**20:.0f} MiB plain, {chunked / 2**20:.0f} MiB in chunks of 32 positions")
    assert plain > logits and chunked < plain - logits / 2
