"""The decoder: parameter counts, document isolation in packed rows, logical axes, dtypes."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from configs import base, tiny
from pretrain_jax import attention, axes, layers, metrics, model
from pretrain_jax.input_pipeline import segments_and_positions

EOS = 2


def model_config(**overrides):
    cfg = tiny.get_config().model
    cfg.update(overrides)
    return cfg


def init(cfg, seed=0):
    return nn.unbox(model.init_params(cfg, jax.random.key(seed)))


def forward(cfg, params, rows):
    batch = segments_and_positions(np.asarray(rows), EOS)
    return model.apply(cfg, params, batch["tokens"], batch["segment_ids"], batch["positions"])


@pytest.mark.parametrize("overrides", [
    dict(),  # GQA (4 query heads, 2 kv heads), untied, scanned
    dict(num_kv_heads=4),  # MHA
    dict(num_kv_heads=1),  # MQA
    dict(tie_embeddings=True),
    dict(scan_layers=False, num_layers=3),
    dict(head_dim=24, dim=80, mlp_dim=96),
    dict(qk_norm=True),
    dict(qk_norm=True, scan_layers=False, num_layers=3, head_dim=24, dim=80, mlp_dim=96),
])
def test_param_count_matches_the_parameter_tree(overrides):
    cfg = model_config(**overrides)
    params = init(cfg)
    counts = model.param_count(cfg)
    assert sum(x.size for x in jax.tree.leaves(params)) == counts["total"]
    assert counts["total"] == counts["embedding"] + counts["non_embedding"]


@pytest.mark.parametrize("name, dim, layers, heads, billions", [
    ("llama_7b", 4096, 32, 32, 6.7), ("llama_13b", 5120, 40, 40, 13.0),
    ("llama_33b", 6656, 60, 52, 32.5), ("llama_65b", 8192, 80, 64, 65.2),
])
def test_llama_table_sizes_come_out_of_the_formula(name, dim, layers, heads, billions):
    """Touvron et al. 2023, Table 2, counts with the 32k vocabulary and untied head."""
    cfg = __import__(f"configs.{name}", fromlist=["get_config"]).get_config().model
    assert (cfg.dim, cfg.num_layers, cfg.num_heads) == (dim, layers, heads)
    assert model.param_count(cfg)["total"] / 1e9 == pytest.approx(billions, rel=0.01)


@pytest.mark.parametrize("causal", [True, False])
def test_a_document_cannot_see_its_neighbours_in_a_packed_row(causal):
    cfg = model_config(causal=causal)
    params = init(cfg)
    doc_a, doc_b, doc_c = [5, 6, 7, EOS], [8, 9, 10, 11, 12, EOS], [13, 14, 15]
    row = doc_a + doc_b + doc_c
    changed = doc_a + [20, 21, 22, 23, 24, EOS] + doc_c  # only document b differs
    logits, logits_changed = forward(cfg, params, [row, changed])
    a, b = slice(0, 4), slice(4, 10)
    c = slice(10, 13)
    np.testing.assert_array_equal(logits[a], logits_changed[a])
    np.testing.assert_allclose(logits[c], logits_changed[c], atol=1e-6)
    assert not np.allclose(logits[b], logits_changed[b])  # the change is visible where it should be


def test_a_packed_document_gets_the_logits_it_would_get_alone():
    """Positions restart at each document, so packing changes nothing."""
    cfg = model_config()
    params = init(cfg)
    doc_a, doc_b = [5, 6, 7, EOS], [8, 9, 10, 11]
    packed = forward(cfg, params, [doc_a + doc_b])[0]
    alone = forward(cfg, params, [doc_b + [EOS] * 4])[0]
    np.testing.assert_allclose(packed[4:], alone[:4], atol=1e-5)


def test_causal_model_does_not_look_ahead_and_bidirectional_does():
    tokens = [5, 6, 7, 8, 9, 10]
    for causal, expect_same in [(True, True), (False, False)]:
        cfg = model_config(causal=causal)
        params = init(cfg)
        logits = forward(cfg, params, [tokens, tokens[:3] + [30, 31, 32]])
        assert np.allclose(logits[0, :3], logits[1, :3], atol=1e-6) == expect_same


def test_rotary_angles_are_each_position_times_the_rope_frequencies():
    positions = jnp.asarray([[0, 1, 2, 0, 1, 2, 3, 4]])  # two packed documents
    rotary = layers.rotary_angles(positions, head_dim=8, theta=10000.0, num_positions=8)
    angles = np.asarray(positions, np.float64)[..., None] * 10000.0 ** (-np.arange(0, 8, 2) / 8)
    np.testing.assert_allclose(rotary.sin, np.sin(angles), atol=1e-6)
    np.testing.assert_allclose(rotary.cos, np.cos(angles), atol=1e-6)


def test_rotated_query_key_products_depend_only_on_the_distance():
    """RoPE's point: q at position m against k at position n sees m - n, not m or n."""
    kq, kk = jax.random.split(jax.random.key(3))
    q, k = jax.random.normal(kq, (1, 1, 1, 16)), jax.random.normal(kk, (1, 1, 1, 16))

    def score(m, n):
        rotate = lambda x, p: layers.rotary_embedding(  # noqa: E731
            x, layers.rotary_angles(jnp.asarray([[p]]), 16, 10000.0, num_positions=64))
        return float(jnp.sum(rotate(q, m) * rotate(k, n)))

    np.testing.assert_allclose(score(7, 3), score(40, 36), rtol=1e-5)
    assert abs(score(7, 3) - score(7, 4)) > 1e-3


def test_attention_implementations_agree():
    rows = [[5, 6, 7, EOS, 8, 9, 10, 11], [12, EOS, 13, 14, 15, 16, EOS, 17]]
    cfg = model_config()
    params = init(cfg)
    reference = forward(cfg, params, rows)
    other = forward(model_config(attention_impl="dot_product_attention"), params, rows)
    np.testing.assert_allclose(reference, other, atol=1e-5)


def in_order(segment_ids):
    """Positions that rise through the row: the causal mask of tokens in array order."""
    return jnp.broadcast_to(jnp.arange(segment_ids.shape[1]), segment_ids.shape)


@pytest.mark.parametrize("kernel", [attention.xla_attention, attention.jax_nn_attention])
def test_causal_attention_in_blocks_equals_attention_over_the_whole_row(kernel):
    """Skipping the masked upper triangle block by block changes no output, across documents and padding."""
    kq, kk, kv = jax.random.split(jax.random.key(0), 3)
    q = jax.random.normal(kq, (2, 48, 4, 8))
    k, v = jax.random.normal(kk, (2, 48, 2, 8)), jax.random.normal(kv, (2, 48, 2, 8))
    segment_ids = jnp.asarray([[1] * 20 + [2] * 28, [1] * 30 + [0] * 18])
    mask = attention.attention_mask(segment_ids, in_order(segment_ids), causal=True)
    np.testing.assert_allclose(attention.causal_blocks(kernel, q, k, v, mask, block=16), kernel(q, k, v, mask),
                               atol=1e-6)


@pytest.mark.parametrize("impl", ["cudnn", "splash", "pallas_gpu"])
def test_decoding_runs_the_reference_kernel_whatever_the_training_kernel(impl):
    """Queries against a longer key/value cache (generation) never reach a flash kernel, so decoding runs
    anywhere, with the same logits."""
    cfg, tokens = model_config(), np.array([[5, 6, 7, 8]], np.int32)
    params, positions = init(cfg), np.arange(4, dtype=np.int32)[None]
    decoding = attention.Decoding(jnp.int32(0), jnp.ones(tokens.shape, bool))
    reference, _ = model.decode(cfg, params, None, tokens, positions, decoding)
    other, _ = model.decode(model_config(attention_impl=impl), params, None, tokens, positions, decoding)
    np.testing.assert_array_equal(other, reference)


@pytest.mark.parametrize("causal", [True, False])
@pytest.mark.parametrize("kv_heads", [1, 2, 4])
def test_attention_gradients_equal_autodiff_of_jax_dot_product_attention(causal, kv_heads):
    """xla_attention's hand-written backward against JAX's own attention differentiated by autodiff."""
    kq, kk, kv, kd = jax.random.split(jax.random.key(1), 4)
    q = jax.random.normal(kq, (2, 24, 4, 8))
    k, v = jax.random.normal(kk, (2, 24, kv_heads, 8)), jax.random.normal(kv, (2, 24, kv_heads, 8))
    d_out = jax.random.normal(kd, q.shape)
    segment_ids = jnp.asarray([[1] * 10 + [2] * 14, [1] * 17 + [0] * 7])
    mask = attention.attention_mask(segment_ids, in_order(segment_ids), causal)

    def grads(fn):
        return jax.grad(lambda q, k, v: jnp.sum(fn(q, k, v, mask) * d_out), argnums=(0, 1, 2))(q, k, v)

    for ours, reference in zip(grads(attention.xla_attention), grads(attention.jax_nn_attention)):
        np.testing.assert_allclose(ours, reference, atol=2e-5)


def test_attention_gradients_keep_the_inputs_dtype():
    q = jnp.ones((1, 8, 4, 8), jnp.bfloat16)
    kv = jnp.ones((1, 8, 2, 8), jnp.bfloat16)
    mask = attention.attention_mask(jnp.ones((1, 8), jnp.int32), in_order(jnp.ones((1, 8))), causal=True)
    grads = jax.grad(lambda q, k, v: jnp.sum(attention.xla_attention(q, k, v, mask).astype(jnp.float32)),
                     argnums=(0, 1, 2))(q, kv, kv)
    assert [g.dtype for g in grads] == [jnp.bfloat16] * 3


def test_every_parameter_carries_logical_axis_names_one_per_dimension():
    boxed = model.init_params(model_config(), jax.random.key(0))
    leaves = jax.tree.leaves(boxed, is_leaf=lambda x: isinstance(x, nn.LogicallyPartitioned))
    assert leaves and all(isinstance(leaf, nn.LogicallyPartitioned) for leaf in leaves)
    for leaf in leaves:
        assert len(leaf.names) == leaf.value.ndim
        assert leaf.names[0] in (axes.LAYERS, axes.VOCAB, axes.EMBED, axes.NORM)


def test_scanned_layers_stack_parameters_on_a_leading_layers_axis():
    cfg = model_config(num_layers=3)
    boxed = model.init_params(cfg, jax.random.key(0))
    wq = boxed["layers"]["attention"]["wq"]
    assert wq.names == (axes.LAYERS, axes.EMBED, axes.HEADS, axes.HEAD_DIM)
    assert wq.value.shape == (3, cfg.dim, cfg.num_heads, cfg.dim // cfg.num_heads)


def test_bfloat16_compute_keeps_float32_parameters_and_logits():
    cfg = model_config(dtype="bfloat16")
    params = init(cfg)
    assert all(x.dtype == jnp.float32 for x in jax.tree.leaves(params))
    logits = forward(cfg, params, [[5, 6, 7, EOS]])
    assert logits.dtype == jnp.float32
    np.testing.assert_allclose(logits, forward(model_config(), params, [[5, 6, 7, EOS]]), atol=0.1)


def test_base_config_is_the_llama_7b_shape():
    cfg = base.get_config().model
    assert (cfg.dim, cfg.num_layers, cfg.num_heads, cfg.mlp_dim) == (4096, 32, 32, 11008)


def without_qk_norm(params):
    """A QK-norm model's parameters less its q_norm and k_norm scales: the plain model's tree."""
    attn = {k: v for k, v in params["layers"]["attention"].items() if k not in ("q_norm", "k_norm")}
    return {**params, "layers": {**params["layers"], "attention": attn}}


def scaled_queries_and_keys(params, factor):
    attn = params["layers"]["attention"]
    attn = {**attn, "wq": attn["wq"] * factor, "wk": attn["wk"] * factor}
    return {**params, "layers": {**params["layers"], "attention": attn}}


def test_qk_norm_changes_the_output_and_frees_it_from_the_query_and_key_scale():
    """With QK-norm, logits no longer grow with wq and wk: scaling both by 10 changes nothing (up to eps)."""
    rows = [[5, 6, 7, EOS, 8, 9, 10, 11]]
    qk_cfg, plain_cfg = model_config(qk_norm=True), model_config()
    params = init(qk_cfg)
    plain = without_qk_norm(params)
    assert not np.allclose(forward(qk_cfg, params, rows), forward(plain_cfg, plain, rows), atol=1e-3)
    np.testing.assert_allclose(forward(qk_cfg, scaled_queries_and_keys(params, 10.0), rows),
                               forward(qk_cfg, params, rows), atol=1e-4)
    assert not np.allclose(forward(plain_cfg, scaled_queries_and_keys(plain, 10.0), rows),
                           forward(plain_cfg, plain, rows), atol=1e-3)


def test_qk_norm_scales_are_one_per_head_dim_feature_with_norm_axis_names():
    cfg = model_config(qk_norm=True, num_layers=3)
    boxed = model.init_params(cfg, jax.random.key(0))
    for name in ("q_norm", "k_norm"):
        scale = boxed["layers"]["attention"][name]["scale"]
        assert scale.names == (axes.LAYERS, axes.NORM)
        assert scale.value.shape == (3, cfg.dim // cfg.num_heads)


def test_qk_norm_scales_count_in_the_training_flops():
    """6N counts every parameter but the embedding table, norm scales included: 6 x 2 x head_dim per layer."""
    plain, qk = model_config(), model_config(qk_norm=True)
    extra = metrics.training_flops_per_token(qk, 64) - metrics.training_flops_per_token(plain, 64)
    assert extra == 6 * 2 * (plain.dim // plain.num_heads) * plain.num_layers


def test_qk_norm_holds_in_cached_decoding_and_every_kernel():
    """Prefill then one token a call through the cache, and each CPU kernel, give the training forward's logits."""
    cfg = model_config(qk_norm=True)
    params = init(cfg)
    tokens = np.array([[5, 6, 7, 8, 9, 10, 11, 12], [13, 14, 15, 16, 17, 18, 19, 20]], np.int32)
    positions = np.broadcast_to(np.arange(8, dtype=np.int32), tokens.shape)
    reference = model.apply(cfg, params, tokens, np.ones_like(tokens), positions)
    # cudnn: GPU only; splash: rows in multiples of its 128-lane tiles (tests/pretrain_jax/test_flash_kernels.py)
    for impl in set(attention.ATTENTION_IMPLS) - {"cudnn", "splash"}:
        np.testing.assert_allclose(model.apply(model_config(qk_norm=True, attention_impl=impl), params, tokens,
                                               np.ones_like(tokens), positions), reference, atol=1e-5)
    valid = jnp.ones(tokens.shape, bool)
    logits, cache = model.decode(cfg, params, None, tokens[:, :5], positions[:, :5],
                                 attention.Decoding(jnp.int32(0), valid))
    decoded = [logits]
    for i in range(5, 8):
        logits, cache = model.decode(cfg, params, cache, tokens[:, i:i + 1], positions[:, i:i + 1],
                                     attention.Decoding(jnp.int32(i), valid))
        decoded.append(logits)
    np.testing.assert_allclose(np.concatenate(decoded, axis=1), reference, atol=1e-5)
