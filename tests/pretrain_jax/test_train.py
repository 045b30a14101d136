"""The train loop: exact resume, TensorBoard scalars, non-finite updates, learning on real text."""

import json
import os
import shutil
import signal
import subprocess
import sys

import grain
import jax
import numpy as np
import pytest

from data_prep import prepare

from pretrain_common import records
from pretrain_jax import hooks, train

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
ONE_DEVICE = jax.devices()[:1]


CLI_ENV = {**os.environ, "XLA_FLAGS": "", "JAX_PLATFORMS": "cpu"}  # one CPU device, as a user runs it


def train_command(config, workdir, steps, *overrides):
    return [sys.executable, "-m", "pretrain_jax.train", "--config=configs/tiny.py", f"--workdir={workdir}",
            f"--config.data.dir={config.data.dir}", f"--config.num_train_steps={steps}", *overrides]


def run_in_new_process(config, workdir, steps, *overrides):
    subprocess.run(train_command(config, workdir, steps, *overrides), cwd=REPO, env=CLI_ENV, check=True,
                   capture_output=True)


def test_resuming_in_a_new_process_is_bitwise_identical_to_an_uninterrupted_run(tiny_config, tmp_path, restore,
                                                                               scalars):
    n = 3
    tiny_config.optimizer.decay_steps = 2 * n - tiny_config.optimizer.warmup_steps  # schedule fixed at 2n steps
    straight = str(tmp_path / "straight")
    staged = os.path.relpath(tmp_path / "staged", REPO)  # a relative workdir, as in `make demo`
    decay = f"--config.optimizer.decay_steps={tiny_config.optimizer.decay_steps}"
    run_in_new_process(tiny_config, straight, 2 * n, decay)
    run_in_new_process(tiny_config, staged, n, decay)
    _, next_batch_after_n = restore(tiny_config, staged)
    run_in_new_process(tiny_config, staged, 2 * n, decay)

    straight_state, straight_next = restore(tiny_config, straight)
    staged_state, staged_next = restore(tiny_config, staged)
    assert int(staged_state.step) == int(straight_state.step) == 2 * n
    for a, b in zip(jax.tree.leaves(straight_state), jax.tree.leaves(staged_state)):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    np.testing.assert_array_equal(staged_next, straight_next)  # the data iterator resumed in step too
    assert not np.array_equal(next_batch_after_n, straight_next)
    straight_loss, staged_loss = scalars(straight)["train/loss"], scalars(staged)["train/loss"]
    resumed_steps = range(n + 2, 2 * n + 1)  # the first step after a restart is not timed, so not logged
    assert [straight_loss[s] for s in resumed_steps] == [staged_loss[s] for s in resumed_steps]


def test_tensorboard_receives_the_training_and_validation_scalars(tiny_config, tmp_path, scalars):
    tiny_config.num_train_steps = 4
    tiny_config.eval_every = 2
    train.train(tiny_config, str(tmp_path), ONE_DEVICE)
    written = scalars(str(tmp_path))
    expected = {"train/loss", "train/perplexity", "train/learning_rate", "train/grad_norm", "train/param_norm",
                "train/target_tokens", "train/nonfinite_skipped_total", "perf/tokens_per_second",
                "perf/step_time_seconds", "perf/model_flops_per_second", "perf/mfu", "eval/loss",
                "eval/perplexity"}
    assert expected <= set(written)
    assert set(written["eval/loss"]) == {2, 4}
    assert all(v > 0 for v in written["perf/tokens_per_second"].values())
    assert written["train/perplexity"][4] == pytest.approx(np.exp(written["train/loss"][4]), rel=1e-5)


def test_every_step_counts_in_the_loss_and_only_steps_that_waited_for_nothing_are_timed(tiny_config, tmp_path,
                                                                                         scalars):
    tiny_config.update(num_train_steps=4, eval_every=2, log_every=1)
    train.train(tiny_config, str(tmp_path), ONE_DEVICE)
    written = scalars(str(tmp_path))
    assert set(written["train/loss"]) == {1, 2, 3, 4}
    # Step 1 compiles, step 3 waited for the validation pass at step 2: neither has a speed.
    assert set(written["perf/tokens_per_second"]) == {2, 4}


def test_a_failing_validation_pass_loses_no_steps(tiny_config, tmp_path, monkeypatch):
    def failing_eval(*args):
        def run(params):
            raise RuntimeError("validation failed")
        return run
    monkeypatch.setattr(hooks.evaluate, "periodic_eval", failing_eval)
    tiny_config.update(num_train_steps=3, eval_every=0, checkpoint_every=2)
    with pytest.raises(RuntimeError, match="validation failed"):
        train.train(tiny_config, str(tmp_path), ONE_DEVICE)
    assert sorted(os.listdir(tmp_path / "checkpoints")) == ["2", "3"]


def test_a_dataset_without_a_validation_split_trains_with_validation_off(tiny_config, tmp_path):
    data_dir = tmp_path / "data"
    shutil.copytree(tiny_config.data.dir, data_dir)
    metadata = json.loads((data_dir / "metadata.json").read_text())
    for section in ("splits", "mixture"):
        metadata.get(section, {}).pop("validation", None)
    (data_dir / "metadata.json").write_text(json.dumps(metadata))
    tiny_config.update(num_train_steps=2, eval_every=0)
    tiny_config.data.dir = str(data_dir)
    with pytest.raises(ValueError, match="does not have .*set --config.eval_every=-1 to train without validation"):
        train.train(tiny_config, str(tmp_path / "run"), ONE_DEVICE)
    tiny_config.eval_every = -1
    result = train.train(tiny_config, str(tmp_path / "run"), ONE_DEVICE)
    assert np.isfinite(result["train/loss"]) and "eval/loss" not in result


def test_a_workdir_of_another_model_shape_is_refused_and_left_as_it_was(tiny_config, tmp_path):
    tiny_config.num_train_steps = 1
    train.train(tiny_config, str(tmp_path), ONE_DEVICE)
    saved = (tmp_path / "config.json").read_text()
    tiny_config.model.dim = 2 * tiny_config.model.dim
    with pytest.raises(ValueError, match=r"another state shape .*model.dim=64, not 128; pass --config.model.dim=64"):
        train.train(tiny_config, str(tmp_path), ONE_DEVICE)
    assert (tmp_path / "config.json").read_text() == saved


def test_non_finite_updates_are_skipped_and_stop_the_run_leaving_the_last_good_checkpoint(tiny_config, tmp_path,
                                                                                            scalars, restore):
    workdir = str(tmp_path)
    tiny_config.update(num_train_steps=4, checkpoint_every=2)
    train.train(tiny_config, workdir, ONE_DEVICE)  # a healthy start: checkpoints at steps 2 and 4
    tiny_config.optimizer.update(peak_learning_rate=1e30, warmup_steps=0)  # the next update blows up
    tiny_config.update(num_train_steps=20, max_consecutive_nonfinite=3, checkpoint_every=100)
    with pytest.raises(hooks.NonFiniteError, match=r"3 updates in a row had a non-finite loss .* stopped at step "
                                                   r"\d+ without saving. The newest checkpoint is step 4"):
        train.train(tiny_config, workdir, ONE_DEVICE)
    assert sorted(os.listdir(tmp_path / "checkpoints")) == ["2", "4"]  # nothing saved, nothing pushed out
    state, _ = restore(tiny_config, workdir)
    assert int(state.step) == 4 and int(state.nonfinite_total) == 0
    assert all(np.isfinite(np.asarray(x)).all() for x in jax.tree.leaves(state.params))
    logged = scalars(workdir)["train/nonfinite_skipped_total"]
    assert logged[max(logged)] >= 3  # TensorBoard shows the skipped updates of the stop

    # The same command again spends no step: it says why the run stopped, and how to go on.
    with pytest.raises(hooks.TrainingStopped, match="config is unchanged since that stop"):
        train.train(tiny_config, workdir, ONE_DEVICE)
    assert sorted(os.listdir(tmp_path / "checkpoints")) == ["2", "4"]
    # A changed setting resumes from the last good checkpoint.
    tiny_config.optimizer.peak_learning_rate = 3e-3
    tiny_config.num_train_steps = 6
    result = train.train(tiny_config, workdir, ONE_DEVICE)
    assert np.isfinite(result["train/loss"]) and not (tmp_path / train.STOPPED_FILE).exists()
    assert int(restore(tiny_config, workdir)[0].step) == 6


def unigram_entropy(data_dir, split):
    """Entropy in nats of the split's token frequencies: the loss of a model that ignores context."""
    metadata = records.read_metadata(data_dir)
    source = grain.sources.ArrayRecordDataSource(metadata.shard_paths(data_dir, split))
    tokens = np.concatenate([records.decode_sequence(source[i]) for i in range(len(source))])
    p = np.bincount(tokens[tokens != records.PAD], minlength=metadata.vocab_size).astype(np.float64)
    p = p[p > 0] / p.sum()
    return float(-(p * np.log(p)).sum())


def test_a_short_demo_run_learns_far_more_than_unigram_statistics(tmp_path):
    from configs import demo
    from configs.data import demo as demo_data
    data_config = demo_data.get_config()
    data_config.output_dir = str(tmp_path / "data")
    data_config.num_workers = 1  # in this process: a small corpus is not worth starting workers for
    prepare.prepare(data_config)
    config = demo.get_config()
    config.data.dir = data_config.output_dir
    config.num_train_steps = 120
    config.eval_every = 0
    config.log_every = 40
    result = train.train(config, str(tmp_path / "run"), ONE_DEVICE)
    entropy = unigram_entropy(config.data.dir, "train")
    print(f"validation loss {result['eval/loss']:.3f} nats vs. unigram entropy {entropy:.3f} nats")
    assert result["eval/loss"] < entropy - 1.0, (result["eval/loss"], entropy)


def test_sigterm_saves_exits_zero_and_the_relaunch_matches_an_uninterrupted_run(tiny_config, tmp_path, restore):
    steps = 120
    interrupted, straight = str(tmp_path / "interrupted"), str(tmp_path / "straight")
    process = subprocess.Popen(train_command(tiny_config, interrupted, steps), cwd=REPO, env=CLI_ENV,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    output = []
    for line in process.stdout:
        output.append(line)
        if line.startswith("step 10/"):
            process.send_signal(signal.SIGTERM)
            break
    output += process.stdout.readlines()
    assert process.wait(timeout=120) == 0, "".join(output)
    assert any("pre-empted: saved a checkpoint at step" in line for line in output), "".join(output)
    tiny_config.num_train_steps = steps
    stopped_at = int(restore(tiny_config, interrupted)[0].step)
    assert 10 <= stopped_at < steps

    run_in_new_process(tiny_config, interrupted, steps)
    run_in_new_process(tiny_config, straight, steps)
    resumed_state, _ = restore(tiny_config, interrupted)
    straight_state, _ = restore(tiny_config, straight)
    assert int(resumed_state.step) == steps
    for a, b in zip(jax.tree.leaves(straight_state), jax.tree.leaves(resumed_state)):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
