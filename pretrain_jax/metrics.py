"""What a run reports: model FLOPs, MFU, TensorBoard scalars, the console progress line."""

from __future__ import annotations

import math
import time

import jax
import jax.numpy as jnp
import ml_collections
from tensorboard.summary import Writer

from pretrain_jax import model


def training_flops_per_token(model_cfg: ml_collections.ConfigDict, seq_len: int) -> float:
    """6N for the matmul weights plus 12·L·H·Q·T for attention (Kaplan et al. 2020; PaLM appendix B).

    N excludes the embedding lookup but includes the output head, which is a matmul
    even when tied; H heads of width Q attend over T positions in L layers.
    """
    counts = model.param_count(model_cfg)
    head = model_cfg.dim * model_cfg.vocab_size if model_cfg.tie_embeddings else 0
    attention = 12 * model_cfg.num_layers * model_cfg.num_heads * model.head_dim(model_cfg) * seq_len
    return 6 * (counts["non_embedding"] + head) + attention


def perplexity(loss: float) -> float:
    """exp(mean token loss in nats), capped so a diverged run reports a huge number, not an overflow."""
    return math.exp(min(loss, 700.0))


def measure_peak_flops(device: jax.Device, size: int = 2048, repeats: int = 10) -> float:
    """FLOP/s of a float32 square matmul on one device: the MFU denominator when none is configured."""
    x = jax.device_put(jnp.ones((size, size), jnp.float32), device)
    matmul = jax.jit(lambda a: a @ a)
    matmul(x).block_until_ready()
    start = time.perf_counter()
    for _ in range(repeats):
        y = matmul(x)
    y.block_until_ready()
    return 2 * size**3 * repeats / (time.perf_counter() - start)


class ScalarWriter:
    """TensorBoard scalars (no TensorFlow needed); a no-op outside process 0."""

    def __init__(self, logdir: str):
        self._writer = Writer(logdir) if jax.process_index() == 0 else None

    def write(self, step: int, scalars: dict[str, float]) -> None:
        if self._writer is None:
            return
        for tag, value in scalars.items():
            self._writer.add_scalar(tag, float(value), step=step)
        self._writer.flush()

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()


def log(message: str) -> None:
    """Console output from process 0 only."""
    if jax.process_index() == 0:
        print(message, flush=True)


def format_duration(seconds: float) -> str:
    if not math.isfinite(seconds):
        return "?"
    seconds = int(seconds)
    hours, rest = divmod(seconds, 3600)
    return f"{hours}h{rest // 60:02d}m" if hours else f"{rest // 60}m{rest % 60:02d}s"


def progress_line(step: int, total: int, scalars: dict[str, float], steps_per_second: float) -> str:
    eta = (total - step) / steps_per_second if steps_per_second > 0 else float("inf")
    return (f"step {step}/{total} ({100 * step / total:.0f}%) | loss {scalars['train/loss']:.4f} | "
            f"lr {scalars['train/learning_rate']:.2e} | {scalars['perf/tokens_per_second']:,.0f} tok/s | "
            f"MFU {100 * scalars['perf/mfu']:.1f}% | ETA {format_duration(eta)}")
