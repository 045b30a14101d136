"""A training process reuses its freed host memory instead of faulting it in again from the OS.

Each case runs in a fresh interpreter: malloc's settings are process-wide and are made
when pretrain_jax is imported, before threads allocate.
"""

import os
import platform
import subprocess
import sys
import textwrap

import pytest

pytestmark = pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="mallopt settings are glibc's")

# After importing pretrain_jax, a worker thread mallocs, writes and frees a 256 MiB block
# three times (as XLA's CPU runtime does with a step's temporaries); prints the page
# faults of the last two.
PROGRAM = textwrap.dedent("""
    import ctypes, resource, threading
    import pretrain_jax
    libc = ctypes.CDLL(None)
    libc.malloc.restype, libc.free.argtypes = ctypes.c_void_p, [ctypes.c_void_p]
    faults = []
    def step():
        before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        block = libc.malloc(2**28)
        ctypes.memset(block, 1, 2**28)
        libc.free(block)
        faults.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
    for _ in range(3):
        thread = threading.Thread(target=step)
        thread.start()
        thread.join()
    print(sum(faults[1:]))
""")
PAGES_PER_BLOCK = 2**28 // 4096


def faults_after_first(**env: str) -> int:
    result = subprocess.run([sys.executable, "-c", PROGRAM], capture_output=True, text=True, check=True,
                            env={**os.environ, **env})
    return int(result.stdout)


def test_after_importing_pretrain_jax_a_large_freed_block_is_reused_without_page_faults():
    assert faults_after_first() < PAGES_PER_BLOCK // 10


def test_with_system_malloc_a_large_freed_block_is_faulted_in_again_each_time():
    assert faults_after_first(PRETRAIN_JAX_SYSTEM_MALLOC="1") >= PAGES_PER_BLOCK  # why the setting exists
