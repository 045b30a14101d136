"""Faults a long data_prep run meets: hostile input files, a bad output folder, a killed main process or
worker, a full disk.

Each bad input must end as a removal with a reason in the report, a bad output
folder as one `FATAL` line; never a traceback, a hang or unbounded memory.
"""

import collections
import contextlib
import gzip
import inspect
import json
import json.decoder
import os
import re
import resource
import signal
import socket
import subprocess
import sys
import time

import pytest
import zstandard

from configs.data import base
from data_prep import corpora, pack, prepare, readers
from data_prep.document import Document
from pretrain_common import records

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _config(output_dir, inputs, **overrides):
    """A one-shard run without validation, small enough for a few documents."""
    config = base.get_config()
    config.update(dict(inputs=tuple(inputs), output_dir=str(output_dir), vocab_size=400, seq_len=64,
                       validation_fraction=0.0, num_validation_shards=0, num_train_shards=1, num_workers=1,
                       stages=()), **overrides)
    return config


def _cli(*args, timeout=120):
    return subprocess.run([sys.executable, "-m", "data_prep", "run", *args], cwd=REPO, capture_output=True,
                          text=True, timeout=timeout)


@pytest.mark.parametrize("output", ["out", "out/below"])
def test_an_output_dir_that_is_or_lies_below_a_file_is_one_fatal_line(tmp_path, output):
    (tmp_path / "in.txt").write_text("A document to prepare.")
    (tmp_path / "out").write_text("a file where the dataset folder should go")
    result = _cli("--config=configs/data/base.py", f"--config.inputs=('{tmp_path / 'in.txt'}',)",
                  f"--config.output_dir={tmp_path / output}")
    assert result.returncode != 0
    assert "Traceback" not in result.stderr, result.stderr
    assert result.stderr.strip().splitlines()[-1].startswith(f"FATAL config.output_dir={str(tmp_path / output)!r}")
    assert (tmp_path / "out").read_text() == "a file where the dataset folder should go"


def _read(folder, max_bytes=None):
    root, files = readers.list_files(str(folder))
    return [(r.id, "kept" if isinstance(r, Document) else str(r.removed))
            for r in readers.read_files("src", root, files, max_bytes=max_bytes)]


def _nested(depth: int, open_: str = "[", close: str = "]") -> str:
    return open_ * depth + close * depth


DEEP_LINES = [  # (a JSON line, its outcome)
    ('{"text": "before"}', "kept"),
    ('{"text": ' + _nested(1_000) + "}", "read:json_too_deep"),  # a JSON text that kills json.loads
    ('{"text": "ok", "meta": ' + _nested(100_000) + "}", "read:json_too_deep"),
    ('{"text": "x", "m": ' + '{"a": ' * (readers.MAX_JSON_DEPTH + 1) + "1" + "}" * (readers.MAX_JSON_DEPTH + 1)
     + "}", "read:json_too_deep"),
    ('{"text": "at the limit", "m": ' + _nested(readers.MAX_JSON_DEPTH - 1) + "}", "kept"),
    ('{"text": "brackets in a string are text: ' + "[{" * 5_000 + '\\" ]"}', "kept"),
    ('{"text": "an unclosed string \\" ' + "[" * 5_000, "read:malformed_json"),
    ('{"text": "after"}', "kept"),
]


def _deep_jsonl(folder):
    (folder / "deep.jsonl").write_text("".join(line + "\n" for line, _ in DEEP_LINES))
    return [(f"src/deep.jsonl:{index}", outcome) for index, (_, outcome) in enumerate(DEEP_LINES, start=1)]


def _with_stack(depth, function):
    """`function()` called `depth` frames deep, as in a Beam worker's deep stack."""
    return function() if depth == 0 else _with_stack(depth - 1, function)


def test_deeply_nested_json_lines_are_removed_whatever_the_callers_stack(tmp_path):
    """Depth is checked before parsing, so the verdict is the same in the local runner and in a worker."""
    expected = _deep_jsonl(tmp_path)
    assert _read(tmp_path) == expected
    assert _with_stack(600, lambda: _read(tmp_path)) == expected


def test_a_run_over_deeply_nested_json_completes_and_counts_them(tmp_path):
    (tmp_path / "in").mkdir()
    expected = _deep_jsonl(tmp_path / "in")
    (tmp_path / "in" / "text.txt").write_text(inspect.getsource(json.decoder))  # enough text for a tokenizer
    report = prepare.prepare(_config(tmp_path / "out", [f"deep={tmp_path / 'in'}"]))
    removed = collections.Counter(outcome for _, outcome in expected if outcome != "kept")
    assert report["sources"]["deep"]["removed"] == removed


def test_links_and_special_files_in_an_input_folder_are_counted_never_opened(tmp_path):
    """A FIFO would block the reader forever, a dangling link stopped the run before reading."""
    folder = tmp_path / "in"
    (folder / "sub").mkdir(parents=True)
    (folder / "module.txt").write_text(inspect.getsource(json.decoder))
    (folder / "linked.txt").symlink_to(folder / "module.txt")  # a link to a file is read as the file
    (folder / "dangling.txt").symlink_to(tmp_path / "gone.txt")
    (folder / "loop").symlink_to(folder / "loop")
    (folder / "device").symlink_to("/dev/zero")
    (folder / "folder-link").symlink_to(folder / "sub")
    os.mkfifo(folder / "pipe.jsonl")
    with socket.socket(socket.AF_UNIX) as server:
        server.bind(str(folder / "socket"))
        result = _cli("--config=configs/data/base.py", f"--config.inputs=('in={folder}',)",
                      f"--config.output_dir={tmp_path / 'out'}", "--config.vocab_size=400",
                      "--config.validation_fraction=0.0", "--config.num_validation_shards=0",
                      "--config.num_train_shards=1", "--config.stages=()", timeout=120)
    assert result.returncode == 0, result.stderr
    report = json.loads((tmp_path / "out" / prepare.REPORT_FILE).read_text())
    assert report["sources"]["in"]["removed"] == {"read:dangling_link": 2, "read:linked_folder": 1,
                                                  "read:not_regular_file": 3}
    assert report["sources"]["in"]["kept"] == {"train": 2}


# --- compressed input that expands far beyond its size: memory stays bounded by max_document_bytes ---

BOMB_LIMIT = 1 << 20  # max_document_bytes in these tests: a JSON line may hold 6 MiB
MEASURE = """
import json, resource, sys
from data_prep import readers
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
root, files = readers.list_files(sys.argv[1])
results = readers.read_files("src", root, files, max_bytes=int(sys.argv[2]))
outcomes = [str(getattr(result, "removed", "kept")) for result in results]
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"outcomes": outcomes, "grown_bytes": (after - before) * 1024, "peak_bytes": after * 1024}))
"""


def _write_bomb(path, open_compressed, expanded: int, frames: int = 1):
    """A JSON line of `expanded` bytes with no newline but the last, written chunk by chunk (the test holds 1 MiB)."""
    chunk = b"x" * (1 << 20)
    with open(path, "wb") as raw:
        for frame in range(frames):
            with open_compressed(raw) as f:
                if frame == 0:
                    f.write(b'{"text": "')
                for _ in range(expanded // frames // len(chunk)):
                    f.write(chunk)
                if frame == frames - 1:
                    f.write(b'"}\n{"text": "after the bomb"}\n')


def _zstd_writer(raw):
    return zstandard.ZstdCompressor(level=1).stream_writer(raw, closefd=False)


def _gzip_writer(raw):
    return gzip.GzipFile(fileobj=raw, mode="wb", compresslevel=1)


@pytest.mark.parametrize("name, writer, expanded, frames", [
    ("bomb.jsonl.zst", _zstd_writer, 1 << 30, 1),
    ("frames.jsonl.zst", _zstd_writer, 1 << 30, 64),  # many frames in one read of the compressed file
    ("bomb.jsonl.gz", _gzip_writer, 1 << 28, 1),
])
def test_a_decompression_bomb_is_removed_as_too_large_in_bounded_memory(tmp_path, name, writer, expanded, frames):
    _write_bomb(tmp_path / name, writer, expanded, frames)
    assert (tmp_path / name).stat().st_size < expanded // 200
    result = subprocess.run([sys.executable, "-c", MEASURE, str(tmp_path), str(BOMB_LIMIT)], cwd=REPO,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    measured = json.loads(result.stdout)
    print(f"{name}: {(tmp_path / name).stat().st_size:,} bytes expanding to {expanded:,}, "
          f"peak resident memory {measured['peak_bytes'] / 2**20:.0f} MiB, "
          f"{measured['grown_bytes'] / 2**20:.0f} MiB over the peak before reading")
    assert measured["outcomes"] == ["read:too_large", "kept"]
    assert measured["grown_bytes"] < 16 * readers.STORED_BYTES_PER_TEXT_BYTE * BOMB_LIMIT  # 96 MiB


# --- kill -9 of the main process: its workers, the forkserver and the resource tracker end within seconds ---

def _process_group(pgid: int) -> list[str]:
    """The command lines of the live (not zombie) processes in a process group, from /proc."""
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        with contextlib.suppress(OSError):
            with open(f"/proc/{pid}/stat") as f:
                state, _, group = f.read().rsplit(")", 1)[1].split()[:3]
            if int(group) == pgid and state != "Z":
                with open(f"/proc/{pid}/cmdline", "rb") as f:
                    found.append(f.read().replace(b"\0", b" ").decode(errors="replace"))
    return found


@pytest.mark.parametrize("phase, marker, processes, stages", [
    ("curate", "forkserver", 3, "('gopher_quality',)"),  # the forkserver and the curation pool's 2 workers
    ("tokenize", "spawn_main", 2, "()"),  # the tokenizer pool's 2 spawned workers
])
def test_killing_the_main_process_ends_every_process_it_started(tmp_path, phase, marker, processes, stages):
    root, _ = corpora.python_stdlib_files()
    inputs = tuple(f"{root}/{folder}" for folder in ("asyncio", "email", "json", "xml"))
    command = [sys.executable, "-m", "data_prep", "run", "--config=configs/data/base.py",
               f"--config.inputs={inputs!r}", f"--config.output_dir={tmp_path}", "--config.vocab_size=400",
               "--config.seq_len=128", "--config.num_workers=2", f"--config.stages={stages}"]
    with subprocess.Popen(command, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                          start_new_session=True) as run:
        try:
            while sum(marker in line for line in _process_group(run.pid)) < processes and run.poll() is None:
                time.sleep(0.02)
            assert run.poll() is None, f"the run ended before its {phase} workers were seen"
            os.kill(run.pid, signal.SIGKILL)
            run.wait()
            deadline = time.monotonic() + 5
            while _process_group(run.pid) and time.monotonic() < deadline:
                time.sleep(0.1)
            assert _process_group(run.pid) == []
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(run.pid, signal.SIGKILL)  # whatever outlived the test


# --- a worker killed mid-run: the run stops at once with one line naming where, never hangs ---

def _workers(pgid: int, phase: str) -> list[int]:
    """The pids of a run's pool workers: spawned tokenizer workers, or curation workers forked by the forkserver."""
    pids = {}
    for pid in filter(str.isdigit, os.listdir("/proc")):
        with contextlib.suppress(OSError):
            with open(f"/proc/{pid}/stat") as f:
                state, ppid, group = f.read().rsplit(")", 1)[1].split()[:3]
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                if int(group) == pgid and state != "Z":
                    pids[int(pid)] = (int(ppid), f.read())
    if phase == "tokenize":
        return [pid for pid, (_, cmdline) in pids.items() if b"spawn_main" in cmdline]
    return [pid for pid, (ppid, cmdline) in pids.items() if b"forkserver" in cmdline and ppid in pids
            and b"forkserver" in pids[ppid][1]]


def _cpu_seconds(pid: int) -> float:
    with contextlib.suppress(OSError):
        with open(f"/proc/{pid}/stat") as f:
            utime, stime = f.read().rsplit(")", 1)[1].split()[11:13]
        return (int(utime) + int(stime)) / os.sysconf("SC_CLK_TCK")
    return 0.0


@pytest.mark.parametrize("phase, stages, message", [
    # killed once it has run stages for a while (its chunks in flight)
    ("curate", "('gopher_repetition',)", r"while curating the inputs"),
    # killed once the first shard is being written: batches are in flight on every worker. Before the
    # pools were ProcessPoolExecutors, multiprocessing.Pool replaced the dead worker and the run waited forever.
    ("tokenize", "()", r"while writing train-\d{5}-of-\d{5}\.array_record"),
])
def test_a_killed_worker_stops_the_run_with_one_line_naming_the_step(tmp_path, phase, stages, message):
    root, _ = corpora.python_stdlib_files()
    command = [sys.executable, "-m", "data_prep", "run", "--config=configs/data/base.py",  # 1,200 files: 4 s a pass
               f"--config.inputs=('{root}/test',)", f"--config.output_dir={tmp_path}", "--config.vocab_size=1000",
               "--config.tokenizer_sample_bytes=2000000", "--config.num_workers=2", f"--config.stages={stages}"]
    with subprocess.Popen(command, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                          start_new_session=True) as run:
        try:
            victim = None
            while victim is None and run.poll() is None:
                busy = [pid for pid in _workers(run.pid, phase) if _cpu_seconds(pid) > 0.3]
                writing = phase == "curate" or any(name.endswith(".array_record.tmp") for name in os.listdir(tmp_path))
                victim = busy[0] if busy and writing else None
                time.sleep(0.02)
            assert victim is not None, f"the run ended before a {phase} worker was seen at work"
            os.kill(victim, signal.SIGKILL)
            try:
                _, stderr = run.communicate(timeout=60)
            except subprocess.TimeoutExpired:
                pytest.fail(f"the run hung after its {phase} worker {victim} was killed")
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(run.pid, signal.SIGKILL)
    assert run.returncode == 1, stderr
    assert "Traceback" not in stderr, stderr
    last = stderr.strip().splitlines()[-1]
    assert last.startswith("FATAL a worker process died") and re.search(message, last), last
    assert "run the same command again" in last and "config.num_workers=2" in last


# --- disk full while writing a shard: nothing half-written stays, and the resumed run writes the same bytes ---

FILE_SIZE_LIMIT = 512 * 1024  # above every file of the curation pass below (450 KB at most), below its shard (700 KB)


def _limit_file_size():
    """In the child: a write past FILE_SIZE_LIMIT bytes fails with EFBIG, as one past a full disk with ENOSPC
    (Python ignores SIGXFSZ, so the write returns the error instead of the signal killing the process)."""
    resource.setrlimit(resource.RLIMIT_FSIZE, (FILE_SIZE_LIMIT, FILE_SIZE_LIMIT))


def test_a_full_disk_while_writing_a_shard_leaves_nothing_a_resume_would_trust(tmp_path):
    root, _ = corpora.python_stdlib_files()
    inputs = (f"{root}/json", f"{root}/email")
    flags = ["--config=configs/data/base.py", f"--config.inputs={inputs!r}", f"--config.output_dir={tmp_path / 'out'}",
             "--config.vocab_size=400", "--config.seq_len=128", "--config.validation_fraction=0.0",
             "--config.num_validation_shards=0", "--config.num_train_shards=1", "--config.num_workers=1",
             "--config.stages=()"]
    shard = pack.shard_name("train", 0, 1)
    full = subprocess.run([sys.executable, "-m", "data_prep", "run", *flags], cwd=REPO, capture_output=True,
                          text=True, timeout=300, preexec_fn=_limit_file_size)
    assert full.returncode == 1, full.stderr
    assert "Traceback" not in full.stderr, full.stderr
    last = full.stderr.strip().splitlines()[-1]
    assert last.startswith(f"FATAL writing {shard} failed: ") and "File too large" in last, last
    [partial] = (tmp_path / "out").glob(prepare.PARTIAL_PREFIX + "*")
    assert (partial / prepare.CURATED_FILE).exists()  # the curation pass finished: the rerun resumes after it
    left = sorted(path.name for path in (tmp_path / "out").rglob("*") if path.is_file())
    assert not [name for name in left if shard in name], left  # no shard, no .tmp of it, no stats of it

    resumed = _cli(*flags, timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    reference = tmp_path / "reference"
    prepare.prepare(_config(reference, inputs, seq_len=128))
    for name in (shard, prepare.REPORT_FILE, records.METADATA_FILE):
        assert (tmp_path / "out" / name).read_bytes() == (reference / name).read_bytes(), name
