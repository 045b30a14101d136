"""The progress line (where the run is, and at what speed when the interval had a timed step) and the
TensorBoard writer."""

from pretrain_jax import metrics

TRAIN = {"train/loss": 2.5, "train/learning_rate": 3e-4}


def test_the_progress_line_gives_speed_and_the_eta_from_the_step_time():
    perf = {"perf/step_time_seconds": 2.0, "perf/tokens_per_second": 4096.0, "perf/mfu": 0.41}
    line = metrics.progress_line(40, 100, {**TRAIN, **perf})
    assert line == "step 40/100 (40%) | loss 2.5000 | lr 3.00e-04 | 4,096 tok/s | MFU 41.0% | ETA 2m00s"


def test_an_interval_without_a_timed_step_has_no_speed_to_show():
    assert metrics.progress_line(1, 100, TRAIN) == "step 1/100 (1%) | loss 2.5000 | lr 3.00e-04"


def test_scalars_and_texts_go_to_one_event_file_tensorboard_reads(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from tensorboard.util import tensor_util

    writer = metrics.ScalarWriter(str(tmp_path))
    writer.write(1, {"train/loss": 2.5})
    writer.write_texts(2, {"samples/0": "```\nimport os\n```"})
    writer.write(3, {"train/loss": 2.25, "perf/mfu": 0.5})
    writer.close()
    assert len(list(tmp_path.iterdir())) == 1
    events = EventAccumulator(str(tmp_path), size_guidance={"tensors": 0})
    events.Reload()
    assert {tag: [(e.step, float(tensor_util.make_ndarray(e.tensor_proto))) for e in events.Tensors(tag)]
            for tag in ("train/loss", "perf/mfu")} == {"train/loss": [(1, 2.5), (3, 2.25)], "perf/mfu": [(3, 0.5)]}
    assert [(e.step, e.tensor_proto.string_val[0].decode()) for e in events.Tensors("samples/0")] == [
        (2, "```\nimport os\n```")]
    assert events.SummaryMetadata("train/loss").plugin_data.plugin_name == "scalars"
    assert events.SummaryMetadata("samples/0").plugin_data.plugin_name == "text"
