"""Test set-up shared by both packages.

Eight fake CPU devices let sharding tests run anywhere; the flag must be set
before JAX initializes its backend.
"""

import os

os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=8").strip()
os.environ.setdefault("JAX_PLATFORMS", "cpu")

import pathlib  # noqa: E402

import pytest  # noqa: E402

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
