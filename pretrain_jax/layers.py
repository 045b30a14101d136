"""The small parts of the decoder: RMSNorm, rotary embedding, the SwiGLU MLP.

Every parameter is created with its logical axis names (pretrain_jax/sharding.py
maps them to mesh axes); no module here knows about a mesh.
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from pretrain_jax import axes

Dtype = Any


def param_with_axes(module: nn.Module, name: str, shape: Sequence[int], names: tuple[str, ...],
                    init: nn.initializers.Initializer, dtype: Dtype) -> jax.Array:
    """A parameter whose logical axis names travel with it (as nn.LogicallyPartitioned)."""
    return module.param(name, nn.with_logical_partitioning(init, names), tuple(shape), dtype)


class RMSNorm(nn.Module):
    """Root-mean-square norm (Zhang & Sennrich 2019), computed in float32."""

    eps: float
    dtype: Dtype
    param_dtype: Dtype

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        scale = param_with_axes(self, "scale", (x.shape[-1],), (axes.NORM,), nn.initializers.ones,
                                self.param_dtype)
        x32 = x.astype(jnp.float32)
        x32 = x32 * jax.lax.rsqrt(jnp.mean(x32 * x32, axis=-1, keepdims=True) + self.eps)
        return (x32 * scale.astype(jnp.float32)).astype(self.dtype)


def dense(x: jax.Array, kernel: jax.Array, in_dims: int = 1) -> jax.Array:
    """x [..., *in] times kernel [*in, *out] -> [..., *out], as one 2-D matmul.

    The same product as an einsum over [batch, length, ...], but XLA's CPU backward
    of a 2-D matmul is about 1.4x faster (benchmarks/train_throughput.py --pieces).
    """
    in_shape, out_shape = kernel.shape[:in_dims], kernel.shape[in_dims:]
    fan_in = math.prod(in_shape)
    y = x.reshape(-1, fan_in) @ kernel.reshape(fan_in, -1)  # [batch * length, fan_out]
    return y.reshape(*x.shape[:x.ndim - in_dims], *out_shape)


class Rotary(NamedTuple):
    """Sine and cosine of RoPE's angles at each token's position, each [batch, length, head_dim/2]
    float32; made once per forward pass (`rotary_angles`) for every layer's queries and keys."""

    sin: jax.Array
    cos: jax.Array


def llama3_scaled(inv_freq: np.ndarray, factor: float, low_freq_factor: float, high_freq_factor: float,
                  original_max_position: int) -> np.ndarray:
    """RoPE frequencies for a longer context, Llama 3.1's way (Dubey et al. 2024; transformers' "llama3" rope
    type): wavelengths longer than original_max_position / low_freq_factor are stretched by `factor`, shorter
    than original_max_position / high_freq_factor kept, and those between interpolated smoothly."""
    wavelength = 2 * np.pi / inv_freq
    smooth = (original_max_position / wavelength - low_freq_factor) / (high_freq_factor - low_freq_factor)
    scaled = np.where(wavelength > original_max_position / low_freq_factor, inv_freq / factor, inv_freq)
    medium = (wavelength >= original_max_position / high_freq_factor) & (
        wavelength <= original_max_position / low_freq_factor)
    return np.where(medium, (1 - smooth) * scaled / factor + smooth * scaled, scaled).astype(np.float32)


def rotary_angles(positions: jax.Array, head_dim: int, theta: float, num_positions: int,
                  scaling: Any = None) -> Rotary:
    """positions: [batch, length] int in [0, num_positions), restarting at 0 for every packed document.

    The sines and cosines are a table of constants (NumPy, at trace time) that positions
    index. Computed in the step instead, XLA fused a sine and a cosine into the loop over
    every element of q and k (per head, per layer, forward and backward): the rotations
    ran 1.4x to 3.8x slower on CPU. `scaling` (model.rope_scaling) with a factor above 1
    stretches the frequencies for long contexts (`llama3_scaled`).
    """
    inv_freq = 1.0 / (theta ** (np.arange(0, head_dim, 2, dtype=np.float32) / np.float32(head_dim)))
    if scaling is not None and scaling.factor > 1:
        inv_freq = llama3_scaled(inv_freq, scaling.factor, scaling.low_freq_factor, scaling.high_freq_factor,
                                 scaling.original_max_position)
    angles = np.arange(num_positions, dtype=np.float32)[:, None] * inv_freq.astype(np.float32)
    table = lambda f: jnp.take(jnp.asarray(f(angles)), positions, axis=0)  # noqa: E731
    return Rotary(table(np.sin), table(np.cos))


def rotary_embedding(x: jax.Array, rotary: Rotary) -> jax.Array:
    """Rotates pairs of features by position-dependent angles (RoPE, Su et al. 2021).

    Uses the half-split pairing (feature i with i + head_dim/2), the layout of
    Hugging Face's Llama, so weights convert without permutation.
    x: [batch, length, heads, head_dim].
    """
    sin = rotary.sin[:, :, None, :]  # [batch, length, 1, head_dim/2]
    cos = rotary.cos[:, :, None, :]
    x1, x2 = jnp.split(x.astype(jnp.float32), 2, axis=-1)
    rotated = jnp.concatenate([x1 * cos - x2 * sin, x2 * cos + x1 * sin], axis=-1)
    return rotated.astype(x.dtype)


class SwiGLU(nn.Module):
    """The gated MLP of PaLM and Llama (Shazeer 2020): down(silu(gate(x)) * up(x))."""

    hidden_dim: int
    init_std: float
    out_init_std: float
    dtype: Dtype
    param_dtype: Dtype

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        dim = x.shape[-1]
        init = nn.initializers.normal(self.init_std)
        w_gate = param_with_axes(self, "w_gate", (dim, self.hidden_dim), (axes.EMBED, axes.MLP), init,
                                 self.param_dtype)
        w_up = param_with_axes(self, "w_up", (dim, self.hidden_dim), (axes.EMBED, axes.MLP), init,
                               self.param_dtype)
        w_down = param_with_axes(self, "w_down", (self.hidden_dim, dim), (axes.MLP, axes.EMBED),
                                 nn.initializers.normal(self.out_init_std), self.param_dtype)
        x = x.astype(self.dtype)
        gate = dense(x, w_gate.astype(self.dtype))  # [batch, length, hidden]
        up = dense(x, w_up.astype(self.dtype))
        hidden = nn.with_logical_constraint(nn.silu(gate) * up, (axes.BATCH, axes.LENGTH, axes.ACT_MLP))
        return dense(hidden, w_down.astype(self.dtype))  # [batch, length, dim]
