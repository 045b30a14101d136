"""The Beam pipeline on a multi-process engine writes the local runner's bytes; engines that cannot run it are refused.

The engine: Beam's own portable runner core (FnApiRunner) with
`--direct_running_mode=multi_processing`, which starts SDK worker processes (the
`sdk_worker_main` harness that Dataflow, Flink and Spark workers run) and splits every
stage's bundles among them over the Fn API. Beam 2.77's DaskRunner is refused: it
hands every consumer of a multi-output DoFn all of its outputs (docs/data_prep.md).
"""

import functools
import os
import subprocess
import sys
import threading
import time

import pytest

from data_prep import beam_runner, prepare
from pretrain_common.errors import ConfigError
from tests.data_prep.test_beam_runner import _config, inputs, quality_model  # noqa: F401 (fixtures)
from tests.faults.test_data_prep_faults import _process_group

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
WORKERS = 2
MULTI_PROCESS = f"--runner=FnApiRunner --direct_running_mode=multi_processing --direct_num_workers={WORKERS}"
SDK_WORKER = "apache_beam.runners.worker.sdk_worker_main"


def _overrides(config):
    """The config as `--config.KEY=VALUE` flags over configs/data/base.py."""
    keys = ("inputs", "stages", "output_dir", "vocab_size", "seq_len", "validation_fraction", "num_train_shards",
            "num_workers", "removed_samples_per_reason", "mixture.weights", "classifier.model",
            "classifier.top_fraction", "classifier.sample_bytes")
    values = {key: functools.reduce(getattr, key.split("."), config) for key in keys}
    return [f"--config.{key}={value!r}" if isinstance(value, tuple) else f"--config.{key}={value}"
            for key, value in values.items() if value is not None]


def _sdk_workers_while(run: subprocess.Popen) -> set[str]:
    """The pids of the SDK worker processes seen in the run's process group until it ends."""
    seen: set[str] = set()

    def watch():
        while run.poll() is None:
            for line in _process_group(run.pid):
                if SDK_WORKER in line:
                    seen.add(line)
            time.sleep(0.05)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    run.wait()
    watcher.join()
    return seen


@pytest.mark.parametrize("case", ["dedup", "mixture_quality"])
def test_a_multi_process_beam_run_writes_the_local_runners_dataset(case, inputs, quality_model, tmp_path):  # noqa: F811
    local_dir, beam_dir = tmp_path / "local", tmp_path / "beam"
    prepare.prepare(_config(case, inputs, quality_model, local_dir))
    command = [sys.executable, "-m", "data_prep", "run", "--runner=beam", "--config=configs/data/base.py",
               *_overrides(_config(case, inputs, quality_model, beam_dir)), f"--beam_options={MULTI_PROCESS}"]
    start = time.monotonic()
    with subprocess.Popen(command, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                          start_new_session=True) as run:
        workers = _sdk_workers_while(run)
        out, err = run.communicate()
    print(f"multi-process Beam run: {time.monotonic() - start:.1f} s, {len(workers)} SDK worker processes")
    assert run.returncode == 0, err[-3000:]
    assert "kept" in out  # the report table
    assert len(workers) >= WORKERS, workers
    files = lambda folder: sorted(name for name in os.listdir(folder) if name != prepare.TIMINGS_FILE)
    assert files(beam_dir) == files(local_dir)
    assert sum(name.endswith(".array_record") for name in files(local_dir)) >= 4
    for name in files(local_dir):
        assert (beam_dir / name).read_bytes() == (local_dir / name).read_bytes(), name


def test_a_multi_process_beam_run_that_fails_ends_in_one_line_and_the_same_command_resumes(inputs, tmp_path):  # noqa: F811
    beam_dir = tmp_path / "beam"
    blocked = beam_dir / "validation-00000-of-00001.array_record.tmp"
    blocked.mkdir(parents=True)  # where that shard is written first: the worker writing it fails there
    command = [sys.executable, "-m", "data_prep", "run", "--runner=beam", "--config=configs/data/base.py",
               *_overrides(_config("dedup", inputs, None, beam_dir)), f"--beam_options={MULTI_PROCESS}"]
    failed = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=900)
    assert failed.returncode == 1, failed.stderr[-3000:]
    last = failed.stderr.strip().splitlines()[-1]  # Beam's workers log the failed bundle's traceback before it
    assert last.startswith("FATAL Beam pipeline 2 (writing "), last
    assert "in step 'WriteShards'" in last and "Is a directory" in last and "run the same command again" in last

    blocked.rmdir()  # the cause fixed
    resumed = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=900)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert len(list(beam_dir.glob("*.array_record"))) == 4


@pytest.mark.parametrize("options", ["--runner=DaskRunner",
                                     "--runner=apache_beam.runners.dask.dask_runner.DaskRunner --dask_npartitions=4"])
def test_the_dask_runner_is_refused_with_the_engine_to_use_instead(options):
    with pytest.raises(ConfigError, match="DaskRunner .*--direct_running_mode=multi_processing"):
        beam_runner.parse_beam_options(options)
