"""A Beam run that cannot go on ends in one line: bad Beam options, an output folder that cannot be made, a step
that fails (in this process, or in a worker process whose traceback comes back as text). A failure that is not
a step's keeps its traceback."""

import apache_beam as beam
import pytest

from data_prep import beam_runner
from pretrain_common.errors import ConfigError
from tests.data_prep.test_beam_runner import _config, inputs  # noqa: F401 (fixture)

RESUME = "it writes the shards still missing"


class BucketGone(Exception):
    """An error type whose name says nothing of being one (a cloud client's NotFound, say)."""


def _fail_in_step(error: BaseException) -> None:
    """Runs a one-step pipeline in this process whose step raises `error`, under the runner's failure handling."""
    def step(_):
        raise error
    with beam_runner._stopped("2 (writing 1 shard)", RESUME), beam.Pipeline(options=beam.pipeline.PipelineOptions(
            ["--runner=FnApiRunner"])) as pipeline:
        _ = pipeline | beam.Create([1]) | "Step X" >> beam.Map(step)


@pytest.mark.parametrize("error, cause", [
    (KeyError("missing"), 'KeyError: "missing"'),
    (ValueError("bad threshold 1.5\nKeyError: 'inner'\nthird line"), "ValueError: bad threshold 1.5"),
    (ValueError(), "ValueError"),
    (BucketGone("404 bucket gone"), "BucketGone: 404 bucket gone"),
    (IsADirectoryError(21, "Is a directory"), "IsADirectoryError: [Errno 21] Is a directory"),
    (MemoryError(), "MemoryError"),
    (ValueError("ünïcödé ✓"), "ValueError: ünïcödé ✓"),
])
def test_a_failed_step_in_this_process_is_one_line_with_its_type_step_and_how_to_go_on(error, cause):
    with pytest.raises(ConfigError) as raised:
        _fail_in_step(error)
    assert str(raised.value) == (f"Beam pipeline 2 (writing 1 shard) failed in step 'Step X': {cause}; "
                                 f"fix the cause and run the same command again: {RESUME}")


def test_a_config_error_in_a_step_is_its_own_line_without_the_step():
    with pytest.raises(ConfigError) as raised:
        _fail_in_step(ConfigError("config.vocab_size=300 is too small: raise it"))
    assert str(raised.value) == "config.vocab_size=300 is too small: raise it"


def _worker_traceback(*exception_lines: str) -> RuntimeError:
    """A failure as the runner raises it from a worker process: the worker's traceback as text (Beam's format)."""
    frames = ('  File "apache_beam/runners/common.py", line 1512, in process\n'
              "    return self.do_fn_invoker.invoke_process(windowed_value)\n")
    chained = "\n\nDuring handling of the above exception, another exception occurred:\n\n".join(
        f"Traceback (most recent call last):\n{frames}{line}" for line in exception_lines)
    return RuntimeError(f"Pipeline job abc failed in state FAILED: {chained}\n")


@pytest.mark.parametrize("error, cause", [
    (_worker_traceback("IsADirectoryError: [Errno 21] Is a directory: '/out/x.tmp'",
                       "RuntimeError: IsADirectoryError: [Errno 21] Is a directory: '/out/x.tmp' "
                       "[while running 'WriteShards']"),
     "IsADirectoryError: [Errno 21] Is a directory: '/out/x.tmp'"),
    (_worker_traceback("ValueError", "RuntimeError: ValueError [while running 'WriteShards']"), "ValueError"),
    (_worker_traceback("pyarrow.lib.ArrowInvalid: bad column [while running 'WriteShards']"),
     "pyarrow.lib.ArrowInvalid: bad column"),
    (_worker_traceback("ValueError: first line [while running 'WriteShards']\nKeyError: 'inner'"),
     "ValueError: first line"),
])
def test_a_failed_step_in_a_worker_process_is_one_line_from_its_traceback(error, cause):
    with pytest.raises(ConfigError) as raised:
        with beam_runner._stopped("2 (writing 1 shard)", RESUME):
            raise error
    assert str(raised.value) == (f"Beam pipeline 2 (writing 1 shard) failed in step 'WriteShards': {cause}; "
                                 f"fix the cause and run the same command again: {RESUME}")


def test_a_config_error_in_a_worker_process_is_its_own_line():
    with pytest.raises(ConfigError) as raised:
        with beam_runner._stopped("1 (curation, tokenizer, shard texts)", RESUME):
            raise _worker_traceback("pretrain_common.errors.ConfigError: config.vocab_size=300 is too small "
                                    "[while running 'Tokenizer/Map(_train_tokenizer)']")
    assert str(raised.value) == "config.vocab_size=300 is too small"


def test_an_error_that_is_not_a_steps_keeps_its_traceback():
    with pytest.raises(KeyError, match="a bug in building the pipeline"):
        with beam_runner._stopped("1 (curation, tokenizer, shard texts)", RESUME):
            raise KeyError("a bug in building the pipeline")


@pytest.mark.parametrize("options, reason", [
    ("--direct_num_workers=abc", "argument --direct_num_workers: invalid int value: 'abc'"),
    ("--runner=NoSuchRunner", "Unexpected pipeline runner: NoSuchRunner"),
    ("--runner='FnApiRunner", "No closing quotation"),
])
def test_options_beam_cannot_take_are_one_line(options, reason):
    with pytest.raises(ConfigError, match=f"^--beam_options=.*: {reason}"):
        beam_runner.parse_beam_options(options)


def test_an_output_folder_that_cannot_be_made_is_one_line(inputs, tmp_path):  # noqa: F811
    (tmp_path / "file").write_text("a file where the output folder's parent should be")
    with pytest.raises(ConfigError, match=r"^config.output_dir='.*/file/out' cannot be made: "):
        beam_runner.run(_config("dedup", inputs, None, tmp_path / "file" / "out"), ["--runner=FnApiRunner"])
