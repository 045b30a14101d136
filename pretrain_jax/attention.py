"""Grouped-query attention over packed rows.

A packed row holds several documents, told apart by segment ids. A query attends
only to keys of its own document (and, when causal, not to later ones), so the
logits of one document never depend on another document in the same row.

`attention_impl` picks the kernel; `xla` is the reference the others are tested
against. A new kernel is one entry in `ATTENTION_IMPLS`, a function of (q, k, v,
segment_ids, causal): one that takes a dense mask, as `xla_attention` does, is
wrapped by `_masked`; the flash kernels (splash on TPU, Pallas on GPU) take the
segment ids themselves and never build a [length, length] mask. Pallas kernels run
natively on their platform and in interpret mode elsewhere (CPU tests), unless
`compiling_for` names the platform a program is compiled for (ahead of time).
"""

from __future__ import annotations

import contextlib
import contextvars
from typing import Any, Callable, Iterator, NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import PartitionSpec as P

from pretrain_jax import axes, sharding
from pretrain_jax.layers import RMSNorm, Rotary, dense, param_with_axes, rotary_embedding


def attention_mask(segment_ids: jax.Array, positions: jax.Array, causal: bool) -> jax.Array:
    """[batch, 1, q_len, kv_len] bool: True where the query may see the key.

    Causal by the tokens' positions in their document, not by their place in the array:
    within a document positions rise by one per token, so this is the usual triangle,
    and it stays right when context parallelism reorders a row. Padding (segment 0)
    attends to padding, so no row is all-masked (no NaN); its outputs are never scored.
    """
    mask = segment_ids[:, :, None] == segment_ids[:, None, :]
    if causal:
        mask = mask & (positions[:, None, :] <= positions[:, :, None])
    return mask[:, None]


def _grouped(q: jax.Array, k: jax.Array, v: jax.Array) -> tuple[jax.Array, jax.Array, jax.Array]:
    """q as [b, kv, group, t, h] (query heads in groups sharing one key/value head, so k and v are
    not repeated); k, v as [b, kv, s, h]. Batch axes first and the contracted axis last, so XLA's
    CPU dots need no transposes of their own (15% faster forward+backward on CPU than einsums
    over the [b, t, heads, h] layout; same values)."""
    batch, q_len, heads, head_dim = q.shape
    kv_heads = k.shape[2]
    q = q.reshape(batch, q_len, kv_heads, heads // kv_heads, head_dim).transpose(0, 2, 3, 1, 4)
    return q, k.transpose(0, 2, 1, 3), v.transpose(0, 2, 1, 3)


def _ungrouped(x: jax.Array) -> jax.Array:
    """[b, kv, group, t, h] -> [b, t, heads, h], the inverse of `_grouped` on q."""
    batch, kv_heads, group, q_len, head_dim = x.shape
    return x.transpose(0, 3, 1, 2, 4).reshape(batch, q_len, kv_heads * group, head_dim)


@jax.custom_vjp
def xla_attention(q: jax.Array, k: jax.Array, v: jax.Array, mask: jax.Array) -> jax.Array:
    """Reference attention as plain einsums; softmax in float32.

    q: [batch, q_len, heads, head_dim]; k, v: [batch, kv_len, kv_heads, head_dim];
    mask: [batch, 1, q_len, kv_len]. Returns [batch, q_len, heads, head_dim].
    The backward pass is written out (`_xla_attention_bwd`) rather than derived.
    """
    return _xla_attention_fwd(q, k, v, mask)[0]


def _xla_attention_fwd(q, k, v, mask):
    qg, kt, vt = _grouped(q, k, v)
    scores = jnp.einsum("bkgth,bksh->bkgts", qg, kt).astype(jnp.float32) * q.shape[-1] ** -0.5
    scores = jnp.where(mask[:, :, None], scores, jnp.finfo(jnp.float32).min)
    probs = jax.nn.softmax(scores, axis=-1).astype(v.dtype)
    out = jnp.einsum("bkgts,bksh->bkgth", probs, vt)
    return _ungrouped(out), (qg, kt, vt, probs, out)


def _xla_attention_bwd(residuals, d_out):
    """The softmax backward as dS = P * (dP - rowsum(dO * O)), and dK, dV as [b, kv, h, s].

    Against autodiff of the forward: one elementwise pass over the [t, s] scores instead of
    three (the mask's select, the scale and softmax's own backward), and no transposed copies
    of P and dS for the key and value gradients (P's (group, t) axes are contracted as the major
    ones). Masked keys have P = 0, so dS is 0 there without a select. Attention forward+backward
    1.13x (25m) to 1.20x (125m) faster on CPU, and 26% less temporary memory in the 125m step
    (docs/performance-notes.md, session 5); same values to 2e-6.
    """
    qg, kt, vt, probs, out = residuals
    batch, kv_heads, group, q_len, head_dim = qg.shape
    d_out = d_out.reshape(batch, q_len, kv_heads, group, head_dim).transpose(0, 2, 3, 1, 4)
    d_v = jnp.einsum("bkgth,bkgts->bkhs", d_out, probs)
    d_probs = jnp.einsum("bkgth,bksh->bkgts", d_out, vt).astype(jnp.float32)
    row_sums = jnp.sum(d_out.astype(jnp.float32) * out.astype(jnp.float32), axis=-1, keepdims=True)
    d_scores = (probs.astype(jnp.float32) * (d_probs - row_sums) * head_dim**-0.5).astype(qg.dtype)
    d_q = jnp.einsum("bkgts,bksh->bkgth", d_scores, kt)
    d_k = jnp.einsum("bkgth,bkgts->bkhs", qg, d_scores)
    return _ungrouped(d_q), d_k.transpose(0, 3, 1, 2), d_v.transpose(0, 3, 1, 2), None


xla_attention.defvjp(_xla_attention_fwd, _xla_attention_bwd)


def jax_nn_attention(q: jax.Array, k: jax.Array, v: jax.Array, mask: jax.Array) -> jax.Array:
    """`jax.nn.dot_product_attention` with its default implementation, which is XLA's on every backend."""
    return jax.nn.dot_product_attention(q, k, v, mask=mask)


def cudnn_attention(q: jax.Array, k: jax.Array, v: jax.Array, segment_ids: jax.Array, positions: jax.Array,
                    causal: bool) -> jax.Array:
    """cuDNN's fused flash attention (`jax.nn.dot_product_attention(implementation="cudnn")`); GPU only.

    No [q_len, kv_len] probabilities in memory, and causal rows skip the upper triangle
    inside the kernel. Documents stay apart through a [length, length] mask, which JAX hands
    to cuDNN as an additive bias (`pallas_gpu` takes the segment ids instead). Needs bfloat16
    or float16 inputs (config.validate checks).
    """
    return jax.nn.dot_product_attention(q, k, v, mask=attention_mask(segment_ids, positions, causal),
                                        is_causal=causal, implementation="cudnn")


_KERNEL_PLATFORM: contextvars.ContextVar[str | None] = contextvars.ContextVar("kernel_platform", default=None)


@contextlib.contextmanager
def compiling_for(platform: str) -> Iterator[None]:
    """Traces Pallas kernels for `platform` ("tpu", "gpu", "cpu") instead of this process's default backend:
    ahead-of-time compilation for a TPU from a CPU machine, or training on devices of another backend."""
    token = _KERNEL_PLATFORM.set(platform)
    try:
        yield
    finally:
        _KERNEL_PLATFORM.reset(token)


def _interpret(native: str) -> bool:
    """Whether a Pallas kernel written for `native` runs in interpret mode (anywhere else: slow, for tests)."""
    return (_KERNEL_PLATFORM.get() or jax.default_backend()) != native


def _device_specs(q: jax.Array, k: jax.Array, v: jax.Array, mesh: Any
                  ) -> tuple[jax.sharding.PartitionSpec, jax.sharding.PartitionSpec, jax.Array, jax.Array]:
    """Each device's block of q ([batch, length, heads, head_dim]: rows over data x fsdp, length over context,
    heads over tensor) and of k, v (every position: gathered over the context axis). Key/value heads that the
    tensor axis does not divide are repeated to the query heads first, so each device holds the key/value heads
    of its query heads."""
    spec = lambda x, length: sharding.logical_to_spec(  # noqa: E731
        (axes.BATCH, length, axes.ACT_HEADS, axes.HEAD_DIM), x.shape, mesh)
    if spec(k, axes.LENGTH)[2] != spec(q, axes.LENGTH)[2]:
        k, v = (jnp.repeat(x, q.shape[2] // k.shape[2], axis=2) for x in (k, v))
    return spec(q, axes.LENGTH), spec(k, axes.KV_LENGTH), k, v


def _on_each_device(kernel: Callable[..., jax.Array]) -> Callable[..., jax.Array]:
    """A Pallas kernel that reads rows in order, run on each device's shard of the batch and heads: XLA cannot
    partition a Mosaic or Triton call itself. Context parallelism (rows reordered and split) is refused by
    config.validate; `splash_on_mesh` handles it for splash."""

    def core(q: jax.Array, k: jax.Array, v: jax.Array, segment_ids: jax.Array, positions: jax.Array,
             causal: bool) -> jax.Array:
        del positions  # causal by array order
        mesh = jax.sharding.get_abstract_mesh()
        if mesh.empty:  # outside a mesh (one device)
            return kernel(q, k, v, segment_ids, causal)
        q_spec, _, k, v = _device_specs(q, k, v, mesh)
        specs = (q_spec, q_spec, q_spec, jax.sharding.PartitionSpec(q_spec[0], None))
        return jax.shard_map(lambda *args: kernel(*args, causal), mesh=mesh, in_specs=specs, out_specs=q_spec,
                             check_vma=False)(q, k, v, segment_ids)

    return core


# Tile of queries and keys in the flash kernels: MaxText's default splash block (sa_block_q/kv); shorter
# rows take one tile.
FLASH_BLOCK = 512


def _splash_kernel(heads: int, length: int, causal: bool, parts: int, head_shards: int) -> Any:
    """JAX's splash kernel object for rows of `length` whose queries are split into `parts` (the context axis).

    Split rows are in load-balanced order (sharding.load_balanced_order): the causal mask compares the
    queries' places in the row, given to the kernel as its q_sequence, with the keys' places in order
    (the caller puts keys back in order). Its block-sparse mask info is split over queries and heads like q.
    """
    from jax.experimental.pallas.ops.tpu.splash_attention import splash_attention_kernel as splash
    from jax.experimental.pallas.ops.tpu.splash_attention import splash_attention_mask as masks

    shape = (length, length)
    mask = masks.CausalMask(shape) if causal else masks.FullMask(shape)
    if causal and parts > 1:
        mask.q_sequence = sharding.load_balanced_order(length, parts).astype(np.int32)  # in __eq__ and __hash__
    q_block, kv_block = min(FLASH_BLOCK, length // parts), min(FLASH_BLOCK, length)  # a device's queries, all keys
    sizes = splash.BlockSizes(block_q=q_block, block_kv=kv_block, block_kv_compute=kv_block, block_q_dkv=q_block,
                              block_kv_dkv=kv_block, block_kv_dkv_compute=kv_block, block_q_dq=q_block,
                              block_kv_dq=kv_block)
    return splash.make_splash_mha(masks.MultiHeadMask([mask] * heads), block_sizes=sizes, head_shards=head_shards,
                                  q_seq_shards=parts, interpret=_interpret("tpu"))


def _splash(kernel: Any, q: jax.Array, k: jax.Array, v: jax.Array, q_segments: jax.Array,
            kv_segments: jax.Array) -> jax.Array:
    """Runs a splash kernel over the batch; shapes as in `splash_attention`."""
    from jax.experimental.pallas.ops.tpu.splash_attention import splash_attention_kernel as splash

    heads_first = lambda x: x.transpose(0, 2, 1, 3)  # noqa: E731  [batch, heads, length, head_dim]
    segments = splash.SegmentIds(q=q_segments, kv=kv_segments)
    out = jax.vmap(kernel)(heads_first(q * q.shape[-1] ** -0.5), heads_first(k), heads_first(v),
                           segment_ids=segments)
    return heads_first(out)


def splash_attention(q: jax.Array, k: jax.Array, v: jax.Array, segment_ids: jax.Array, causal: bool) -> jax.Array:
    """JAX's Pallas splash attention for TPU (the kernel MaxText runs): flash attention over blocks, causal
    blocks above the diagonal skipped, documents apart by segment ids, grouped-query heads in the kernel.

    q: [batch, length, heads, head_dim]; k, v: [batch, length, kv_heads, head_dim]; rows in order.
    """
    kernel = _splash_kernel(q.shape[2], q.shape[1], causal, parts=1, head_shards=1)
    return _splash(kernel, q, k, v, segment_ids, segment_ids)


def splash_on_mesh(q: jax.Array, k: jax.Array, v: jax.Array, segment_ids: jax.Array, positions: jax.Array,
                   causal: bool) -> jax.Array:
    """`splash_attention` on each device's rows and heads, with the context axis too (Llama 3's method, as
    MaxText's all-gather context parallelism): each device keeps its queries (an early and a late chunk of
    the row), gets every key and value, puts them back in order, and runs the kernel on its share of the
    mask. Never a [length, length] array, so long rows fit where the XLA path's dense mask does not."""
    del positions  # causal by place in the row (documents' positions rise with it)
    mesh = jax.sharding.get_abstract_mesh()
    if mesh.empty:  # outside a mesh (one device)
        return splash_attention(q, k, v, segment_ids, causal)
    q_spec, kv_spec, k, v = _device_specs(q, k, v, mesh)
    parts = sharding.context_size()
    head_shards = q.shape[2] // jax.sharding.NamedSharding(mesh, q_spec).shard_shape(q.shape)[2]
    kernel = _splash_kernel(q.shape[2], q.shape[1], causal, parts, head_shards)
    kernel_spec = kernel.manual_sharding_spec(jax.sharding.NamedSharding(mesh, P(q_spec[2], q_spec[1])))
    in_order = np.argsort(sharding.load_balanced_order(q.shape[1], parts))

    def local(kernel, q, k, v, q_segments, kv_segments):
        if parts > 1:  # keys back in row order, which the kernel's mask reads them in
            k, v, kv_segments = (x[:, in_order] for x in (k, v, kv_segments))
        return _splash(kernel, q, k, v, q_segments, kv_segments)

    specs = (kernel_spec, q_spec, kv_spec, kv_spec, P(q_spec[0], q_spec[1]), P(q_spec[0], None))
    return jax.shard_map(local, mesh=mesh, in_specs=specs, out_specs=q_spec,
                         check_vma=False)(kernel, q, k, v, segment_ids, segment_ids)


def pallas_gpu_attention(q: jax.Array, k: jax.Array, v: jax.Array, segment_ids: jax.Array,
                         causal: bool) -> jax.Array:
    """JAX's Pallas (Triton) flash attention for GPUs with segment ids: packed documents stay apart inside the
    kernel, with no [length, length] bias as cuDNN is given. Key and value heads are repeated to the query
    heads (the kernel has no groups). Shapes as in `splash_attention`."""
    from jax.experimental.pallas.ops.gpu import attention as gpu

    length, group = q.shape[1], q.shape[2] // k.shape[2]
    block = min(FLASH_BLOCK // 4, length)  # the kernel's own default tile (128)
    k, v = jnp.repeat(k, group, axis=2), jnp.repeat(v, group, axis=2)
    return gpu.mha(q, k, v, segment_ids, sm_scale=q.shape[-1] ** -0.5, causal=causal,
                   block_sizes=gpu.BlockSizes(block_q=block, block_k=block, block_q_dkv=block, block_kv_dkv=block,
                                              block_q_dq=block, block_kv_dq=block),
                   interpret=_interpret("gpu"))


# Query rows per block of causal_blocks: 128 halved attention time at lengths 512 and 1024 on CPU.
CAUSAL_BLOCK = 128


def causal_blocks(impl: Callable[..., jax.Array], q: jax.Array, k: jax.Array, v: jax.Array,
                  mask: jax.Array, block: int = CAUSAL_BLOCK) -> jax.Array:
    """Causal self-attention in blocks of query rows, each against the keys up to its last row only.

    Skips the all-masked upper triangle (nearly half the work at long lengths); the
    skipped keys would get zero probability, so the result is the same. Shapes as in
    `xla_attention`, with q_len == kv_len.
    """
    length = q.shape[1]
    if length <= block or length % block:
        return impl(q, k, v, mask)
    outs = [impl(q[:, start:start + block], k[:, :start + block], v[:, :start + block],
                 mask[:, :, start:start + block, :start + block]) for start in range(0, length, block)]
    return jnp.concatenate(outs, axis=1)


def _masked(kernel: Callable[..., jax.Array]) -> Callable[..., jax.Array]:
    """A kernel of a dense mask that computes every (query, key) pair, run over `causal_blocks` when causal
    and the rows are in order (not split over a context axis, whose order is load-balanced)."""
    def core(q: jax.Array, k: jax.Array, v: jax.Array, segment_ids: jax.Array, positions: jax.Array,
             causal: bool) -> jax.Array:
        mask = attention_mask(segment_ids, positions, causal)
        in_order = sharding.context_size() == 1
        return causal_blocks(kernel, q, k, v, mask) if causal and in_order else kernel(q, k, v, mask)
    return core


# name -> core(q, k, v, segment_ids, positions, causal): q [batch, length, heads, head_dim], k and v with
# kv_heads, segment_ids and positions [batch, length]. The platform a kernel is written for, if any.
ATTENTION_IMPLS: dict[str, Callable[..., jax.Array]] = {
    "xla": _masked(xla_attention),
    "dot_product_attention": _masked(jax_nn_attention),
    "cudnn": cudnn_attention,
    "splash": splash_on_mesh,
    "pallas_gpu": _on_each_device(pallas_gpu_attention),
}
KERNEL_PLATFORMS = {"cudnn": "gpu", "splash": "tpu", "pallas_gpu": "gpu"}


class Decoding(NamedTuple):
    """Where a decoding call writes into the key/value cache (pretrain_jax/generate.py).

    index: int32 scalar, the cache slot of the call's first token (0 for the prompt,
    then one slot per generated token); every row writes the same slots.
    valid: [batch, cache_len] bool, False at left padding: no query attends there.
    """

    index: jax.Array
    valid: jax.Array


def decoding_mask(decoding: Decoding, q_len: int) -> jax.Array:
    """[batch, 1, q_len, cache_len] bool: causal over cache slots, padding never seen but by itself."""
    slots = jnp.arange(decoding.valid.shape[1])
    q_slots = decoding.index + jnp.arange(q_len)
    causal = slots[None, :] <= q_slots[:, None]  # [q_len, cache_len]
    itself = slots[None, :] == q_slots[:, None]  # a padding query sees only itself: no all-masked row
    return ((decoding.valid[:, None, :] | itself) & causal)[:, None]


class Attention(nn.Module):
    """Grouped-query self-attention with rotary positions (Ainslie et al. 2023).

    With `qk_norm_eps`, queries and keys are RMS-normalized over head_dim before the rotation,
    one learned scale shared by all heads (QK-norm, Dehghani et al. 2023), as Qwen3 and Gemma 3
    do (OLMo 2 normalizes the whole projection, all heads at once): attention logits cannot
    grow with the weights' norm.
    """

    num_heads: int
    num_kv_heads: int
    head_dim: int
    causal: bool
    impl: str
    init_std: float
    out_init_std: float
    dtype: Any
    param_dtype: Any
    qk_norm_eps: float | None = None  # the QK-norm's RMSNorm epsilon; None: no QK-norm

    @nn.compact
    def __call__(self, x: jax.Array, segment_ids: jax.Array | None, positions: jax.Array, rotary: Rotary,
                 decoding: Decoding | None = None) -> jax.Array:
        """Training: keys are this call's tokens, masked by segment. Decoding: keys are the cache."""
        dim = x.shape[-1]
        init = nn.initializers.normal(self.init_std)
        q_axes = (axes.EMBED, axes.HEADS, axes.HEAD_DIM)
        kv_axes = (axes.EMBED, axes.KV_HEADS, axes.HEAD_DIM)
        wq = param_with_axes(self, "wq", (dim, self.num_heads, self.head_dim), q_axes, init, self.param_dtype)
        wk = param_with_axes(self, "wk", (dim, self.num_kv_heads, self.head_dim), kv_axes, init,
                             self.param_dtype)
        wv = param_with_axes(self, "wv", (dim, self.num_kv_heads, self.head_dim), kv_axes, init,
                             self.param_dtype)
        wo = param_with_axes(self, "wo", (self.num_heads, self.head_dim, dim),
                             (axes.HEADS, axes.HEAD_DIM, axes.EMBED),
                             nn.initializers.normal(self.out_init_std), self.param_dtype)

        x = x.astype(self.dtype)
        q = dense(x, wq.astype(self.dtype))  # [batch, length, heads, head_dim]
        k = dense(x, wk.astype(self.dtype))  # [batch, length, kv_heads, head_dim]
        v = dense(x, wv.astype(self.dtype))
        if self.qk_norm_eps is not None:  # before the rotation and the cache: every path sees normed q and k
            q = RMSNorm(self.qk_norm_eps, self.dtype, self.param_dtype, name="q_norm")(q)
            k = RMSNorm(self.qk_norm_eps, self.dtype, self.param_dtype, name="k_norm")(k)
        q = rotary_embedding(q, rotary)
        k = rotary_embedding(k, rotary)

        if decoding is None:
            if sharding.context_size() > 1:  # every position's keys and values, all-gathered over the context axis
                k, v = (nn.with_logical_constraint(x, (axes.BATCH, axes.KV_LENGTH, axes.ACT_KV_HEADS, axes.HEAD_DIM))
                        for x in (k, v))
            with jax.named_scope("attention_core"):  # names the kernel's ops in profiles
                out = ATTENTION_IMPLS[self.impl](q, k, v, segment_ids, positions, self.causal)
        else:  # queries against the cache: a few rows, the reference kernel whatever the training one
            k, v = self._cached(k, v, decoding)
            out = xla_attention(q, k, v, decoding_mask(decoding, x.shape[1]))
        out = nn.with_logical_constraint(out, (axes.BATCH, axes.LENGTH, axes.ACT_HEADS, axes.HEAD_DIM))
        return dense(out, wo.astype(self.dtype), in_dims=2)  # [batch, length, dim]

    def _cached(self, k: jax.Array, v: jax.Array, decoding: Decoding) -> tuple[jax.Array, jax.Array]:
        """Writes k, v at slot `decoding.index` of the "cache" collection; returns the whole cache.

        The cache ([batch, cache_len, kv_heads, head_dim] each) is created, zeroed, by the
        first (prompt) call, which must run with mutable=["cache"].
        """
        shape = (k.shape[0], decoding.valid.shape[1], *k.shape[2:])
        cached_k = self.variable("cache", "key", jnp.zeros, shape, k.dtype)
        cached_v = self.variable("cache", "value", jnp.zeros, shape, v.dtype)
        start = (0, decoding.index, 0, 0)
        cached_k.value = jax.lax.dynamic_update_slice(cached_k.value, k, start)
        cached_v.value = jax.lax.dynamic_update_slice(cached_v.value, v, start)
        return cached_k.value, cached_v.value
