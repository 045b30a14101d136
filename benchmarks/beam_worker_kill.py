"""What a killed SDK worker process does to a Beam run on the local multi-process engine.

Run (from the repository root):

    python benchmarks/beam_worker_kill.py [--kill-at 3,6,9] [--write]

Input: the 530 pages of the Python 3.11 documentation (../shared/corpora), through the
FineWeb recipe with resiliparse extraction, `--runner=beam` on the FnApiRunner in
multi_processing mode with 2 SDK worker processes. One run is left alone; each other run
has one SDK worker process killed (SIGKILL) that many seconds after it starts. The table
gives each run's exit status, wall time, and whether its output folder holds the
uninterrupted run's bytes (timings.json aside). A run still going 300 s after the kill
counts as hung and is stopped.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tarfile
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from report import busy_cpu_s, cpu_model, header, load_note, versions, write_section  # noqa: E402

CORPUS = os.path.join(os.path.dirname(REPO), "shared", "corpora", "python-3.11-docs-html.tar.xz")
ENGINE = "--runner=FnApiRunner --direct_running_mode=multi_processing --direct_num_workers=2"
SDK_WORKER = "sdk_worker_main"
HUNG_AFTER_S = 300
TITLE = "## Beam: a killed SDK worker process"


def start_run(inputs: str, output: str, log: str) -> subprocess.Popen:
    """`data-prep run` on Beam's multi-process engine, its output to the file `log` (a pipe would fill and block it)."""
    command = [os.path.join(os.path.dirname(sys.executable), "data-prep"), "run", "--runner=beam",
               "--config=configs/data/fineweb.py", "--config.extract.engine=resiliparse", "--config.vocab_size=2000",
               f"--config.inputs={(f'docs={inputs}',)!r}", f"--config.output_dir={output}", f"--beam_options={ENGINE}"]
    with open(log, "wb") as out:
        return subprocess.Popen(command, cwd=REPO, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)


def sdk_workers(group: int) -> list[int]:
    """The pids of the SDK worker processes in process group `group`."""
    found = []
    for entry in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                command = f.read().decode(errors="replace")
            if SDK_WORKER in command and os.getpgid(int(entry)) == group:
                found.append(int(entry))
        except OSError:
            continue
    return found


def watched(run: subprocess.Popen, kill_at: float | None) -> dict:
    """Waits for `run`, killing one SDK worker `kill_at` s after its start (if set); stops it if it hangs."""
    start, killed = time.perf_counter(), None
    while run.poll() is None:
        elapsed = time.perf_counter() - start
        if kill_at is not None and killed is None and elapsed >= kill_at:
            workers = sdk_workers(run.pid)
            if workers:
                os.kill(workers[0], signal.SIGKILL)
                killed = elapsed
        if killed is not None and elapsed - killed > HUNG_AFTER_S:
            os.killpg(run.pid, signal.SIGKILL)
            run.wait()
            return {"status": "hung: stopped", "wall": elapsed, "killed": killed}
        time.sleep(0.1)
    return {"status": f"exit {run.returncode}", "wall": time.perf_counter() - start, "killed": killed}


def same_bytes(a: str, b: str) -> bool:
    names = lambda folder: sorted(name for name in os.listdir(folder) if name != "timings.json")
    if names(a) != names(b):
        return False
    return all(open(os.path.join(a, n), "rb").read() == open(os.path.join(b, n), "rb").read() for n in names(a))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kill-at", default="3,6,9", help="seconds after the start to kill a worker, one run each")
    parser.add_argument("--write", action="store_true", help="write the section into BENCHMARKS.md")
    args = parser.parse_args()
    start, busy = time.perf_counter(), busy_cpu_s()
    with tempfile.TemporaryDirectory(prefix="beam-kill-") as tmp:
        with tarfile.open(CORPUS) as tar:
            tar.extractall(tmp, filter="data")
        inputs = os.path.join(tmp, "python-3.11-docs-html")
        rows = []
        for kill_at in [None] + [float(s) for s in args.kill_at.split(",") if s]:
            output = os.path.join(tmp, f"out-{kill_at}")
            row = {"kill_at": kill_at, **watched(start_run(inputs, output, output + ".log"), kill_at)}
            row["same"] = "(reference)" if kill_at is None else (
                "yes" if row["status"] == "exit 0" and same_bytes(os.path.join(tmp, "out-None"), output) else "no")
            rows.append(row)
            print(line(row), flush=True)
    lines = ["| SDK worker killed at | killed (s) | status | wall s | output = uninterrupted run's bytes |",
             "|---|---:|---|---:|---|"] + [line(r) for r in rows]
    setting = f"{cpu_model()}, {os.cpu_count()} cores. {versions(['apache-beam'])}. Engine: `{ENGINE}`."
    text = "\n".join(header(TITLE, f"python benchmarks/beam_worker_kill.py --kill-at {args.kill_at}", setting, start)
                     + lines + ["", "- " + load_note(busy, time.perf_counter() - start)]) + "\n"
    print(text)
    if args.write:
        write_section(text, TITLE)


def line(row: dict) -> str:
    asked = "not killed" if row["kill_at"] is None else f"{row['kill_at']:.0f} s"
    killed = "-" if row["killed"] is None else f"{row['killed']:.1f}"
    return f"| {asked} | {killed} | {row['status']} | {row['wall']:.0f} | {row['same']} |"


if __name__ == "__main__":
    main()
