"""AdamW with global-norm clipping, and the learning-rate schedules (config.optimizer.schedule).

Defaults follow Llama (Touvron et al. 2023, section 2.2): b1 0.9, b2 0.95,
weight decay 0.1, clipping at 1.0, 2,000 warmup steps, cosine decay to 10% of
the peak.

Every schedule is a linear warmup from 0 to the peak over warmup_steps, joined
(optax.join_schedules) to what follows it, which counts from the end of warmup:

    cosine        cosine to final_learning_rate_fraction * peak over decay_steps, then flat
    linear        linear to the same end over decay_steps, then flat; with no warmup and a final
                  fraction of 0 this is OLMo 2's anneal (OLMo et al. 2024)
    wsd           warmup-stable-decay: the peak, then a decay (decay_shape) over the run's last
                  steps (Hägele et al. 2024; MaxText lr_schedule_type=wsd)
    constant      the peak
    inverse_sqrt  peak * sqrt(warmup_steps / step) (Vaswani et al. 2017, section 5.3)

WSD's stable phase depends on num_train_steps only through where the decay starts,
so any checkpoint of a WSD run can be cooled down: continue it at step S with
num_train_steps = S + D and decay_steps = D.
"""

from __future__ import annotations

from typing import Any, Callable

import jax
import jax.numpy as jnp
import ml_collections
import optax

# Parameter names the decay mask treats specially (see pretrain_jax/model.py).
EMBEDDING_NAMES = ("embedding", "head")


def _one_minus_sqrt(peak: float, final_fraction: float, steps: int) -> optax.Schedule:
    """peak down to final_fraction * peak as 1 - sqrt(t), t the fraction of the decay done: Hägele et al.
    2024 ("Scaling Laws and Compute-Optimal Training Beyond Fixed Training Durations", section 3) found it
    better than a linear cooldown."""
    end = peak * final_fraction

    def schedule(count: jax.Array) -> jax.Array:
        done = jnp.minimum(count, steps) / steps
        return end + (peak - end) * (1 - jnp.sqrt(done))

    return schedule


# name -> (peak, final fraction of the peak, steps) -> a decay from the peak that stays flat after `steps`.
DECAY_SHAPES: dict[str, Callable[[float, float, int], optax.Schedule]] = {
    "linear": lambda peak, final, steps: optax.linear_schedule(peak, peak * final, steps),
    "cosine": lambda peak, final, steps: optax.cosine_decay_schedule(peak, steps, alpha=final),
    "1-sqrt": _one_minus_sqrt,
}


def decay_steps(opt_cfg: ml_collections.ConfigDict, num_train_steps: int) -> int:
    """Steps of the decay after warmup: decay_steps, or when 0 what the schedule decays over by default:
    wsd its last decay_fraction of the run (at least 1 step), the others every step after warmup."""
    if opt_cfg.decay_steps:
        return opt_cfg.decay_steps
    if opt_cfg.schedule == "wsd":
        return max(round(opt_cfg.decay_fraction * num_train_steps), 1)
    return max(num_train_steps - opt_cfg.warmup_steps, 1)


def _wsd(opt_cfg: ml_collections.ConfigDict, num_train_steps: int) -> optax.Schedule:
    """The peak until the last decay_steps of the run, then the decay_shape down to the final fraction."""
    steps = decay_steps(opt_cfg, num_train_steps)
    peak = opt_cfg.peak_learning_rate
    decay = DECAY_SHAPES[opt_cfg.decay_shape](peak, opt_cfg.final_learning_rate_fraction, steps)
    stable = num_train_steps - opt_cfg.warmup_steps - steps  # config.validate: >= 0
    return optax.join_schedules([optax.constant_schedule(peak), decay], [stable])


def _inverse_sqrt(opt_cfg: ml_collections.ConfigDict, num_train_steps: int) -> optax.Schedule:
    """peak * sqrt(warmup / step); `count` starts at the end of warmup, where step = warmup + count."""
    peak, warmup = opt_cfg.peak_learning_rate, opt_cfg.warmup_steps
    return lambda count: peak * jnp.sqrt(warmup / (count + warmup))


def _decay_by(shape: str) -> Callable[[ml_collections.ConfigDict, int], optax.Schedule]:
    """The peak decayed by `shape` to the final fraction over decay_steps, then flat."""
    return lambda opt_cfg, num_train_steps: DECAY_SHAPES[shape](
        opt_cfg.peak_learning_rate, opt_cfg.final_learning_rate_fraction, decay_steps(opt_cfg, num_train_steps))


# name -> (optimizer config, num_train_steps) -> the schedule after warmup, counting from its end.
SCHEDULES: dict[str, Callable[[ml_collections.ConfigDict, int], optax.Schedule]] = {
    "cosine": _decay_by("cosine"),
    "linear": _decay_by("linear"),
    "wsd": _wsd,
    "constant": lambda opt_cfg, num_train_steps: optax.constant_schedule(opt_cfg.peak_learning_rate),
    "inverse_sqrt": _inverse_sqrt,
}


def learning_rate_schedule(opt_cfg: ml_collections.ConfigDict, num_train_steps: int) -> optax.Schedule:
    """Step -> learning rate: linear warmup from 0 to the peak, then the configured schedule.

    opt_cfg: the optimizer section of the config (checked by config.validate);
    num_train_steps: the run's length, where the default decays end.
    """
    after_warmup = SCHEDULES[opt_cfg.schedule](opt_cfg, num_train_steps)
    warmup = opt_cfg.warmup_steps
    if not warmup:
        return after_warmup
    return optax.join_schedules([optax.linear_schedule(0.0, opt_cfg.peak_learning_rate, warmup), after_warmup],
                                [warmup])


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
