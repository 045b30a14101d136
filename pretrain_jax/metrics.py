"""What a run reports: model FLOPs, MFU, TensorBoard scalars, the console progress line."""

from __future__ import annotations

import math
import time

import jax
import jax.numpy as jnp
import ml_collections
from tensorboard.compat.proto import event_pb2, summary_pb2
from tensorboard.plugins.scalar.summary_v2 import scalar_pb
from tensorboard.plugins.text.summary_v2 import text_pb
from tensorboard.summary.writer.event_file_writer import EventFileWriter

from pretrain_jax import model


def training_flops_per_token(model_cfg: ml_collections.ConfigDict, seq_len: int) -> float:
    """6N for the matmul weights plus 12·L·H·Q·T for attention (PaLM, Chowdhery et al. 2022, appendix B;
    Kaplan et al. 2020 count the attention term at half this, 6·L·T·H·Q).

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


def measure_peak_flops(device: jax.Device, size: int = 2048, repeats: int = 5, trials: int = 3,
                       dtype: str = "float32") -> float:
    """FLOP/s of a square matmul in `dtype` (the model's compute dtype) on one device: the MFU
    denominator when none is configured. Random values: zeros run faster than real data on GPUs.
    The best of `trials` timings of `repeats` matmuls: another process's burst slows one trial,
    and a peak read low would put MFU above 100%."""
    x = jax.device_put(jax.random.normal(jax.random.key(0), (size, size), jnp.dtype(dtype)), device)
    matmul = jax.jit(lambda a: a @ a)
    matmul(x).block_until_ready()
    best = float("inf")
    for _ in range(trials):
        start = time.perf_counter()
        for _ in range(repeats):
            y = matmul(x)
        y.block_until_ready()
        best = min(best, time.perf_counter() - start)
    return 2 * size**3 * repeats / best


class ScalarWriter:
    """TensorBoard scalars and texts (no TensorFlow needed); a no-op outside process 0.

    One event file for both: TensorBoard reads a folder's event files in turn, so a second
    writer's file would hide events written to the first after it was created. Written with
    TensorBoard's EventFileWriter and its plugins' summary protos (`summary.Writer` has only scalars).
    """

    def __init__(self, logdir: str):
        self._events = EventFileWriter(logdir) if jax.process_index() == 0 else None

    def write(self, step: int, scalars: dict[str, float]) -> None:
        self._write(step, [scalar_pb(tag, float(value)) for tag, value in scalars.items()])

    def write_texts(self, step: int, texts: dict[str, str]) -> None:
        """Text summaries (markdown, shown in TensorBoard's Text tab)."""
        self._write(step, [text_pb(tag, text) for tag, text in texts.items()])

    def _write(self, step: int, summaries: list[summary_pb2.Summary]) -> None:
        if self._events is None:
            return
        wall_time = time.time()
        for summary in summaries:
            self._events.add_event(event_pb2.Event(wall_time=wall_time, step=step, summary=summary))
        self._events.flush()

    def close(self) -> None:
        if self._events is not None:
            self._events.close()


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


def progress_line(step: int, total: int, scalars: dict[str, float]) -> str:
    """The periodic log line; speed and ETA only when the interval had a timed step (perf/* scalars)."""
    line = (f"step {step}/{total} ({100 * step / total:.0f}%) | loss {scalars['train/loss']:.4f} | "
            f"lr {scalars['train/learning_rate']:.2e}")
    if "perf/step_time_seconds" not in scalars:
        return line
    eta = (total - step) * scalars["perf/step_time_seconds"]
    return (f"{line} | {scalars['perf/tokens_per_second']:,.0f} tok/s | MFU {100 * scalars['perf/mfu']:.1f}% | "
            f"ETA {format_duration(eta)}")
