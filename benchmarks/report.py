"""What every benchmark's section in BENCHMARKS.md says beside its table: the machine, the versions,
whether the machine was shared during the run; and the writing of the section itself.

Light on purpose (standard library only), so a benchmark that runs where data_prep's
dependencies are not installed (benchmarks/gpu_throughput.py on a GPU machine) can use it.
"""

from __future__ import annotations

import datetime
import importlib.metadata
import os
import platform
import re
import time
from collections.abc import Sequence

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BENCHMARKS_FILE = os.path.join(REPO, "BENCHMARKS.md")
SHARED_FRACTION = 0.05  # other processes' CPU s over the run's wall s above which the machine was shared


def cpu_model() -> str:
    with open("/proc/cpuinfo") as f:
        match = re.search(r"^model name\s*:\s*(.+)$", f.read(), re.MULTILINE)
    return match.group(1).strip() if match else platform.processor() or "unknown"


def versions(packages: Sequence[str]) -> str:
    """Python's and the packages' versions, for a benchmark's section header."""
    def version(name: str) -> str:
        try:
            return importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            return "not installed"
    return ", ".join([f"Python {platform.python_version()}"] + [f"{p} {version(p)}" for p in packages])


def write_section(text: str, title: str) -> None:
    """Replace (or append) the section `title` in BENCHMARKS.md with `text`, creating the file if needed."""
    old = open(BENCHMARKS_FILE).read() if os.path.exists(BENCHMARKS_FILE) else "# Benchmarks\n"
    pattern = re.compile(rf"^{re.escape(title)}\n.*?(?=^## |\Z)", re.MULTILINE | re.DOTALL)
    new = pattern.sub(lambda _: text + "\n", old) if pattern.search(old) else old.rstrip("\n") + "\n\n" + text
    with open(BENCHMARKS_FILE, "w") as f:
        f.write(new.rstrip("\n") + "\n")
    print(f"wrote {title!r} in {BENCHMARKS_FILE}")


def process_tree(root: int) -> dict[tuple[int, str], tuple[int, int]]:
    """(resident bytes, utime + stime clock ticks) of `root` and every live (or unreaped) descendant, keyed by
    (pid, start time). Worker processes started by a forkserver are below it, not below the process that asked
    for them: only a walk of the tree counts their CPU time (the parent's rusage does not)."""
    stats = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()  # fields[0] is the state, field 3 of stat(5)
            except OSError:  # exited meanwhile
                continue
            stats[int(entry)] = (int(fields[1]), fields[19], int(fields[21]) * os.sysconf("SC_PAGE_SIZE"),
                                 int(fields[11]) + int(fields[12]))
    children: dict[int, list[int]] = {}
    for pid, (ppid, *_) in stats.items():
        children.setdefault(ppid, []).append(pid)
    found, todo = {}, [root]
    while todo:
        pid = todo.pop()
        if pid in stats:
            _, start, rss, ticks = stats[pid]
            found[(pid, start)] = (rss, ticks)
            todo += children.get(pid, [])
    return found


def busy_cpu_s() -> tuple[float, float]:
    """(CPU s the whole machine has been busy, CPU s of this process and its reaped children)."""
    with open("/proc/stat") as f:
        user, nice, system, _idle, _iowait, irq, softirq, steal = map(int, f.readline().split()[1:9])
    ours = os.times()
    return ((user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK"),
            ours.user + ours.system + ours.children_user + ours.children_system)


def load_note(before: tuple[float, float], wall_s: float) -> str:
    """Whether other processes used the machine during the run: its busy time beyond ours."""
    machine, ours = (after - start for after, start in zip(busy_cpu_s(), before))
    others = max(0.0, machine - ours)
    verdict = "the machine was shared" if others > SHARED_FRACTION * wall_s else "the machine was not noticeably shared"
    return (f"Other processes used {others:.0f} CPU s during the {wall_s:.0f} s run "
            f"(/proc/stat minus this run's own), load average now {os.getloadavg()[0]:.2f}: {verdict}.")


def header(title: str, command: str, setting: str, start: float) -> list[str]:
    """A section's first lines: its title, the command that reproduces it, and the date, `setting`
    (machine, versions) and runtime since `start` (time.perf_counter())."""
    return [title, "", f"Command: `{command}`", "",
            f"Date: {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC. {setting} "
            f"Runtime {time.perf_counter() - start:.0f} s.", ""]
