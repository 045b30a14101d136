"""A Beam run that dies is resumed by the same command: pipeline 1 (curation, shard texts, tokenizer) is not run
again once its checkpoint exists, shards already written are kept, and only the missing ones are written."""

import os
import shutil

import pytest

from data_prep import beam_runner, prepare
from pretrain_common.errors import ConfigError
from tests.data_prep.test_beam_runner import _config, inputs  # noqa: F401 (fixture)

IN_PROCESS = ["--runner=FnApiRunner"]


def _identity(path):
    """A file's inode and modification time: a rewritten shard (a new file renamed over it) changes both."""
    stat = path.stat()
    return stat.st_ino, stat.st_mtime_ns


def test_a_beam_run_that_died_writing_a_shard_resumes_with_only_the_missing_shards(inputs, tmp_path):  # noqa: F811
    notes = tmp_path / "notes.jsonl"  # a copy of one input, changed below
    shutil.copy2(inputs["notes"].split("=", 1)[1], notes)
    own = {**inputs, "notes": f"notes={notes}"}
    local_dir, beam_dir = tmp_path / "local", tmp_path / "beam"
    prepare.prepare(_config("dedup", own, None, local_dir))
    config = _config("dedup", own, None, beam_dir)
    blocked = beam_dir / "validation-00000-of-00001.array_record.tmp"
    blocked.mkdir(parents=True)  # where that shard is written first: the run dies there
    with pytest.raises(ConfigError, match=r"^Beam pipeline 2 \(writing 4 shards\) failed in step 'WriteShards': "
                                          r"IsADirectoryError: \[Errno 21\] Is a directory: .*; fix the cause"):
        beam_runner.run(config, IN_PROCESS)
    assert (beam_dir / prepare.partial_name(config) / prepare.CURATED_FILE).exists()
    finished = {path.name: _identity(path) for path in beam_dir.glob("*.array_record")}
    assert len(finished) == 3, f"the in-process runner writes the shards in name order: the train shards first ({finished})"

    blocked.rmdir()  # the cause fixed
    # The input rewritten with its old size and time (the resume hash stays the same): were pipeline 1 run
    # again, it would read every notes line with its key in upper case, and keep none of them.
    before = notes.stat()
    notes.write_text(notes.read_text().swapcase())
    os.utime(notes, ns=(before.st_atime_ns, before.st_mtime_ns))
    beam_runner.run(config, IN_PROCESS)

    assert {name: _identity(beam_dir / name) for name in finished} == finished  # kept, not written again
    files = lambda folder: sorted(name for name in os.listdir(folder) if name != prepare.TIMINGS_FILE)
    assert files(beam_dir) == files(local_dir)  # the missing shard written, the work folder gone
    for name in files(local_dir):
        assert (beam_dir / name).read_bytes() == (local_dir / name).read_bytes(), name
