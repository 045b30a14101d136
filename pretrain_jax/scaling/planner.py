"""From a compute budget to a model: compute-optimal N and D under a law, and a model shape near N.

Three laws answer (laws.py): Chinchilla's parametric fit with its published
constants, the ~20 tokens-per-parameter rule, and a law this toolkit fitted to
your own runs (fit.py). N is the parameter count behind C = 6ND
(accounting.compute_params).
"""

from __future__ import annotations

import dataclasses
import math

import ml_collections

from pretrain_jax.scaling import accounting, laws


@dataclasses.dataclass(frozen=True)
class Plan:
    method: str
    compute: float  # C in FLOPs
    params: float  # N_opt
    tokens: float  # D_opt
    loss: float | None  # the law's predicted loss at (N_opt, D_opt), where it predicts one


def plan(compute: float, named_laws: dict[str, laws.ParametricLaw | laws.TokensPerParameter]) -> list[Plan]:
    """The compute-optimal (N, D) under each law for one budget C = 6ND (the laws' convention, laws.py)."""
    if not compute > 0:
        raise ValueError(f"compute budget must be positive FLOPs, got {compute}")
    plans = []
    for name, law in named_laws.items():
        n, d = (float(x) for x in law.optimal(compute))
        loss = float(law.loss(n, d)) if isinstance(law, laws.ParametricLaw) else None
        plans.append(Plan(name, compute, n, d, loss))
    return plans


def mlp_dim_for(dim: int) -> int:
    """Llama's SwiGLU width: 8/3 dim rounded up to a multiple of 256, or of dim/2 for small models."""
    multiple = min(256, dim // 2)
    return multiple * math.ceil(8 * dim / 3 / multiple)


def shaped(model_cfg: ml_collections.ConfigDict, dim: int, num_layers: int,
           head_dim: int) -> ml_collections.ConfigDict:
    """A copy of model_cfg at width `dim` and depth `num_layers`, heads of `head_dim`, Llama MLP width.

    Keeps the base's ratio of query to key/value heads where it divides.
    """
    heads = dim // head_dim
    group = max(1, model_cfg.num_heads // model_cfg.num_kv_heads)
    cfg = ml_collections.ConfigDict(model_cfg.to_dict())
    cfg.update(dim=dim, num_layers=num_layers, num_heads=heads,
               num_kv_heads=heads // group if heads % group == 0 else heads, head_dim=0, mlp_dim=mlp_dim_for(dim))
    return cfg


def suggest_model(params: float, model_cfg: ml_collections.ConfigDict, head_dim: int = 64,
                  aspect_ratio: float = 128.0, tolerance: float = 0.1) -> ml_collections.ConfigDict:
    """A model shape (width, depth, heads) whose N is near `params`, keeping vocabulary and the rest of model_cfg.

    Among shapes within `tolerance` (relative) of the target N, the one whose width/depth
    is nearest `aspect_ratio` (Llama 7B: 4096/32 = 128; Kaplan et al. 2020 find loss flat
    over a wide range of it); if none is that close, the nearest N.
    """
    if not params > 0:
        raise ValueError(f"target parameter count must be positive, got {params}")
    candidates = []
    for num_layers in range(1, 129):
        n_at = lambda k: accounting.compute_params(shaped(model_cfg, k * head_dim, num_layers, head_dim))  # noqa: E731
        lo, hi = 1, 1024  # widths head_dim .. 1024 head_dim; N grows with width, so bisect to the target
        while lo < hi:
            mid = (lo + hi) // 2
            lo, hi = (mid + 1, hi) if n_at(mid) < params else (lo, mid)
        for k in {max(1, lo - 1), lo}:
            dim, n = k * head_dim, n_at(k)
            candidates.append((abs(math.log(n / params)), abs(math.log(dim / num_layers / aspect_ratio)), dim,
                               num_layers))
    close = [c for c in candidates if c[0] <= math.log1p(tolerance)]
    best = min(close, key=lambda c: c[1]) if close else min(candidates, key=lambda c: c[0])
    return shaped(model_cfg, best[2], best[3], head_dim)
