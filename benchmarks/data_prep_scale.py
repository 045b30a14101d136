"""How data_prep's cost grows with the corpus: wall time, CPU time per document, peak memory and temporary disk
of one `data-prep run` per size, measured in one run of this script.

Run (from the repository root):

    python benchmarks/data_prep_scale.py [--sizes 10000,100000,1000000] [--write]

Input: JSON lines built from real text (../shared/corpora): the English pages of the Debian
administrator's handbook and the Python 3.11 documentation, as extracted text, cut into
paragraphs. Each document is a run of 3 to 12 consecutive paragraphs of one page from a
random place, and one in ten is a near-duplicate of an earlier document (a few words
dropped or swapped), so exact and MinHash dedup have real work at every size. Recipe:
configs/data/fineweb.py's stages after extraction (langid, Gopher, C4, FineWeb, PII, exact
and MinHash dedup), then the tokenizer and packing, every core. Peak memory is the sum of
the resident memory of the run's whole process tree, sampled every 0.2 s; temporary disk
is the output folder (the run's work folder is inside it) and TMPDIR, sampled alike.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tarfile
import tempfile
import threading
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from data_prep.extract import html_to_text  # noqa: E402
from report import (SHARED_FRACTION, busy_cpu_s, cpu_model, header, process_tree, versions,  # noqa: E402
                    write_section)

CORPORA_DIR = os.path.join(os.path.dirname(REPO), "shared", "corpora")
SOURCES = (("debian-handbook-html.tar.xz", "debian-handbook-html/en-US/"),
           ("python-3.11-docs-html.tar.xz", "python-3.11-docs-html/"))
STAGES = ("langid", "gopher_repetition", "gopher_quality", "c4", "fineweb_quality", "pii", "exact_dedup",
          "minhash_dedup")
FILES = 16  # JSON-lines files per corpus: the runner reads them in parallel
TITLE = "## data_prep at scale: 10k, 100k and 1M documents"
GIB = 1024**3


def pages() -> list[list[str]]:
    """Each real page's paragraphs (lines of 8+ words)."""
    found = []
    for archive, prefix in SOURCES:
        with tarfile.open(os.path.join(CORPORA_DIR, archive)) as tar:
            for member in sorted(tar.getmembers(), key=lambda m: m.name):
                if member.name.startswith(prefix) and member.name.endswith(".html"):
                    text = html_to_text(tar.extractfile(member).read().decode("utf-8", "replace")) or ""
                    paragraphs = [line for line in text.split("\n") if len(line.split()) >= 8]
                    if len(paragraphs) >= 3:
                        found.append(paragraphs)
    return found


def near_duplicate(text: str, rng: random.Random) -> str:
    """`text` with 1 to 3 words dropped and one pair of neighbours swapped."""
    words = text.split(" ")
    for _ in range(rng.randint(1, 3)):
        if len(words) > 2:
            words.pop(rng.randrange(len(words)))
    i = rng.randrange(len(words) - 1)
    words[i], words[i + 1] = words[i + 1], words[i]
    return " ".join(words)


def write_corpus(folder: str, size: int, source: list[list[str]], seed: int = 0) -> float:
    """`size` documents as FILES JSON-lines files in `folder`; returns their megabytes."""
    rng, recent = random.Random(seed), []
    outs = [open(os.path.join(folder, f"part-{i:02d}.jsonl"), "w", encoding="utf-8") for i in range(FILES)]
    total = 0
    for n in range(size):
        if recent and rng.random() < 0.1:
            text = near_duplicate(rng.choice(recent), rng)
        else:
            paragraphs = rng.choice(source)
            start = rng.randrange(len(paragraphs))
            text = "\n".join(paragraphs[start:start + rng.randint(3, 12)])
            recent = (recent + [text])[-1000:]
        line = json.dumps({"id": f"doc-{n}", "text": text}, ensure_ascii=False) + "\n"
        outs[n % FILES].write(line)
        total += len(line.encode("utf-8"))
    for out in outs:
        out.close()
    return total / 1e6


def disk_bytes(*folders: str) -> int:
    total = 0
    for folder in folders:
        for base, _, names in os.walk(folder):
            for name in names:
                try:
                    total += os.lstat(os.path.join(base, name)).st_blocks * 512
                except OSError:
                    pass
    return total


def run(inputs: str, output: str, scratch: str) -> dict:
    """One `data-prep run`, watched: wall s, CPU s of the process tree (each process's last sample: up to
    0.2 s of each one's end is missed), peak memory and disk."""
    command = [os.path.join(os.path.dirname(sys.executable), "data-prep"), "run", "--config=configs/data/fineweb.py",
               f"--config.stages={STAGES!r}", f"--config.inputs={(f'web={inputs}',)!r}",
               f"--config.output_dir={output}"]
    peak, ticks = {"rss": 0, "disk": 0}, {}
    start = time.perf_counter()
    child = subprocess.Popen(command, cwd=REPO, env={**os.environ, "TMPDIR": scratch},
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)

    def watch() -> None:
        while child.poll() is None:
            processes = process_tree(child.pid)
            peak["rss"] = max(peak["rss"], sum(rss for rss, _ in processes.values()))
            ticks.update({key: cpu for key, (_, cpu) in processes.items()})  # a process's last sample counts
            peak["disk"] = max(peak["disk"], disk_bytes(output, scratch))
            time.sleep(0.2)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    log = child.communicate()[0]
    wall = time.perf_counter() - start
    watcher.join()
    if child.returncode:
        raise SystemExit(f"data-prep run failed (exit {child.returncode}):\n{log[-3000:]}")
    cpu = sum(ticks.values()) / os.sysconf("SC_CLK_TCK")
    report = json.load(open(os.path.join(output, "report.json")))
    return {"wall": wall, "cpu": cpu, "rss": peak["rss"], "disk": peak["disk"], "kept": report["documents"]["kept"],
            "output": disk_bytes(output)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000,100000,1000000", help="documents per run, comma-separated")
    parser.add_argument("--write", action="store_true", help="write the section into BENCHMARKS.md")
    args = parser.parse_args()
    start, busy = time.perf_counter(), busy_cpu_s()
    source = pages()
    print(f"{len(source)} real pages, {sum(map(len, source)):,} paragraphs", file=sys.stderr)
    rows = []
    for size in (int(s) for s in args.sizes.split(",")):
        with tempfile.TemporaryDirectory(prefix="scale-") as tmp:
            inputs, output, scratch = (os.path.join(tmp, n) for n in ("inputs", "output", "tmp"))
            os.makedirs(inputs)
            os.makedirs(scratch)
            megabytes = write_corpus(inputs, size, source)
            print(f"{size:,} documents ({megabytes:.0f} MB): running...", file=sys.stderr, flush=True)
            row = {"size": size, "mb": megabytes, **run(inputs, output, scratch)}
        rows.append(row)
        print(line(row), flush=True)
    lines = ["| documents | input MB | wall s | CPU s | CPU ms per document | documents per CPU s | "
             "peak memory (GiB, whole tree) | peak disk (MB, output + temporary) | kept |",
             "|---:|---:|---:|---:|---:|---:|---:|---:|---:|"] + [line(r) for r in rows]
    setting = f"{cpu_model()}, {os.cpu_count()} cores, 24 GiB. {versions(['apache-beam', 'datasketch'])}."
    text = "\n".join(header(TITLE, "python benchmarks/data_prep_scale.py --sizes " + args.sizes, setting, start)
                     + lines + ["", "- " + others_note(busy[0], rows, time.perf_counter() - start)]) + "\n"
    print(text)
    if args.write:
        write_section(text, TITLE)


def others_note(machine_before: float, rows: list[dict], wall_s: float) -> str:
    """Whether other processes used the machine: its busy CPU s beyond this script's and the runs' trees
    (report.load_note counts reaped children only, which misses forkserver workers)."""
    own = os.times()
    others = max(0.0, busy_cpu_s()[0] - machine_before - own.user - own.system - sum(r["cpu"] for r in rows))
    verdict = "the machine was shared" if others > SHARED_FRACTION * wall_s else "the machine was not noticeably shared"
    return f"Other processes used {others:.0f} CPU s during the {wall_s:.0f} s run (/proc/stat): {verdict}."


def line(row: dict) -> str:
    return (f"| {row['size']:,} | {row['mb']:.0f} | {row['wall']:.0f} | {row['cpu']:.0f} | "
            f"{1000 * row['cpu'] / row['size']:.2f} | {row['size'] / row['cpu']:.0f} | {row['rss'] / GIB:.2f} | "
            f"{row['disk'] / 1e6:.0f} | {row['kept']:,} |")


if __name__ == "__main__":
    main()
