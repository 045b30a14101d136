"""Accounting: every document read ends kept or removed with a reason, counted per stage and source.

The counts are the report (report.json and the table `format_report` prints); the
first few removed documents of each reason are kept for `removed_samples.jsonl`, a
duplicate with the id of the document kept in its place (`kept_id`, null otherwise).
"""

from __future__ import annotations

import collections
import dataclasses
import json
from collections.abc import Iterable, Mapping
from typing import Any, NamedTuple

SAMPLE_CHARS = 500  # of each removed document's text in removed_samples.jsonl


@dataclasses.dataclass
class SourceCounts:
    input: str  # the input spec, as given in the config
    files: int
    read: int = 0  # documents found, readable or not
    removed: collections.Counter = dataclasses.field(default_factory=collections.Counter)
    kept: collections.Counter = dataclasses.field(default_factory=collections.Counter)

    def to_json(self) -> dict[str, Any]:
        return {"input": self.input, "files": self.files, "documents": self.read,
                "removed": dict(sorted(self.removed.items())), "kept": dict(sorted(self.kept.items()))}


@dataclasses.dataclass
class StageStats:
    """Documents and characters into and out of one stage, and why the others left."""

    docs_in: int = 0
    docs_out: int = 0
    chars_in: int = 0
    chars_out: int = 0
    seconds: float = 0.0  # summed over worker processes
    removed: collections.Counter = dataclasses.field(default_factory=collections.Counter)
    # What the stage counted over its results, by tally name (see Stage.tally in stage.py).
    tallies: dict[str, collections.Counter] = dataclasses.field(default_factory=dict)

    def count(self, tallies: Mapping[str, Mapping[str, int]]) -> None:
        for name, counts in tallies.items():
            self.tallies.setdefault(name, collections.Counter()).update(counts)

    def __iadd__(self, other: StageStats) -> StageStats:
        for field in dataclasses.fields(self):
            if field.name != "tallies":
                setattr(self, field.name, getattr(self, field.name) + getattr(other, field.name))
        self.count(other.tallies)
        return self

    def to_json(self) -> dict[str, Any]:
        """Counts, rounded seconds, removals by reason, then each tally, most frequent first and ties by name
        (not in the order met, which differs between runners and runs of many workers)."""
        report = {key: value for key, value in dataclasses.asdict(self).items() if key not in ("removed", "tallies")}
        report["seconds"] = round(self.seconds, 3)
        report["removed"] = dict(sorted(self.removed.items()))
        report.update({name: dict(sorted(counts.items(), key=lambda item: (-item[1], item[0])))
                       for name, counts in sorted(self.tallies.items())})
        return report


class Removal(NamedTuple):
    """A removed document as the report keeps it."""

    id: str
    source: str
    url: str
    reason: str  # "stage:rule"
    text: str  # the first SAMPLE_CHARS of the text the removing stage saw ("" when unreadable)
    kept_id: str | None = None  # a duplicate's: the document kept in its place, so clusters can be rebuilt


class Ledger:
    """Every document's fate, per source and per stage; `check` proves none went missing."""

    def __init__(self, sources: Mapping[str, SourceCounts], samples_per_reason: int):
        self.sources = dict(sources)
        self.stages: dict[str, StageStats] = {}
        self.corpus_reports: dict[str, dict[str, Any]] = {}
        self.summaries: dict[str, dict[str, Any]] = {}  # by stage: what it built before any document (Stage.summary)
        self.parts: collections.Counter = collections.Counter()  # documents kept per part (prepare.part_name)
        self.samples: dict[str, list[Removal]] = collections.defaultdict(list)
        self._samples_per_reason = samples_per_reason

    def stage(self, name: str) -> StageStats:
        return self.stages.setdefault(name, StageStats())

    def remove(self, removal: Removal) -> None:
        self.sources[removal.source].removed[removal.reason] += 1
        samples = self.samples[removal.reason]
        if len(samples) < self._samples_per_reason:
            samples.append(removal)

    def keep(self, source: str, split: str, part: str) -> None:
        self.sources[source].kept[split] += 1
        self.parts[part] += 1

    def check(self) -> dict[str, int]:
        """Documents read, kept and removed; raises if kept + removed != read anywhere."""
        totals = collections.Counter()
        for name, c in self.sources.items():
            kept, removed = sum(c.kept.values()), sum(c.removed.values())
            if kept + removed != c.read:
                raise RuntimeError(f"source {name}: {kept} kept + {removed} removed != {c.read} read")
            totals.update(input=c.read, kept=kept, removed=removed)
        return {key: totals[key] for key in ("input", "kept", "removed")}

    def sample_lines(self) -> Iterable[str]:
        """removed_samples.jsonl: up to N removed documents per reason, reasons sorted."""
        for reason in sorted(self.samples):
            for removal in self.samples[reason]:
                yield json.dumps(removal._asdict(), ensure_ascii=False) + "\n"


def format_report(report: dict[str, Any]) -> str:
    """A readable table of a prepare report (see prepare.prepare)."""
    lines = [f"{'stage':<20}{'docs in':>10}{'docs out':>10}{'chars in':>14}{'chars out':>14}{'s':>8}  removed"]
    for stage in report["stages"]:
        removed = ", ".join(f"{reason} {n}" for reason, n in stage["removed"].items()) or "-"
        lines.append(f"{stage['stage']:<20}{stage['docs_in']:>10,}{stage['docs_out']:>10,}{stage['chars_in']:>14,}"
                     f"{stage['chars_out']:>14,}{stage['seconds']:>8.1f}  {removed}")
        lines += [f"{'':<20}{key}: {value}" for key, value in stage.items()  # tallies and corpus_pass
                  if isinstance(value, dict) and key != "removed" and value]
    lines.append("")
    lines.append(f"{'source':<24}{'files':>10}{'documents':>12}{'kept':>12}  removed")
    for name, counts in report["sources"].items():
        removed = sum(counts["removed"].values())
        lines.append(f"{name:<24}{counts['files']:>10,}{counts['documents']:>12,}"
                     f"{sum(counts['kept'].values()):>12,}  {removed:,}")
    lines.append("")
    lines.append(f"{'split':<24}{'documents':>12}{'sequences':>12}{'tokens':>14}{'shards':>8}")
    for split, info in report["splits"].items():
        lines.append(f"{split:<24}{info['documents']:>12,}{info['sequences']:>12,}"
                     f"{info['tokens']:>14,}{len(info['shards']):>8}")
    for split, sources in report.get("mixture", {}).items():
        lines.append(f"\n{split + ' mixture':<24}{'tokens':>14}{'share':>8}{'weight':>8}  epochs per 1B training tokens")
        lines += [f"{name:<24}{s['tokens']:>14,}{s['share_of_tokens']:>8.3f}{s['weight']:>8.3f}  "
                  f"{s['epochs_per_1b_training_tokens']:.2f}" for name, s in sources.items()]
    docs = report["documents"]
    lines.append(f"\n{docs['input']:,} documents: {docs['kept']:,} kept, {docs['removed']:,} removed; "
                 f"{report['seconds']:.1f} s ({report['docs_per_second']:.0f} docs/s), "
                 f"output in {report['output_dir']}")
    return "\n".join(lines)
