"""Host memory for training on CPU: run the process on an allocator that keeps freed blocks for reuse.

XLA's CPU runtime allocates a step's temporaries as one block (8.3 GB for the 125m
shape of benchmarks/train_throughput.py) and frees it at the end of the step. glibc
serves any block over 32 MB with a fresh mmap and unmaps it when freed, so every step
faulted its whole working set back in, zero-filled by the kernel: on a 2-core VM
1.7 GB of page faults and 1 to 4 s of system time per 2.5 s step at 25m, 8.7 GB and
11 to 30 s per 25 to 35 s step at 125m (docs/performance-notes.md). jemalloc with
purging off keeps the freed block and hands it back on the next step; so does
mimalloc with purging off and no size above which it maps blocks from the OS directly.
glibc's own knobs (one arena, no mmap, no trimming) also stop the faults, but its heap
fragments: the same step grew from 11 to 19 GB in three steps.

An allocator is chosen when a process starts (LD_PRELOAD), so the training commands
(`pretrain-jax train`, `finetune`) start themselves again on one before doing anything
else (`reexec_on_fast_allocator`): the system's jemalloc when installed (`apt install
libjemalloc2`), otherwise the mimalloc that the `cmeel-mimalloc` wheel, a dependency of
this project, ships. PRETRAIN_JAX_SYSTEM_MALLOC=1 keeps glibc's malloc.
"""

from __future__ import annotations

import dataclasses
import glob
import importlib.metadata
import os
import shlex
import sys
from collections.abc import Mapping, Sequence

OPT_OUT = "PRETRAIN_JAX_SYSTEM_MALLOC"
# Freed pages are never returned to the OS: a training process reuses them every step.
JEMALLOC_CONF = "dirty_decay_ms:-1,muzzy_decay_ms:-1"
JEMALLOC_GLOBS = ("/usr/lib/*-linux-gnu/libjemalloc.so.2", "/usr/lib64/libjemalloc.so.2",
                  "/usr/lib/libjemalloc.so.2", "/usr/local/lib/libjemalloc.so.2")
# Purging off, and objects of any size from its arenas (above 2 GiB, by default, it maps and unmaps each).
MIMALLOC_OPTIONS = {"MIMALLOC_PURGE_DELAY": "-1", "MIMALLOC_ARENA_MAX_OBJECT_SIZE": str(1 << 40)}
# Each allocator's environment variables, by the name its shared library carries; one the user set is kept.
OPTIONS = {"jemalloc": {"MALLOC_CONF": JEMALLOC_CONF}, "mimalloc": MIMALLOC_OPTIONS}


@dataclasses.dataclass(frozen=True)
class Allocator:
    name: str  # a key of OPTIONS
    library: str  # the path to preload

    @property
    def options(self) -> dict[str, str]:
        return OPTIONS[self.name]


def find_jemalloc() -> str | None:
    """The path of the system's jemalloc shared library, or None."""
    for pattern in JEMALLOC_GLOBS:
        found = sorted(glob.glob(pattern))
        if found:
            return os.path.realpath(found[0])
    return None


def find_mimalloc() -> str | None:
    """The path of the mimalloc shared library in the cmeel-mimalloc wheel, or None where it is not installed."""
    try:
        files = importlib.metadata.files("cmeel-mimalloc") or []
    except importlib.metadata.PackageNotFoundError:
        return None
    # real paths, as the process's memory map names them
    libraries = sorted(os.path.realpath(f.locate()) for f in files if f.name.startswith("libmimalloc.so."))
    return libraries[0] if libraries else None


def jemalloc() -> Allocator | None:
    library = find_jemalloc()
    return Allocator("jemalloc", library) if library else None


def mimalloc() -> Allocator | None:
    library = find_mimalloc()
    return Allocator("mimalloc", library) if library else None


def find_allocator() -> Allocator | None:
    """The allocator training runs on here: jemalloc from the system, else mimalloc from its wheel."""
    return jemalloc() or mimalloc()


def allocator_env(environ: Mapping[str, str] = os.environ, allocator: Allocator | None = None) -> dict[str, str]:
    """Variables to add to a training process's environment so that it runs on the fast allocator.

    Empty with PRETRAIN_JAX_SYSTEM_MALLOC=1 or where none is installed. Options the user set are
    kept; an allocator already preloaded (LD_PRELOAD naming jemalloc or mimalloc) gets its options only.
    """
    if environ.get(OPT_OUT) == "1":
        return {}
    preloaded = environ.get("LD_PRELOAD", "")
    for name, options in OPTIONS.items():
        if name in preloaded:
            return {k: v for k, v in options.items() if k not in environ}
    allocator = allocator or find_allocator()
    if allocator is None:
        return {}
    options = {k: v for k, v in allocator.options.items() if k not in environ}
    return {"LD_PRELOAD": ":".join(filter(None, [allocator.library, preloaded])), **options}


def reexec_on_fast_allocator(args: Sequence[str]) -> None:
    """Replaces this process by `python ARGS` on the fast allocator, unless it already runs on it (or opted out).

    Called by a command before it has started any thread: the same process id, arguments and
    environment (plus the allocator's), so launchers, SLURM and pre-emption signals see no difference.
    """
    extra = allocator_env()
    if not extra:  # on it already, with its options (which it reads when it starts), opted out, or none installed
        return
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve(sys.executable, [sys.executable, *args], {**os.environ, **extra})


def loaded_allocator() -> str:
    """The allocator this process runs on, read from its memory map: "jemalloc (PATH)", ... or "the system's malloc"."""
    try:
        with open("/proc/self/maps") as maps:
            paths = {line.split()[-1] for line in maps if "/" in line}
    except OSError:
        return "unknown (no /proc/self/maps)"
    for name in ("jemalloc", "mimalloc", "tcmalloc"):
        found = sorted(p for p in paths if os.path.basename(p).startswith(f"lib{name}"))
        if found:
            return f"{name} ({found[0]})"
    return f"the system's malloc (set {OPT_OUT}=1)" if os.environ.get(OPT_OUT) == "1" else "the system's malloc"


if __name__ == "__main__":  # `eval "$(python -m pretrain_jax.host_memory)"`: the exports, for other launchers
    for name, value in allocator_env().items():
        print(f"export {name}={shlex.quote(value)}")
