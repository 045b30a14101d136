"""Training commands run on a fast allocator without the user doing anything (pretrain_jax/host_memory.py):
the system's jemalloc when installed, else the mimalloc that a dependency's wheel ships."""

import os
import subprocess
import sys

import pytest

from pretrain_jax import host_memory

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
JEMALLOC = host_memory.Allocator("jemalloc", "/usr/lib/x86_64-linux-gnu/libjemalloc.so.2")
MIMALLOC = host_memory.Allocator("mimalloc", "/venv/cmeel.prefix/lib/libmimalloc.so.3")


@pytest.mark.parametrize("allocator", [JEMALLOC, MIMALLOC], ids=lambda a: a.name)
def test_the_environment_preloads_the_allocator_with_purging_off(allocator):
    assert host_memory.allocator_env({}, allocator) == {"LD_PRELOAD": allocator.library, **allocator.options}


def test_other_preloads_and_a_users_settings_are_kept():
    env = host_memory.allocator_env({"LD_PRELOAD": "/opt/libother.so", "MALLOC_CONF": "narenas:4"}, JEMALLOC)
    assert env == {"LD_PRELOAD": f"{JEMALLOC.library}:/opt/libother.so"}


@pytest.mark.parametrize("environ", [{"PRETRAIN_JAX_SYSTEM_MALLOC": "1"},
                                     {"PRETRAIN_JAX_SYSTEM_MALLOC": "1", "LD_PRELOAD": JEMALLOC.library},
                                     {"LD_PRELOAD": JEMALLOC.library, "MALLOC_CONF": "narenas:4"},
                                     {"LD_PRELOAD": MIMALLOC.library, **host_memory.MIMALLOC_OPTIONS}])
def test_nothing_changes_when_opted_out_or_already_set_up(environ):
    assert host_memory.allocator_env(environ, MIMALLOC) == {}


def test_a_preloaded_allocator_without_settings_gets_purging_off():
    assert host_memory.allocator_env({"LD_PRELOAD": "/opt/libjemalloc.so.2"}, MIMALLOC) == {
        "MALLOC_CONF": host_memory.JEMALLOC_CONF}


def test_jemalloc_comes_first_and_mimalloc_from_its_wheel_otherwise(monkeypatch):
    monkeypatch.setattr(host_memory, "find_jemalloc", lambda: JEMALLOC.library)
    assert host_memory.find_allocator() == JEMALLOC
    monkeypatch.setattr(host_memory, "find_jemalloc", lambda: None)
    mimalloc = host_memory.find_allocator()
    assert mimalloc is not None and mimalloc.name == "mimalloc", "cmeel-mimalloc is a dependency: pip install -e ."
    assert os.path.isfile(mimalloc.library)


def run_train(tiny_dataset, workdir, **env):
    """`pretrain-jax train` for one step, from an environment with no allocator preloaded."""
    environ = {k: v for k, v in os.environ.items() if k not in ("LD_PRELOAD", "MALLOC_CONF", "XLA_FLAGS")}
    command = [os.path.join(os.path.dirname(sys.executable), "pretrain-jax"), "train", "--config=configs/tiny.py",
               f"--workdir={workdir}", f"--config.data.dir={tiny_dataset}", "--config.num_train_steps=1"]
    result = subprocess.run(command, cwd=REPO, capture_output=True, text=True, env={**environ, **env}, timeout=300)
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_pretrain_jax_train_runs_on_the_fast_allocator_and_the_opt_out_on_the_systems(tiny_dataset, tmp_path):
    expected = host_memory.find_allocator()
    assert expected is not None
    # read from the training process's own memory map, after it started itself again on the allocator
    assert f"host allocator {expected.name} ({expected.library})" in run_train(tiny_dataset, tmp_path / "fast")
    opted_out = run_train(tiny_dataset, tmp_path / "system", PRETRAIN_JAX_SYSTEM_MALLOC="1")
    assert "host allocator the system's malloc (set PRETRAIN_JAX_SYSTEM_MALLOC=1)" in opted_out


def test_the_exports_for_other_launchers_run_a_process_on_the_allocator():
    env = {k: v for k, v in os.environ.items() if k not in ("LD_PRELOAD", "MALLOC_CONF")}
    exports = subprocess.run([sys.executable, "-m", "pretrain_jax.host_memory"], capture_output=True, text=True,
                             check=True, env=env).stdout
    program = "from pretrain_jax import host_memory; print(host_memory.loaded_allocator())"
    loaded = subprocess.run(["bash", "-c", f"{exports}\nexec {sys.executable} -c '{program}'"], cwd=REPO,
                            capture_output=True, text=True, check=True, env=env).stdout
    assert loaded.startswith(host_memory.find_allocator().name)
