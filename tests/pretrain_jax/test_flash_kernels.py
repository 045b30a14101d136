"""The flash kernels in Pallas interpret mode equal the reference attention, forward and backward, on packed rows.

splash: JAX's TPU splash attention (grouped heads in the kernel); pallas_gpu: JAX's Triton flash attention
with segment ids. Rows hold several documents and padding; float32 throughout.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from pretrain_jax import attention

LENGTH = 256  # two 128-row tiles of the GPU kernel; splash takes the row as one tile


def packed(*rows):
    """[rows, length] segment ids from each row's document lengths (segment 0 is padding), and every token's
    position in its document."""
    segments = np.array([np.concatenate([np.full(n, s) for s, n in row]) for row in rows])
    starts = np.diff(segments, axis=1, prepend=-1) != 0  # where each document (or the padding) begins
    index = np.arange(segments.shape[1])
    return segments, index - np.maximum.accumulate(np.where(starts, index, 0), axis=1)


SEGMENTS, POSITIONS = packed([(1, 100), (2, 60), (3, 96)],  # three documents
                             [(1, 200), (0, 56)])  # one document, then padding


def inputs(kv_heads, heads=4, head_dim=16, length=LENGTH):
    kq, kk, kv, kg = jax.random.split(jax.random.key(kv_heads), 4)
    q = jax.random.normal(kq, (2, length, heads, head_dim))
    k = jax.random.normal(kk, (2, length, kv_heads, head_dim))
    v = jax.random.normal(kv, (2, length, kv_heads, head_dim))
    return q, k, v, jax.random.normal(kg, q.shape)


@pytest.mark.parametrize("impl", ["splash", "pallas_gpu"])
@pytest.mark.parametrize("causal, kv_heads", [(True, 2), (False, 4), (True, 1)])
def test_a_flash_kernel_equals_the_reference_forward_and_backward(impl, causal, kv_heads):
    q, k, v, d_out = inputs(kv_heads)
    segment_ids, positions = jnp.asarray(SEGMENTS), jnp.asarray(POSITIONS)
    real = (segment_ids != 0)[:, :, None, None]  # padding's outputs are never scored

    def loss(kernel):
        return lambda q, k, v: jnp.sum(jnp.where(real, kernel(q, k, v, segment_ids, positions, causal), 0.0) * d_out)

    reference, kernel = attention.ATTENTION_IMPLS["xla"], attention.ATTENTION_IMPLS[impl]
    got = jax.jit(kernel, static_argnums=5)(q, k, v, segment_ids, positions, causal)
    np.testing.assert_allclose(jnp.where(real, got, 0),
                               jnp.where(real, reference(q, k, v, segment_ids, positions, causal), 0),
                               atol=1e-5, rtol=1e-5)
    expected = jax.grad(loss(reference), (0, 1, 2))(q, k, v)
    for got, want in zip(jax.jit(jax.grad(loss(kernel), (0, 1, 2)))(q, k, v), expected):
        np.testing.assert_allclose(got, want, atol=1e-5, rtol=1e-5)


def test_kernels_run_natively_only_on_their_platform_unless_compiled_for_it():
    assert attention._interpret("tpu") and attention._interpret("gpu")  # this machine's CPU
    with attention.compiling_for("tpu"):
        assert not attention._interpret("tpu") and attention._interpret("gpu")
    assert attention._interpret("tpu")


@pytest.mark.parametrize("kv_heads", [4, 2])  # 2 kv heads on a tensor axis of 4: repeated to the query heads
def test_on_a_mesh_each_device_runs_the_kernel_on_its_batch_and_heads(kv_heads):
    from pretrain_jax import sharding
    from configs import tiny

    config = tiny.get_config()
    config.mesh.update(data=2, fsdp=1, tensor=4)
    mesh = sharding.make_mesh(config.mesh, jax.devices()[:8])
    q, k, v, _ = inputs(kv_heads)
    segment_ids, positions = jnp.asarray(SEGMENTS), jnp.asarray(POSITIONS)
    real = (segment_ids != 0)[:, :, None, None]
    expected = attention.ATTENTION_IMPLS["xla"](q, k, v, segment_ids, positions, True)
    with jax.set_mesh(mesh), sharding.activation_rules():
        got = jax.jit(attention.ATTENTION_IMPLS["splash"], static_argnums=5)(q, k, v, segment_ids, positions, True)
    np.testing.assert_allclose(jnp.where(real, got, 0), jnp.where(real, expected, 0), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("mesh_axes, kv_heads", [({"data": 2, "context": 4, "tensor": 1}, 2),
                                                 ({"data": 1, "context": 2, "tensor": 4}, 2),
                                                 ({"data": 1, "context": 8, "tensor": 1}, 1)])
def test_splash_under_context_parallelism_equals_the_reference_on_load_balanced_rows(mesh_axes, kv_heads):
    """Rows split over the context axis in load-balanced order (each device an early and a late chunk): the kernel
    gets every key, back in row order, and its causal mask compares the queries' places in the row. A device's
    queries are one 128-row tile, the kernel's smallest."""
    from pretrain_jax import sharding
    from configs import tiny

    parts = mesh_axes["context"]
    length = 128 * parts
    config = tiny.get_config()
    config.mesh.update(fsdp=1, **mesh_axes)
    mesh = sharding.make_mesh(config.mesh, jax.devices()[:8])
    segments, positions = packed([(1, length // 3), (2, 70), (3, length - length // 3 - 70)],
                                 [(1, length - 90), (0, 90)])
    order = sharding.load_balanced_order(length, parts)
    q, k, v, d_out = inputs(kv_heads, length=length)

    def loss(kernel, order):
        segment_ids, positions_ = jnp.asarray(segments[:, order]), jnp.asarray(positions[:, order])
        real = (segment_ids != 0)[:, :, None, None]
        return lambda q, k, v: jnp.sum(jnp.where(real, kernel(q, k, v, segment_ids, positions_, True), 0.0)
                                       * d_out[:, order])

    # the reference on the rows in order; the kernel on the rows as the context axis holds them
    loss_in_order, gradients = jax.value_and_grad(loss(attention.ATTENTION_IMPLS["xla"], slice(None)),
                                                  (0, 1, 2))(q, k, v)
    with jax.set_mesh(mesh), sharding.activation_rules():
        got = jax.jit(jax.value_and_grad(loss(attention.ATTENTION_IMPLS["splash"], order), (0, 1, 2)))(
            *(x[:, order] for x in (q, k, v)))
    np.testing.assert_allclose(got[0], loss_in_order, rtol=1e-5)
    for got_grad, want in zip(got[1], gradients):
        np.testing.assert_allclose(got_grad, want[:, order], atol=1e-5, rtol=1e-5)
