"""AdamW with global-norm clipping and a warmup + cosine learning-rate schedule.

Defaults follow Llama (Touvron et al. 2023, section 2.2): b1 0.9, b2 0.95,
weight decay 0.1, clipping at 1.0, 2,000 warmup steps, cosine decay to 10% of
the peak.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import optax

# Parameter names the decay mask treats specially (see pretrain_jax/model.py).
EMBEDDING_NAMES = ("embedding", "head")


def learning_rate_schedule(opt_cfg: ml_collections.ConfigDict, num_train_steps: int) -> optax.Schedule:
    """Linear warmup from 0 to the peak, then cosine decay to final_fraction * peak, then flat."""
    decay_steps = opt_cfg.decay_steps or max(num_train_steps - opt_cfg.warmup_steps, 1)
    peak = opt_cfg.peak_learning_rate
    return optax.warmup_cosine_decay_schedule(
        init_value=0.0, peak_value=peak, warmup_steps=opt_cfg.warmup_steps,
        decay_steps=opt_cfg.warmup_steps + decay_steps,  # optax counts the warmup in decay_steps
        end_value=peak * opt_cfg.final_learning_rate_fraction)


def _path_names(path: tuple) -> list[str]:
    return [str(getattr(k, "key", getattr(k, "name", k))) for k in path]


def weight_decay_mask(params: Any, decay_embeddings: bool) -> Any:
    """True where weight decay applies: weight matrices, never norm scales or biases."""

    def decays(path: tuple, _: Any) -> bool:
        names = _path_names(path)
        if names[-1] in ("scale", "bias"):
            return False
        if names[-1] in EMBEDDING_NAMES:
            return decay_embeddings
        return True

    return jax.tree_util.tree_map_with_path(decays, params)


def make_optimizer(opt_cfg: ml_collections.ConfigDict, num_train_steps: int) -> optax.GradientTransformation:
    schedule = learning_rate_schedule(opt_cfg, num_train_steps)
    clip = optax.clip_by_global_norm(opt_cfg.grad_clip_norm) if opt_cfg.grad_clip_norm else optax.identity()
    adamw = optax.adamw(
        schedule, b1=opt_cfg.b1, b2=opt_cfg.b2, eps=opt_cfg.eps, weight_decay=opt_cfg.weight_decay,
        mask=lambda p: weight_decay_mask(p, opt_cfg.decay_embeddings), mu_dtype=jnp.dtype(opt_cfg.state_dtype))
    return optax.chain(clip, adamw)
