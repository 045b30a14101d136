"""The dedup stage's time with 1 and with 2 worker processes, on the same real text with near-duplicates.

Run (from the repository root):

    python benchmarks/dedup_workers.py [--variants 4] [--workers 1 2]

Input: every docstring of 30+ words in this Python's standard library, each followed by
`--variants` copies, each one the one before with a word dropped at a seeded place
(a chain of near-duplicates, so the clusters are paths and take several rounds of
large-star / small-star). `deduplicate` (exact, then MinHash, FineWeb's settings) runs
on the same documents once per worker count, processes from the first document; the
table gives its seconds per step (fingerprints, exact groups, near clusters), the
clusters, and the load average before each run (above 0 shows a shared machine).
"""

from __future__ import annotations

import argparse
import os
import random
import re
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from data_prep import corpora  # noqa: E402
from data_prep.dedup import DedupConfig, deduplicate  # noqa: E402
from data_prep.document import Document  # noqa: E402

DOCSTRING = re.compile(r'"""(.*?)"""', re.S)
MIN_WORDS = 30


def documents(variants: int) -> list[Document]:
    """Stdlib docstrings and chains of `variants` one-word deletions of each."""
    _, files = corpora.python_stdlib_files()
    rng, docs = random.Random(0), []
    for path in files:
        with open(path, encoding="utf-8", errors="replace") as f:
            for index, text in enumerate(d for d in DOCSTRING.findall(f.read()) if len(d.split()) >= MIN_WORDS):
                words = text.split()
                for variant in range(variants + 1):
                    docs.append(Document(f"{path}:{index}/v{variant}", "stdlib", path, " ".join(words)))
                    if len(words) > 1:
                        del words[rng.randrange(len(words))]
    return docs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variants", type=int, default=4, help="edited copies of each docstring")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2], help="worker counts to time")
    args = parser.parse_args()
    docs = documents(args.variants)
    print(f"{len(docs)} documents, {sum(len(d.text) for d in docs) / 1e6:.1f} MB")
    print("| workers | load before | fingerprint s | exact s | near s | total s | kept | near clusters | rounds |")
    print("|---|---|---|---|---|---|---|---|---|")
    for workers in args.workers:
        load = os.getloadavg()[0]
        with tempfile.TemporaryDirectory() as work:
            started = time.time()
            result = deduplicate(docs, work, DedupConfig(num_workers=workers, pool_after_docs=0))
            total = time.time() - started
        s, stats = result.stats["seconds"], result.stats
        print(f"| {workers} | {load:.2f} | {s['fingerprint']:.1f} | {s['exact']:.1f} | {s['near']:.1f} | "
              f"{total:.1f} | {stats['kept']} | {stats['near_clusters']} | {stats['rounds']} |", flush=True)


if __name__ == "__main__":
    main()
