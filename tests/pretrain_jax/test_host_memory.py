"""Training processes on CPU are started on jemalloc when it is installed (pretrain_jax/host_memory.py)."""

import os
import subprocess
import sys

import pytest

from pretrain_jax import host_memory

LIBRARY = "/usr/lib/x86_64-linux-gnu/libjemalloc.so.2"


@pytest.fixture
def installed(monkeypatch):
    monkeypatch.setattr(host_memory, "find_jemalloc", lambda: LIBRARY)


def test_the_environment_preloads_jemalloc_with_purging_off(installed):
    assert host_memory.jemalloc_env({}) == {"LD_PRELOAD": LIBRARY, "MALLOC_CONF": host_memory.JEMALLOC_CONF}


def test_other_preloads_and_a_users_malloc_conf_are_kept(installed):
    env = host_memory.jemalloc_env({"LD_PRELOAD": "/opt/libother.so", "MALLOC_CONF": "narenas:4"})
    assert env == {"LD_PRELOAD": f"{LIBRARY}:/opt/libother.so"}


@pytest.mark.parametrize("environ", [{"PRETRAIN_JAX_SYSTEM_MALLOC": "1"},
                                     {"PRETRAIN_JAX_SYSTEM_MALLOC": "1", "LD_PRELOAD": LIBRARY},
                                     {"LD_PRELOAD": LIBRARY, "MALLOC_CONF": "narenas:4"}])
def test_nothing_changes_when_opted_out_or_already_set_up(installed, environ):
    assert host_memory.jemalloc_env(environ) == {}


def test_a_preloaded_jemalloc_without_settings_gets_purging_off(installed):
    assert host_memory.jemalloc_env({"LD_PRELOAD": "/opt/libjemalloc.so.2"}) == {
        "MALLOC_CONF": host_memory.JEMALLOC_CONF}


def test_nothing_changes_without_jemalloc(monkeypatch):
    monkeypatch.setattr(host_memory, "find_jemalloc", lambda: None)
    assert host_memory.jemalloc_env({}) == {}


def test_launch_exports_run_the_process_on_jemalloc():
    if host_memory.find_jemalloc() is None:
        pytest.skip("jemalloc is not installed here (apt install libjemalloc2)")
    exports = subprocess.run([sys.executable, "-m", "pretrain_jax.host_memory"], capture_output=True, text=True,
                             check=True, env={k: v for k, v in os.environ.items() if k != "LD_PRELOAD"}).stdout
    maps = subprocess.run(["bash", "-c", f'{exports}\nexec {sys.executable} -c "print(open(\'/proc/self/maps\').read())"'],
                          capture_output=True, text=True, check=True).stdout
    assert "libjemalloc" in maps
