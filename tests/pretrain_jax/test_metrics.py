"""The progress line: where the run is, and at what speed when the interval had a timed step."""

from pretrain_jax import metrics

TRAIN = {"train/loss": 2.5, "train/learning_rate": 3e-4}


def test_the_progress_line_gives_speed_and_the_eta_from_the_step_time():
    perf = {"perf/step_time_seconds": 2.0, "perf/tokens_per_second": 4096.0, "perf/mfu": 0.41}
    line = metrics.progress_line(40, 100, {**TRAIN, **perf})
    assert line == "step 40/100 (40%) | loss 2.5000 | lr 3.00e-04 | 4,096 tok/s | MFU 41.0% | ETA 2m00s"


def test_an_interval_without_a_timed_step_has_no_speed_to_show():
    assert metrics.progress_line(1, 100, TRAIN) == "step 1/100 (1%) | loss 2.5000 | lr 3.00e-04"
