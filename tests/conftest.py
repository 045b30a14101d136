"""Test set-up shared by both packages.

Eight fake CPU devices let sharding tests run anywhere; the flag must be set
before JAX initializes its backend. The suite compiles the same tiny train step in
dozens of tests: JAX's persistent compilation cache, in a folder of this session's
own (so no executable of older code is ever read), compiles each once. It keeps
single-device programs only: jaxlib 0.10's CPU client aborts the process when it runs
a multi-device program with collectives read back from the cache (a sharded train
step: tests/pretrain_jax/test_sharding.py, loaded in a second session). Subprocesses
(the command-line tests) compile for themselves, as a user's would.
"""

import os
import pathlib
import shutil
import tempfile

os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=8").strip()
os.environ.setdefault("JAX_PLATFORMS", "cpu")

import jax  # noqa: E402
import pytest  # noqa: E402
from jax._src import compiler  # noqa: E402

CACHE_DIR = tempfile.mkdtemp(prefix="pretrain_jax_tests_xla_cache_")
jax.config.update("jax_compilation_cache_dir", CACHE_DIR)
jax.config.update("jax_persistent_cache_min_compile_time_secs", 0)
jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
_cache_read = compiler._cache_read


def _single_device_cache_read(module_name, cache_key, compile_options, backend, executable_devices, *rest):
    if len(executable_devices) > 1:
        return None, None
    return _cache_read(module_name, cache_key, compile_options, backend, executable_devices, *rest)


compiler._cache_read = _single_device_cache_read
REPO = pathlib.Path(__file__).resolve().parent.parent
SHARED_CORPORA = REPO.parent / "shared" / "corpora"


@pytest.fixture(scope="session")
def shared_corpora() -> pathlib.Path:
    """../shared/corpora beside the checkout: skipped where absent, except in CI where it must exist."""
    if not SHARED_CORPORA.is_dir():
        if os.environ.get("CI") == "true":
            pytest.fail(f"{SHARED_CORPORA} is missing; CI must provide the shared corpora")
        pytest.skip(f"{SHARED_CORPORA} not found: the shared real-text corpora live beside the checkout")
    return SHARED_CORPORA


def pytest_unconfigure(config):
    """The session's compilation cache goes with it."""
    shutil.rmtree(CACHE_DIR, ignore_errors=True)
