"""Host memory: freed blocks stay in the process for the next step instead of going back to the OS.

XLA's CPU runtime allocates a step's temporaries as one block from one of its worker
threads. glibc serves any block over 32 MB with a fresh mmap and unmaps it when it is
freed, so every step faulted its whole working set back in, zero-filled by the kernel:
at the benchmark shapes (benchmarks/train_throughput.py) on a 2-core VM, 1.7 GB of page
faults and 1 to 4 s of system time per 2.5 s step at 25m, 8 GB and 20 to 30 s per step
at 125m. With one malloc arena, no mmap and no trimming, the block is reused as it is
and the faults stop after the first few steps; the process keeps its peak footprint,
as a device allocator does.

It must run before JAX starts threads (threads that have allocated keep their own
arenas, and importing jax already does), so `import pretrain_jax` runs it, unless
the environment sets PRETRAIN_JAX_SYSTEM_MALLOC=1.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import platform

# mallopt(3) parameters (glibc's malloc.h).
_M_TRIM_THRESHOLD, _M_MMAP_MAX, _M_ARENA_MAX = -1, -4, -8
_NEVER = -1  # glibc stores the trim threshold as size_t: -1 is the largest, so the heap is never trimmed


def retain_freed_memory() -> bool:
    """Makes glibc keep and reuse freed memory; False where the C library is not glibc or the
    environment opts out (nothing changed)."""
    if platform.libc_ver()[0] != "glibc" or os.environ.get("PRETRAIN_JAX_SYSTEM_MALLOC") == "1":
        return False
    libc = ctypes.CDLL(ctypes.util.find_library("c"))
    libc.mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    settings = ((_M_ARENA_MAX, 1), (_M_MMAP_MAX, 0), (_M_TRIM_THRESHOLD, _NEVER))
    return all(libc.mallopt(param, value) == 1 for param, value in settings)
