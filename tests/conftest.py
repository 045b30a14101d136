"""Test set-up shared by both packages.

Eight fake CPU devices let sharding tests run anywhere; the flag must be set
before JAX initializes its backend. The suite compiles the same tiny train step in
dozens of tests and their subprocesses: JAX's persistent compilation cache, in a
folder of this session's own (so no executable of older code is ever read), compiles
each once and halves the suite's time.
"""

import os
import shutil
import tempfile

os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=8").strip()
os.environ.setdefault("JAX_PLATFORMS", "cpu")
if "JAX_COMPILATION_CACHE_DIR" not in os.environ:  # set by the first process: xdist workers share its folder
    os.environ["JAX_COMPILATION_CACHE_DIR"] = tempfile.mkdtemp(prefix="pretrain_jax_tests_xla_cache_")
    os.environ["PRETRAIN_JAX_TESTS_OWN_CACHE"] = "1"
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0")
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES", "0")

import pathlib  # noqa: E402

import pytest  # noqa: E402

REPO = pathlib.Path(__file__).resolve().parent.parent


def pytest_unconfigure(config):
    """The session's compilation cache goes with it (removed by the process that made it)."""
    if os.environ.pop("PRETRAIN_JAX_TESTS_OWN_CACHE", None) and not hasattr(config, "workerinput"):
        shutil.rmtree(os.environ["JAX_COMPILATION_CACHE_DIR"], ignore_errors=True)
SHARED_CORPORA = REPO.parent / "shared" / "corpora"


@pytest.fixture(scope="session")
def shared_corpora() -> pathlib.Path:
    """../shared/corpora beside the checkout: skipped where absent, except in CI where it must exist."""
    if not SHARED_CORPORA.is_dir():
        if os.environ.get("CI") == "true":
            pytest.fail(f"{SHARED_CORPORA} is missing; CI must provide the shared corpora")
        pytest.skip(f"{SHARED_CORPORA} not found: the shared real-text corpora live beside the checkout")
    return SHARED_CORPORA
