"""The train loop: exact resume, TensorBoard scalars, non-finite updates, learning on real text."""

import os
import subprocess
import sys

import jax
import numpy as np
import pytest
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from data_prep import records
from pretrain_jax import checkpointing, input_pipeline, optimizer, sharding, train, train_state

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
ONE_DEVICE = jax.devices()[:1]


def scalars(workdir):
    events = EventAccumulator(os.path.join(workdir, "tensorboard"), size_guidance={"tensors": 0})
    events.Reload()
    return {tag: {e.step: float(jax.numpy.asarray(e.tensor_proto.float_val[0] if e.tensor_proto.float_val
                                                   else np.frombuffer(e.tensor_proto.tensor_content, np.float32)[0]))
                  for e in events.Tensors(tag)}
            for tag in events.Tags()["tensors"]}


def restore(config, workdir):
    """The latest checkpoint of `workdir` and the batch its data iterator yields next."""
    mesh = sharding.make_mesh(config.mesh, ONE_DEVICE)
    tx = optimizer.make_optimizer(config.optimizer, config.num_train_steps)
    abstract = train_state.abstract_state(config.model, tx, train_state.state_shardings(config.model, tx, mesh))
    iterator = input_pipeline.train_iterator(config, records.read_metadata(config.data.dir))
    ckpt = checkpointing.Checkpointer(os.path.join(workdir, "checkpoints"), 1, 3)
    state = ckpt.restore_latest(abstract, iterator)
    ckpt.close()
    return state, next(iterator)["tokens"]


def test_resuming_in_a_new_process_is_bitwise_identical_to_an_uninterrupted_run(tiny_config, tmp_path):
    n = 3
    tiny_config.optimizer.decay_steps = 2 * n - tiny_config.optimizer.warmup_steps  # schedule fixed at 2n steps
    tiny_config.num_train_steps = 2 * n
    straight = str(tmp_path / "straight")
    train.train(tiny_config, straight, ONE_DEVICE)

    staged = str(tmp_path / "staged")
    tiny_config.num_train_steps = n
    train.train(tiny_config, staged, ONE_DEVICE)
    _, next_batch_after_n = restore(tiny_config, staged)
    subprocess.run(
        [sys.executable, "-m", "pretrain_jax.train", "--config=configs/tiny.py", f"--workdir={staged}",
         f"--config.data.dir={tiny_config.data.dir}", f"--config.num_train_steps={2 * n}",
         f"--config.optimizer.decay_steps={tiny_config.optimizer.decay_steps}"],
        cwd=REPO, check=True, env={**os.environ, "XLA_FLAGS": "", "JAX_PLATFORMS": "cpu"})

    tiny_config.num_train_steps = 2 * n
    straight_state, straight_next = restore(tiny_config, straight)
    staged_state, staged_next = restore(tiny_config, staged)
    assert int(staged_state.step) == int(straight_state.step) == 2 * n
    for a, b in zip(jax.tree.leaves(straight_state), jax.tree.leaves(staged_state)):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    np.testing.assert_array_equal(staged_next, straight_next)  # the data iterator resumed in step too
    straight_loss, staged_loss = scalars(straight)["train/loss"], scalars(staged)["train/loss"]
    assert [straight_loss[s] for s in range(n + 2, 2 * n + 1)] == [staged_loss[s] for s in range(n + 2, 2 * n + 1)]
    assert not np.array_equal(next_batch_after_n, straight_next)


def test_tensorboard_receives_the_training_and_validation_scalars(tiny_config, tmp_path):
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


def test_non_finite_updates_are_skipped_and_stop_the_run_with_a_checkpoint(tiny_config, tmp_path):
    tiny_config.optimizer.update(peak_learning_rate=1e30, warmup_steps=0)  # the first update blows up
    tiny_config.max_consecutive_nonfinite = 3
    tiny_config.num_train_steps = 20
    with pytest.raises(train.NonFiniteError, match="3 updates in a row had a non-finite loss"):
        train.train(tiny_config, str(tmp_path), ONE_DEVICE)
    state, _ = restore(tiny_config, str(tmp_path))
    assert int(state.nonfinite_total) >= 3
    assert int(state.step) < 20
    # Skipped updates left the parameters as they were before the first non-finite step.
    assert all(np.isfinite(np.asarray(x)).all() for x in jax.tree.leaves(state.params))
