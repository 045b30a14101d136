"""The unit every data_prep stage works on, and the one verdict a reader or stage returns against it."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any


@dataclasses.dataclass
class Document:
    """One input document as it moves through the stages.

    `id` is unique and stable across runs (source name plus the path or line it came
    from), so that splits, deduplication choices and shard contents are deterministic.
    """

    id: str
    source: str  # name of the input source (a mixture component)
    url: str  # URL for web documents, file path (and line) for local ones
    text: str
    metadata: dict[str, Any] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass(frozen=True)
class Removed:
    """Why a document was dropped: the stage and the rule that dropped it."""

    stage: str
    reason: str

    def __str__(self) -> str:
        return f"{self.stage}:{self.reason}"


@dataclasses.dataclass(frozen=True)
class Dropped:
    """A document a reader or stage removed: its id, why, and for a duplicate the document kept instead.

    `metadata` holds what the stage learned of the document before removing it (langid:
    its language), so that a stage's tallies read kept and removed documents alike.
    """

    id: str
    removed: Removed
    kept_id: str | None = None
    metadata: Mapping[str, Any] = dataclasses.field(default_factory=dict)


Result = Document | Dropped  # what a reader yields, and a stage decides, for each document
