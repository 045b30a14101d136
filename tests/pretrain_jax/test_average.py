"""Weight averaging: copies give the checkpoint back, two give their mean, the output is a usable workdir."""

import os
import re
import subprocess
import sys

import jax
import numpy as np
import pytest

from pretrain_jax import average, cli, trained

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def params_of(workdir, step=None):
    return jax.tree.map(np.asarray, trained.load(workdir, step=step).params)


def test_the_average_of_copies_of_one_checkpoint_is_that_checkpoint(tiny_run, tmp_path):
    output = average.average([tiny_run] * 3, str(tmp_path / "soup"))
    for a, b in zip(jax.tree.leaves(params_of(tiny_run)), jax.tree.leaves(params_of(output))):
        np.testing.assert_array_equal(a, b)


def test_the_average_of_two_checkpoints_is_their_weighted_mean(tiny_run, tmp_path):
    first, last = params_of(tiny_run, 5), params_of(tiny_run, 10)
    uniform = params_of(average.average([f"{tiny_run}@5", f"{tiny_run}@10"], str(tmp_path / "uniform")))
    weighted = params_of(average.average([f"{tiny_run}@5", f"{tiny_run}@10"], str(tmp_path / "weighted"), [1, 3]))
    for a, b, mean, w in zip(*map(jax.tree.leaves, (first, last, uniform, weighted))):
        assert not np.array_equal(a, b)
        np.testing.assert_allclose(mean, (a.astype(np.float64) + b) / 2, rtol=0, atol=1e-7)
        np.testing.assert_allclose(w, 0.25 * a.astype(np.float64) + 0.75 * b, rtol=0, atol=1e-7)
    config = trained.load_config(str(tmp_path / "weighted"))
    assert [tuple(x) for x in config.averaged_from] == [(f"{tiny_run}@5", 0.25), (f"{tiny_run}@10", 0.75)]


def test_the_averaged_workdir_evaluates_exports_and_starts_a_run(tiny_run, tmp_path):
    output = average.average([f"{tiny_run}@5", tiny_run], str(tmp_path / "soup"))
    env = {**os.environ, "XLA_FLAGS": "", "JAX_PLATFORMS": "cpu"}
    evaluated = subprocess.run([sys.executable, "-m", "pretrain_jax.evaluate", f"--workdir={output}",
                                "--max_batches=1"], cwd=REPO, env=env, capture_output=True, text=True)
    assert evaluated.returncode == 0 and "validation split" in evaluated.stdout, evaluated.stderr[-2000:]
    exported = subprocess.run([sys.executable, "-m", "pretrain_jax.hf", "export", f"--workdir={output}",
                               f"--output={tmp_path / 'hf'}"], cwd=REPO, env=env, capture_output=True, text=True)
    assert exported.returncode == 0, exported.stderr[-2000:]
    assert os.path.exists(tmp_path / "hf" / "model.safetensors")
    from pretrain_jax import train
    config = trained.load_config(tiny_run)
    with pytest.raises(ValueError, match="holds an average of checkpoints .* --init_from="):
        train.train(config, output, jax.devices()[:1])


@pytest.mark.parametrize("args, message", [
    (["--checkpoint={run}", "--weights=1,2"], r"one weight >= 0 per --checkpoint \(1\)"),
    (["--checkpoint={run}", "--weights=-1"], r"one weight >= 0"),
    (["--checkpoint={run}", "--weights=a"], r"could not convert string to float: 'a'"),
    (["--checkpoint={run}@7"], r"has no checkpoint at step 7; it has steps \[5, 10\]"),
    (["--checkpoint=/no/such/run"], r"/no/such/run is not the --workdir of a training run"),
    (["--checkpoint={run}", "--ema"], r"--ema: .* was trained without an EMA"),
    ([], r"give at least one --checkpoint"),
])
def test_bad_arguments_are_one_fatal_line(tiny_run, tmp_path, capsys, args, message):
    with pytest.raises(SystemExit) as exit_:
        cli.main(["average", *[a.format(run=tiny_run) for a in args], f"--output={tmp_path / 'out'}"])
    error = str(exit_.value.code)  # FATAL <reason>, the line sys.exit prints
    assert error.startswith("FATAL") and len(error.strip().splitlines()) == 1 and re.search(message, error)
