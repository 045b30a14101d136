"""Multi-stage recipes: exact resume with stages, EMA and batch ramps; anneals and cooldowns from a checkpoint;
spike rollbacks; Hugging Face exports during training."""

import json
import os
import shutil

import grain
import jax
import numpy as np
import pytest

from pretrain_common import records
from pretrain_jax import hooks, optimizer, train, trained

ONE_DEVICE = jax.devices()[:1]


def quiet(config, steps):
    """A short run: no validation, fixed schedule length, a checkpoint every 2 steps."""
    config.update(num_train_steps=steps, eval_every=-1, checkpoint_every=2, log_every=1)
    config.optimizer.decay_steps = 20
    return config


def assert_same_state(a, b):
    assert int(a.step) == int(b.step)
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))


def straight_and_resumed(config, tmp_path, restore, first_leg, total, devices=ONE_DEVICE):
    """(state, next batch) of a run to `total` steps, and of one stopped at `first_leg` and resumed (both read
    back on one device)."""
    straight, staged = str(tmp_path / "straight"), str(tmp_path / "staged")
    train.train(quiet(config, total), straight, devices)
    train.train(quiet(config, first_leg), staged, devices)
    train.train(quiet(config, total), staged, devices)
    config.mesh.update(data=-1, stage=1, fsdp=1, context=1, tensor=1)
    return restore(config, straight), restore(config, staged)


def ramp(config):
    config.global_batch_schedule = ((0, 4), (4, 8))  # the resume at step 3 is before the change


def stages(config):
    config.data.stages = ((4, (), config.data.dir),)  # the same shards again, as another dataset's would be


def ema(config):
    config.ema_decay = 0.9


@pytest.mark.parametrize("variant", [ramp, stages, ema], ids=lambda f: f.__name__)
def test_a_resumed_run_is_bitwise_the_uninterrupted_one(tiny_config, tmp_path, restore, variant):
    variant(tiny_config)
    (straight, straight_next), (staged, staged_next) = straight_and_resumed(tiny_config, tmp_path, restore, 3, 7)
    assert_same_state(straight, staged)
    np.testing.assert_array_equal(straight_next, staged_next)


@pytest.mark.parametrize("mesh", [dict(data=1, context=8), dict(data=1, fsdp=4, context=2),
                                  dict(data=1, stage=2, fsdp=2, tensor=2)], ids=str)
def test_a_context_or_pipeline_parallel_run_resumes_bitwise(tiny_config, tmp_path, restore, mesh):
    tiny_config.mesh.update(mesh)
    (straight, straight_next), (staged, staged_next) = straight_and_resumed(tiny_config, tmp_path, restore, 2, 4,
                                                                            jax.devices())
    assert_same_state(straight, staged)
    np.testing.assert_array_equal(straight_next, staged_next)


@pytest.fixture(scope="module")
def pretrained(tiny_dataset, tmp_path_factory):
    """A 6-step WSD run (decay over its last 2 steps), checkpoints at steps 2, 4, 6."""
    from configs import tiny
    config = quiet(tiny.get_config(), 6)
    config.data.dir = tiny_dataset
    config.optimizer.update(schedule="wsd", decay_steps=2, warmup_steps=2)
    workdir = str(tmp_path_factory.mktemp("pretrained"))
    train.train(config, workdir, ONE_DEVICE)
    return workdir


def test_an_anneal_starts_from_the_source_parameters_at_its_learning_rate_and_records_its_origin(
        tiny_config, tmp_path, pretrained, restore, scalars):
    quiet(tiny_config, 4)
    tiny_config.optimizer.update(schedule="linear", warmup_steps=0, final_learning_rate_fraction=0.0, decay_steps=0)
    tiny_config.init.update(source=pretrained + "@4", peak_from_source=True)
    workdir = str(tmp_path / "anneal")
    train.train(tiny_config, workdir, ONE_DEVICE)
    saved = trained.load_config(workdir)
    assert saved.init.source == pretrained + "@4"
    source_lr = trained.learning_rate_at(pretrained, 4)
    assert saved.optimizer.peak_learning_rate == pytest.approx(source_lr) and source_lr == pytest.approx(3e-3)
    lr = scalars(workdir)["train/learning_rate"]
    np.testing.assert_allclose([lr[s] for s in (1, 2, 3, 4)], [source_lr * (1 - k / 4) for k in range(4)],
                               rtol=1e-5)  # linear from the source's rate to 0 over the new run

    # Step 1 of the anneal is an update of the source's step-4 parameters with fresh moments.
    source, _ = restore(trained.load_config(pretrained), pretrained, with_data=False)
    tiny_config.num_train_steps = 1
    first = str(tmp_path / "first_step")
    train.train(tiny_config, first, ONE_DEVICE)
    state, _ = restore(tiny_config, first, with_data=False)
    assert int(state.step) == 1
    moments = jax.tree.leaves(state.opt_state)
    assert not np.array_equal(np.asarray(state.params["head"]), np.asarray(source.params["head"]))
    assert int(optimizer_count(state.opt_state)) == 1 and len(moments) > 0


def optimizer_count(opt_state):
    return next(x for x in jax.tree.leaves(opt_state) if np.asarray(x).dtype == np.int32)


def test_a_resumed_anneal_is_bitwise_the_uninterrupted_one(tiny_config, tmp_path, pretrained, restore):
    tiny_config.init.update(source=pretrained, peak_from_source=True)
    tiny_config.optimizer.update(schedule="linear", warmup_steps=0, final_learning_rate_fraction=0.0)
    (straight, straight_next), (staged, staged_next) = straight_and_resumed(tiny_config, tmp_path, restore, 3, 5)
    assert_same_state(straight, staged)
    np.testing.assert_array_equal(straight_next, staged_next)
    assert trained.load_config(str(tmp_path / "staged")).init.source == pretrained + "@6"


def test_a_cooldown_from_a_wsd_checkpoint_follows_the_formula_from_that_step(tiny_config, tmp_path, pretrained, scalars):
    """The WSD run's stable phase is at its peak at step 4; a cooldown over 4 steps continues its state."""
    source = trained.load_config(pretrained)
    quiet(tiny_config, 8)
    tiny_config.optimizer.update(schedule="wsd", warmup_steps=2, decay_steps=4, decay_shape="1-sqrt")
    tiny_config.init.update(source=pretrained + "@4", optimizer_state=True)
    workdir = str(tmp_path / "cooldown")
    train.train(tiny_config, workdir, ONE_DEVICE)
    lr = scalars(workdir)["train/learning_rate"]
    peak, final = source.optimizer.peak_learning_rate, source.optimizer.peak_learning_rate * 0.1
    assert sorted(lr) == [5, 6, 7, 8]  # the step count continued from 4
    expected = [final + (peak - final) * (1 - np.sqrt(k / 4)) for k in range(4)]
    np.testing.assert_allclose([lr[s] for s in (5, 6, 7, 8)], expected, rtol=1e-5)
    assert lr[5] == pytest.approx(float(optimizer.learning_rate_schedule(source.optimizer, 6)(4)))


@pytest.mark.parametrize("change, message", [
    (lambda c: c.model.update(dim=128), r"other parameter shapes: model.dim=64, not 128"),
    (lambda c: c.init.update(source="/no/such/run"), r"/no/such/run is not the --workdir of a training run"),
    (lambda c: c.init.update(source="{src}@3"), r"has no checkpoint at step 3; it has steps \[2, 4, 6\]"),
    (lambda c: c.init.update(source="{src}@x"), r"expected WORKDIR or WORKDIR@STEP"),
    (lambda c: c.init.update(source="", peak_from_source=True), r"init.peak_from_source=True needs a run"),
])
def test_a_bad_init_source_is_refused_in_one_line(tiny_config, tmp_path, pretrained, change, message):
    tiny_config.init.source = pretrained
    change(tiny_config)
    tiny_config.init.source = tiny_config.init.source.format(src=pretrained)
    with pytest.raises(ValueError, match=message):
        train.train(quiet(tiny_config, 2), str(tmp_path / "run"), ONE_DEVICE)
    assert not os.path.exists(tmp_path / "run" / "checkpoints")


def spiky_dataset(tiny_dataset, tmp_path, bad_rows):
    """The tiny dataset read in order, whose train rows `bad_rows` are replaced by one repeated token."""
    data_dir = tmp_path / "spiky"
    shutil.copytree(tiny_dataset, data_dir)
    metadata = records.read_metadata(str(data_dir))
    path = metadata.shard_paths(str(data_dir), "train")[0]
    rows = [bytes(r) for r in grain.sources.ArrayRecordDataSource([path])]
    from array_record.python.array_record_module import ArrayRecordWriter
    writer = ArrayRecordWriter(path, "group_size:1")
    for i, row in enumerate(rows):
        writer.write(records.encode_sequence(np.full(metadata.seq_len, 400), metadata.seq_len) if i in bad_rows
                     else row)
    writer.close()
    return str(data_dir)


def test_a_spike_rolls_back_to_the_last_checkpoint_past_the_bad_batches_and_twice_is_bitwise_once(
        tiny_config, tiny_dataset, tmp_path, restore, scalars):
    tiny_config.data.dir = spiky_dataset(tiny_dataset, tmp_path, bad_rows=range(8 * 26, 8 * 28))  # steps 27, 28
    tiny_config.data.shuffle = False
    tiny_config.spike.update(sigma=6.0, window=16, rollback_batches=2)
    runs = []
    for name in ("a", "b"):
        workdir = str(tmp_path / name)
        train.train(quiet(tiny_config, 32), workdir, ONE_DEVICE)
        runs.append(workdir)
    records_a = [json.loads(line) for line in open(os.path.join(runs[0], "rollbacks.jsonl"))]
    # Step 27 read the first bad batch; step 28's was read too (one step ahead) and is skipped with it.
    assert records_a == [{"spike_step": 27, "restored_step": 26, "skipped_batches": 2,
                          "skipped_rows": [8 * 26, 8 * 28]}]
    state_a, next_a = restore(tiny_config, runs[0])
    state_b, next_b = restore(tiny_config, runs[1])
    assert int(state_a.rollbacks) == 1 and int(state_a.spikes_total) == 0
    assert_same_state(state_a, state_b)
    np.testing.assert_array_equal(next_a, next_b)
    assert scalars(runs[0])["train/rollbacks"][32] == 1


def test_hf_exports_are_written_every_n_steps_and_at_the_end(tiny_config, tmp_path):
    pytest.importorskip("transformers")
    quiet(tiny_config, 3).hf_export_every = 2
    train.train(tiny_config, str(tmp_path), ONE_DEVICE)
    assert sorted(os.listdir(tmp_path / "hf")) == ["step_2", "step_3"]
    assert json.loads((tmp_path / "hf" / "step_3" / "config.json").read_text())["model_type"] == "llama"
    assert hooks.hf_export is not None
