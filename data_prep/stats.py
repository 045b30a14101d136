"""Counts of documents in, removed (per stage and reason) and kept (per split), per source."""

from __future__ import annotations

import collections
import dataclasses
from typing import Any


@dataclasses.dataclass
class SourceCounts:
    input: str  # the input spec, as given in the config
    files: int
    removed: collections.Counter = dataclasses.field(default_factory=collections.Counter)
    kept: collections.Counter = dataclasses.field(default_factory=collections.Counter)

    @property
    def documents(self) -> int:
        """Documents read: every one is either kept or removed."""
        return sum(self.removed.values()) + sum(self.kept.values())

    def to_json(self) -> dict[str, Any]:
        return {"input": self.input, "files": self.files, "documents": self.documents,
                "removed": dict(sorted(self.removed.items())), "kept": dict(sorted(self.kept.items()))}


def format_report(report: dict[str, Any]) -> str:
    """A readable table of a prepare report (see prepare.prepare)."""
    lines = [f"{'source':<24}{'files':>10}{'documents':>12}{'kept':>12}  removed"]
    for name, counts in report["sources"].items():
        removed = ", ".join(f"{reason} {n}" for reason, n in counts["removed"].items()) or "-"
        kept = sum(counts["kept"].values())
        lines.append(f"{name:<24}{counts['files']:>10,}{counts['documents']:>12,}{kept:>12,}  {removed}")
    lines.append("")
    lines.append(f"{'split':<24}{'documents':>12}{'sequences':>12}{'tokens':>14}{'shards':>8}")
    for split, info in report["splits"].items():
        lines.append(f"{split:<24}{info['documents']:>12,}{info['sequences']:>12,}"
                     f"{info['tokens']:>14,}{len(info['shards']):>8}")
    lines.append(f"\n{report['seconds']:.1f} s, output in {report['output_dir']}")
    return "\n".join(lines)
