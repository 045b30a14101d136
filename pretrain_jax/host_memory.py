"""Host memory for training on CPU: run the process on jemalloc, which keeps freed blocks for reuse.

XLA's CPU runtime allocates a step's temporaries as one block (8.3 GB for the 125m
shape of benchmarks/train_throughput.py) and frees it at the end of the step. glibc
serves any block over 32 MB with a fresh mmap and unmaps it when freed, so every step
faulted its whole working set back in, zero-filled by the kernel: on a 2-core VM
1.7 GB of page faults and 1 to 4 s of system time per 2.5 s step at 25m, 8.7 GB and
11 to 30 s per 25 to 35 s step at 125m (BENCHMARKS.md). jemalloc with purging off
keeps the freed block and hands it back on the next step: no faults after the first
step, and a flat footprint (11.4 GB at 125m scanned) but for one more block of
temporaries, mapped once per process at some step (likely one that allocated before
the previous step had freed its block; BENCHMARKS.md). glibc's own knobs (one arena,
no mmap, no trimming) also stop the faults, but its heap fragments: the same step grew
from 11 to 19 GB in three steps.

An allocator is chosen when a process starts (LD_PRELOAD), so launchers take the
environment from here: `eval "$(python -m pretrain_jax.host_memory)"` (launch/local.sh).
Install it with `apt install libjemalloc2`; without it, or with
PRETRAIN_JAX_SYSTEM_MALLOC=1, training runs on glibc's malloc, only slower on CPU.
"""

from __future__ import annotations

import glob
import os
import shlex
from collections.abc import Mapping

# Freed pages are never returned to the OS: a training process reuses them every step.
JEMALLOC_CONF = "dirty_decay_ms:-1,muzzy_decay_ms:-1"
JEMALLOC_GLOBS = ("/usr/lib/*-linux-gnu/libjemalloc.so.2", "/usr/lib64/libjemalloc.so.2",
                  "/usr/lib/libjemalloc.so.2", "/usr/local/lib/libjemalloc.so.2")


def find_jemalloc() -> str | None:
    """The path of the system's jemalloc shared library, or None."""
    for pattern in JEMALLOC_GLOBS:
        found = sorted(glob.glob(pattern))
        if found:
            return found[0]
    return None


def jemalloc_env(environ: Mapping[str, str] = os.environ) -> dict[str, str]:
    """Variables to add to a training process's environment so that it runs on jemalloc.

    Empty when PRETRAIN_JAX_SYSTEM_MALLOC=1 or jemalloc is not installed. A MALLOC_CONF
    already set is kept; a jemalloc already preloaded without one gets JEMALLOC_CONF (its
    default 10 s decay still faulted 10 GB per 125m step).
    """
    if environ.get("PRETRAIN_JAX_SYSTEM_MALLOC") == "1":
        return {}
    conf = {} if "MALLOC_CONF" in environ else {"MALLOC_CONF": JEMALLOC_CONF}
    preloaded = environ.get("LD_PRELOAD", "")
    if "jemalloc" in preloaded:
        return conf
    library = find_jemalloc()
    if library is None:
        return {}
    return {"LD_PRELOAD": ":".join(filter(None, [library, preloaded])), **conf}


if __name__ == "__main__":
    for name, value in jemalloc_env().items():
        print(f"export {name}={shlex.quote(value)}")
