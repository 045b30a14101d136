"""How data_prep's cost grows with the corpus: wall time, CPU time per document, peak memory and temporary disk
of one `data-prep run` per size, measured in one run of this script.

Run (from the repository root; the first run downloads the Debian packages below, 164 MB, 1.1 GB unpacked):

    python benchmarks/data_prep_scale.py [--sizes 10000,100000,1000000] [--html-sizes 100000] [--write]

Real pages: the English pages of the Debian administrator's handbook and the Python 3.11
documentation (../shared/corpora) and every HTML page of the Debian documentation packages
in DEBIAN_DOCS (`apt-get download`, unpacked into --cache): 28,104 pages.

- JSON lines (`--sizes`): the extracted text of the pages with 3+ paragraphs (lines of 8+
  words), 17,500 of them. Each document is a run of up to 12 consecutive paragraphs of one
  page from a random place (3 to 12, fewer at a page's end), and one in ten is a
  near-duplicate of an earlier document (a few words dropped or swapped), so exact and MinHash
  dedup have real work at every size. Recipe: configs/data/fineweb.py's stages after
  extraction (langid, Gopher, C4, FineWeb, PII, exact and MinHash dedup), then the tokenizer
  and packing.
  `--capped-sample-mb` adds a run of the largest size with a small tokenizer sample: what
  tokenizer_sample_bytes does to memory.
- HTML (`--html-sizes`): the whole path from crawl files. All 28,104 pages as HTTP responses in
  gzipped WARC files, each page once and then again, as a crawl revisits it, with a few words
  changed in up to three of its text runs, until the size is reached. Recipe: the same with
  extraction first, by the default engine, resiliparse (FineWeb's config says trafilatura,
  which costs about 30 ms more CPU per page, "data_prep vs datatrove" above); the url stage,
  which needs blocklists, is left out.

Every run uses every core. Peak memory is the sum of the resident memory of the run's whole
process tree, sampled every 0.2 s; temporary disk is the output folder (the run's work folder
is inside it) and TMPDIR, sampled alike.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import random
import re
import subprocess
import sys
import tarfile
import tempfile
import threading
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from fastwarc import warc  # noqa: E402

from data_prep.extract import DEFAULT_ENGINE, html_to_text  # noqa: E402
from report import (SHARED_FRACTION, busy_cpu_s, cpu_model, header, process_tree, versions,  # noqa: E402
                    write_section)

CORPORA_DIR = os.path.join(os.path.dirname(REPO), "shared", "corpora")
SOURCES = (("debian-handbook-html.tar.xz", "debian-handbook-html/en-US/"),
           ("python-3.11-docs-html.tar.xz", "python-3.11-docs-html/"))
DEBIAN_DOCS = ("linux-doc-6.1", "openjdk-17-doc", "python-scipy-doc", "libreoffice-help-en-us", "qtbase5-doc-html",
               "cmake-doc", "postgresql-doc-15", "python-django-doc", "gimp-help-en", "git-doc", "sphinx-doc",
               "nodejs-doc")
STAGES = ("langid", "gopher_repetition", "gopher_quality", "c4", "fineweb_quality", "pii", "exact_dedup",
          "minhash_dedup")
FILES = 16  # JSON-lines files per corpus: the runner reads them in parallel
TITLE = "## data_prep at scale: 10k, 100k and 1M documents"
GIB = 1024**3


def html_files(cache: str) -> list[tuple[str, str]]:
    """(URI, path) of every real page, the Debian packages downloaded and unpacked into `cache` if not there."""
    os.makedirs(cache, exist_ok=True)
    folders = []
    for archive, prefix in SOURCES:
        name = archive.removesuffix(".tar.xz")
        folder = os.path.join(cache, name)
        if not os.path.isdir(folder):
            with tarfile.open(os.path.join(CORPORA_DIR, archive)) as tar:
                tar.extractall(folder + ".part", filter="data")
            os.rename(folder + ".part", folder)
        folders.append((name, os.path.join(folder, prefix)))
    for package in DEBIAN_DOCS:
        folder = os.path.join(cache, package)
        if not os.path.isdir(folder):
            print(f"downloading {package}...", file=sys.stderr, flush=True)
            try:
                subprocess.run(["apt-get", "download", package], cwd=cache, check=True, capture_output=True, text=True)
            except (OSError, subprocess.CalledProcessError) as e:
                reason = getattr(e, "stderr", "") or str(e)
                raise SystemExit(f"cannot download the Debian package {package} (apt-get download, on Debian or "
                                 f"Ubuntu with deb.debian.org reachable): {reason.strip()[-300:]}")
            deb = newest_deb(cache, package)
            subprocess.run(["dpkg-deb", "-x", deb, folder + ".part"], cwd=cache, check=True)
            os.rename(folder + ".part", folder)
        folders.append((package, folder))
    found = []
    for name, folder in folders:
        for base, _, names in sorted(os.walk(folder)):
            for page in sorted(names):
                path = os.path.join(base, page)
                if page.endswith((".html", ".htm")) and os.path.isfile(path) and not os.path.islink(path):
                    found.append((f"https://{name}.docs.invalid/{os.path.relpath(path, folder)}", path))
    return found


def read_page(path: str) -> str:
    with open(path, "rb") as f:
        return f.read().decode("utf-8", "replace")


def paragraphs(files: list[tuple[str, str]]) -> list[list[str]]:
    """Each real page's paragraphs (lines of 8+ words of its extracted text), pages of fewer than 3 left out."""
    found = []
    for _, path in files:
        text = html_to_text(read_page(path)) or ""
        lines = [line for line in text.split("\n") if len(line.split()) >= 8]
        if len(lines) >= 3:
            found.append(lines)
    return found


def near_duplicate(text: str, rng: random.Random) -> str:
    """`text` with 1 to 3 words dropped and one pair of neighbours swapped."""
    words = text.split(" ")
    for _ in range(rng.randint(1, 3)):
        if len(words) > 2:
            words.pop(rng.randrange(len(words)))
    if len(words) > 1:  # a text of one space-free run (words joined by other spaces) stays as it is
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


TEXT_RUN = re.compile(r">([^<>]{40,})<")  # text between two tags
CODE_BLOCK = re.compile(r"<(script|style)\b.*?</\1\s*>", re.IGNORECASE | re.DOTALL)  # text there is not the page's


def revisited(html: str, rng: random.Random) -> str:
    """`html` with up to three of its text runs of 8+ space-separated words (outside scripts and styles) edited by
    `near_duplicate`."""
    code = [m.span() for m in CODE_BLOCK.finditer(html)]
    runs = [m for m in TEXT_RUN.finditer(html) if len(m.group(1).split(" ")) >= 8
            and not any(start <= m.start() < end for start, end in code)]
    for m in sorted(rng.sample(runs, min(3, len(runs))), key=lambda m: m.start(), reverse=True):
        html = html[:m.start(1)] + near_duplicate(m.group(1), rng) + html[m.end(1):]
    return html


def write_html_corpus(folder: str, size: int, files: list[tuple[str, str]], seed: int = 0) -> float:
    """`size` pages as FILES gzipped WARC files of HTTP responses: each page once (in a random order), then
    revisits (`revisited`) round the pages again until `size`; returns their megabytes (compressed)."""
    rng = random.Random(seed)
    order = rng.sample(files, len(files))
    outs = [gzip.open(os.path.join(folder, f"part-{i:02d}.warc.gz"), "wb", compresslevel=6) for i in range(FILES)]
    for n in range(size):
        uri, path = order[n % len(order)]
        html = read_page(path)
        if n >= len(order):
            html, uri = revisited(html, rng), f"{uri}?visit={n // len(order)}"
        record = warc.WarcRecord()
        record.init_headers(warc.WarcRecordType.response)
        record.set_bytes_content(b"HTTP/1.1 200 OK\r\nContent-Type: text/html; charset=utf-8\r\n\r\n"
                                 + html.encode("utf-8"))
        record.headers["WARC-Target-URI"] = uri
        record.headers["Content-Type"] = "application/http; msgtype=response"
        record.write(outs[n % FILES])
    for out in outs:
        out.close()
    return sum(os.path.getsize(os.path.join(folder, name)) for name in os.listdir(folder)) / 1e6


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


PROGRESS = re.compile(r"^(?:\x1b\[A)*(.+?):\s+(?:\d+%\||\d[\d,.]*\s*\S*\s*\[)")  # a tqdm bar: its label
PHASE_MESSAGES = ("training the tokenizer",)


def phase_of(line: str) -> str | None:
    """The phase a line of data-prep's output starts, if it starts one: a progress bar's label (the
    per-document stages' long one shortened), or a message of PHASE_MESSAGES."""
    if match := PROGRESS.match(line):
        return "per-document stages" if "+" in match.group(1) else match.group(1).strip()
    return next((message for message in PHASE_MESSAGES if line.startswith(message)), None)


def run(inputs: str, output: str, scratch: str, stages: tuple[str, ...], overrides: tuple[str, ...] = ()) -> dict:
    """One `data-prep run`, watched: wall s, CPU s of the process tree (each process's last sample: up to
    0.2 s of each one's end is missed), peak memory (and the phase the run was in; the main process's own
    peak), peak disk."""
    command = [os.path.join(os.path.dirname(sys.executable), "data-prep"), "run", "--config=configs/data/fineweb.py",
               f"--config.stages={stages!r}", f"--config.extract.engine={DEFAULT_ENGINE}",
               f"--config.inputs={(f'web={inputs}',)!r}",
               f"--config.output_dir={output}", *overrides]
    peak, ticks, phase, log, by_phase = {"rss": 0, "main": 0, "disk": 0, "phase": ""}, {}, ["start"], [], {}
    start = time.perf_counter()
    child = subprocess.Popen(command, cwd=REPO, env={**os.environ, "TMPDIR": scratch},
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT)

    def follow() -> None:
        """The run's output, and its phase: the label of the last progress bar or phase message it printed."""
        pending = b""
        while chunk := os.read(child.stdout.fileno(), 1 << 16):
            log.append(chunk)
            *lines, pending = re.split(rb"[\r\n]", pending + chunk)
            for text in lines:
                phase[0] = phase_of(text.decode("utf-8", "replace")) or phase[0]

    def watch() -> None:
        while child.poll() is None:
            processes = process_tree(child.pid)
            rss = sum(rss for rss, _ in processes.values())
            if rss > peak["rss"]:
                peak.update(rss=rss, phase=phase[0])
            main = max([rss for (pid, _), (rss, _) in processes.items() if pid == child.pid], default=0)
            peak["main"] = max(peak["main"], main)
            by_phase[phase[0]] = max(by_phase.get(phase[0], 0), main)
            ticks.update({key: cpu for key, (_, cpu) in processes.items()})  # a process's last sample counts
            peak["disk"] = max(peak["disk"], disk_bytes(output, scratch))
            time.sleep(0.2)

    threads = [threading.Thread(target=target, daemon=True) for target in (follow, watch)]
    for thread in threads:
        thread.start()
    child.wait()
    wall = time.perf_counter() - start
    for thread in threads:
        thread.join()
    if child.returncode:
        raise SystemExit(f"data-prep run failed (exit {child.returncode}):\n"
                         f"{b''.join(log)[-3000:].decode('utf-8', 'replace')}")
    cpu = sum(ticks.values()) / os.sysconf("SC_CLK_TCK")
    report = json.load(open(os.path.join(output, "report.json")))
    return {"wall": wall, "cpu": cpu, "rss": peak["rss"], "main": peak["main"], "peak_phase": peak["phase"],
            "main_by_phase": by_phase, "disk": peak["disk"], "kept": report["documents"]["kept"],
            "kept_chars": report["stages"][-1]["chars_out"],
            "tokens": sum(split["tokens"] for split in report["splits"].values()),
            "removed_by": {stage["stage"]: stage["docs_in"] - stage["docs_out"] for stage in report["stages"]}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000,100000,1000000", help="JSON-lines documents per run, comma-separated")
    parser.add_argument("--html-sizes", default="100000", help="HTML pages (in WARC files) per run, comma-separated")
    parser.add_argument("--capped-sample-mb", type=int, default=25,
                        help="one more run of the largest JSON-lines size with config.tokenizer_sample_bytes this "
                             "small, to show what the cap does to memory (0: none)")
    parser.add_argument("--cache", default=os.path.expanduser("~/.cache/pretrain-jax/scale-pages"),
                        help="where the real pages are unpacked (kept between runs)")
    parser.add_argument("--write", action="store_true", help="write the section into BENCHMARKS.md")
    args = parser.parse_args()
    start, busy = time.perf_counter(), busy_cpu_s()
    files = html_files(args.cache)
    source = paragraphs(files)
    print(f"{len(files):,} real pages, {len(source):,} with 3+ paragraphs, {sum(map(len, source)):,} paragraphs",
          file=sys.stderr)
    json_lines = lambda folder, size: write_corpus(folder, size, source)
    sizes = [int(n) for n in args.sizes.split(",") if n]
    runs = [("JSON lines", size, STAGES, json_lines, ()) for size in sizes]
    if args.capped_sample_mb and sizes:
        runs.append((f"JSON lines, tokenizer sample <= {args.capped_sample_mb} MB", max(sizes), STAGES, json_lines,
                     (f"--config.tokenizer_sample_bytes={args.capped_sample_mb * 10**6}",)))
    runs += [("HTML in WARC", int(n), ("extract",) + STAGES, lambda folder, size: write_html_corpus(folder, size, files),
              ()) for n in args.html_sizes.split(",") if n]
    rows = []
    for kind, size, stages, write, overrides in runs:
        with tempfile.TemporaryDirectory(prefix="scale-") as tmp:
            inputs, output, scratch = (os.path.join(tmp, n) for n in ("inputs", "output", "tmp"))
            os.makedirs(inputs)
            os.makedirs(scratch)
            megabytes = write(inputs, size)
            print(f"{size:,} documents, {kind} ({megabytes:.0f} MB): running...", file=sys.stderr, flush=True)
            row = {"kind": kind, "size": size, "mb": megabytes, **run(inputs, output, scratch, stages, overrides)}
        rows.append(row)
        print(line(row), flush=True)
    lines = ["| documents | input | input MB | wall s | CPU s | CPU ms per document | documents per CPU s | "
             "peak memory (GiB, whole tree) | main process's peak (GiB) | peak disk (MB, output + temporary) | kept | "
             "kept text (M characters) | tokens packed |",
             "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"] + [line(r) for r in rows]
    setting = (f"{cpu_model()}, {os.cpu_count()} cores, 24 GiB. {versions(['apache-beam', 'datasketch', 'resiliparse'])}."
               f" Real pages: {len(files):,} ({len(source):,} with 3+ paragraphs, {sum(map(len, source)):,}"
               f" paragraphs); Debian packages: {', '.join(package_versions(args.cache))}.")
    command = (f"python benchmarks/data_prep_scale.py --sizes {args.sizes} --html-sizes {args.html_sizes} "
               f"--capped-sample-mb {args.capped_sample_mb}")
    each = lambda describe: "; ".join(f"{r['size']:,} {r['kind']}: {describe(r)}" for r in rows)
    notes = [others_note(busy[0], rows, time.perf_counter() - start),
             "Documents removed by each stage: " + each(
                 lambda r: ", ".join(f"{stage} {n:,}" for stage, n in r["removed_by"].items() if n)) + ".",
             "The whole tree's memory peaked during: " + each(lambda r: r["peak_phase"]) + ".",
             "The main process's peak in each phase (MiB, in the order met): " + each(
                 lambda r: ", ".join(f"{name} {rss / 2**20:.0f}" for name, rss in r["main_by_phase"].items())) + "."]
    text = "\n".join(header(TITLE, command, setting, start) + lines + [""] + [f"- {note}" for note in notes]) + "\n"
    print(text)
    if args.write:
        write_section(text, TITLE)


def newest_deb(cache: str, package: str) -> str:
    return max((name for name in os.listdir(cache) if name.startswith(package + "_") and name.endswith(".deb")),
               key=lambda name: os.path.getmtime(os.path.join(cache, name)))


def package_versions(cache: str) -> list[str]:
    """package=version of each Debian package unpacked in `cache`, from the name of its newest .deb."""
    debs = [newest_deb(cache, package) for package in sorted(DEBIAN_DOCS)]
    return [f"{name.split('_')[0]}={name.split('_')[1].replace('%3a', ':')}" for name in debs]


def others_note(machine_before: float, rows: list[dict], wall_s: float) -> str:
    """Whether other processes used the machine: its busy CPU s beyond this script's and the runs' trees
    (report.load_note counts reaped children only, which misses forkserver workers)."""
    own = os.times()
    others = max(0.0, busy_cpu_s()[0] - machine_before - own.user - own.system - sum(r["cpu"] for r in rows))
    verdict = "the machine was shared" if others > SHARED_FRACTION * wall_s else "the machine was not noticeably shared"
    return f"Other processes used {others:.0f} CPU s during the {wall_s:.0f} s run (/proc/stat): {verdict}."


def line(row: dict) -> str:
    return (f"| {row['size']:,} | {row['kind']} | {row['mb']:.0f} | {row['wall']:.0f} | {row['cpu']:.0f} | "
            f"{1000 * row['cpu'] / row['size']:.2f} | {row['size'] / row['cpu']:.0f} | {row['rss'] / GIB:.2f} | "
            f"{row['main'] / GIB:.2f} | "
            f"{row['disk'] / 1e6:.0f} | {row['kept']:,} | {row['kept_chars'] / 1e6:.0f} | {row['tokens']:,} |")


if __name__ == "__main__":
    main()
