"""The local runner's worker processes: a pool whose workers end with the run, and results in submission order.

Every pool of the local runner (curation, dedup fingerprints, tokenizing) is a
ProcessPoolExecutor: a worker that dies (killed, out of memory) raises
BrokenProcessPool in the main process at once. A multiprocessing.Pool instead
replaces the dead worker and waits forever on the task it held. prepare.py turns
BrokenProcessPool into one line naming the pass or the shard it stopped.
"""

from __future__ import annotations

import collections
import concurrent.futures
import multiprocessing
import os
import select
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures.process import BrokenProcessPool
from typing import Any

EXIT_POLL_SECONDS = 1.0  # how often a worker checks that the main process still runs, where pidfds are missing

__all__ = ["BrokenProcessPool", "ordered", "pool"]


def _nothing() -> None:
    """No initializer (a lambda would not pickle to a spawned worker)."""


def pool(num_workers: int, start_method: str, initializer: Callable[..., None] = _nothing,
         initargs: tuple = ()) -> concurrent.futures.ProcessPoolExecutor:
    """`num_workers` processes started by `start_method` ("spawn", "forkserver"), each running
    `initializer(*initargs)` and ending with this process."""
    return concurrent.futures.ProcessPoolExecutor(num_workers, multiprocessing.get_context(start_method),
                                                  initializer=_init, initargs=(os.getpid(), initializer, initargs))


def _init(main_pid: int, initializer: Callable[..., None], initargs: tuple) -> None:
    """In a worker: a thread that ends it with the main process `main_pid` (kill -9 included), then the initializer."""
    threading.Thread(target=_exit_after, args=(main_pid,), name="exit-with-main", daemon=True).start()
    initializer(*initargs)


def _exit_after(pid: int) -> None:
    """Exits this process once process `pid` has ended.

    A ProcessPoolExecutor worker waits on a queue whose writing end it holds itself,
    so it never sees the main process go; the forkserver and the resource tracker wait
    for the workers. Without this, all of them outlived a killed run (45 s and more).
    A pidfd (Linux 5.3+) becomes readable when the process ends; elsewhere, poll.
    """
    try:
        select.select([os.pidfd_open(pid)], [], [])
    except ProcessLookupError:  # already gone
        pass
    except (AttributeError, OSError):  # no pidfd_open here
        while _is_running(pid):
            time.sleep(EXIT_POLL_SECONDS)
    os._exit(1)


def _is_running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # it runs, as another user: the pid was reused
        return False
    return True


def ordered(executor: concurrent.futures.Executor, function: Callable[[Any], Any], items: Iterable[Any],
            max_in_flight: int) -> Iterator[Any]:
    """`function(item)` for each item, in order, with at most `max_in_flight` submitted at once, so memory
    stays bounded on any input (Executor.map submits them all first)."""
    in_flight: collections.deque = collections.deque()
    for item in items:
        in_flight.append(executor.submit(function, item))
        if len(in_flight) >= max_in_flight:
            yield in_flight.popleft().result()
    while in_flight:
        yield in_flight.popleft().result()
