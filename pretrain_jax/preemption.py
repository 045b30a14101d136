"""Stopping cleanly on SIGTERM (TPU maintenance, SLURM pre-emption, Ctrl-\\ of a scheduler).

Every process must stop at the same step, so that the checkpoint written together
is consistent. With several processes, JAX's coordination service propagates the
notice and picks that step (`reached_preemption_sync_point`); a single process
only needs a flag set by the signal handler.
"""

from __future__ import annotations

import signal
import threading

import jax
from jax.experimental import multihost_utils


class PreemptionWatcher:
    def __init__(self):
        self._notified = False
        self._multi_process = jax.process_count() > 1
        if not self._multi_process and threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGTERM, self._on_sigterm)
        else:
            self._previous = None

    def _on_sigterm(self, signum, frame) -> None:
        self._notified = True

    def should_stop(self, step: int) -> bool:
        """Called after every step by every process; True at the agreed step to save and exit."""
        if self._multi_process:
            return multihost_utils.reached_preemption_sync_point(step)
        return self._notified

    def close(self) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGTERM, self._previous)
