"""Evaluation sets as the texts a model is tested on, for decontamination (data_prep/contamination.py).

An evaluation set is a file, read by its suffix:

- JSON lines (`.jsonl`, `.ndjson`, `.json`): one item per line. An item of pretrain_jax's
  few-shot task format (pretrain_jax/fewshot.py) is its context with its answer appended
  as the model reads it: `context + choices[label]` (multiple choice) or
  `context + continuation` (cloze). Any other object (lm-evaluation-harness style:
  question, passage, choices, answer, ...) gives every string field and every string in a
  list field as a text of its own.
- Parquet (`.parquet`): one item per row, read as the JSON objects are.
- Anything else: plain text, the whole file one text.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Mapping
from typing import Any

from pretrain_common.errors import ConfigError

JSONL_SUFFIXES = (".jsonl", ".ndjson", ".json")


def parse_spec(spec: str) -> tuple[str, str]:
    """`name=path`, or a bare path named by its file name without suffix."""
    name, sep, path = spec.partition("=")
    if not sep:
        path, name = spec, os.path.basename(spec).split(".")[0]
    return name, path


def read_texts(path: str, key: str) -> Iterator[list[str]]:
    """Each item's texts; a file that cannot be read is a ConfigError naming `key`, the file and the line."""
    if not os.path.isfile(path):
        raise ConfigError(f"{key}: {path!r} is not a file; give an evaluation set as name=path")
    if path.endswith(JSONL_SUFFIXES):
        return _jsonl(path, key)
    if path.endswith(".parquet"):
        return _parquet(path, key)
    return _plain(path, key)


def item_texts(item: Mapping[str, Any]) -> list[str]:
    """The texts of one item (see the module docstring)."""
    context = item.get("context")
    if isinstance(context, str) and isinstance(item.get("continuation"), str):
        return [context + item["continuation"]]
    choices, label = item.get("choices"), item.get("label")
    if isinstance(context, str) and isinstance(choices, list) and isinstance(label, int) and 0 <= label < len(choices):
        return [context + str(choices[label])]
    texts = []
    for value in item.values():
        values = value if isinstance(value, list) else [value]
        texts += [v for v in values if isinstance(v, str)]
    return texts


def _jsonl(path: str, key: str) -> Iterator[list[str]]:
    with open(path, encoding="utf-8") as f:
        for number, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                item = json.loads(line)
            except json.JSONDecodeError as error:
                raise ConfigError(f"{key}: {path}:{number} is not a JSON object ({error.msg}); "
                                  "fix the line or give the file as plain text (another suffix)") from None
            if not isinstance(item, dict):
                raise ConfigError(f"{key}: {path}:{number} is not a JSON object")
            yield item_texts(item)


def _parquet(path: str, key: str) -> Iterator[list[str]]:
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(path)
    except OSError as error:
        raise ConfigError(f"{key}: {path} is not a Parquet file: {error}") from None
    for batch in table.to_batches():
        yield from (item_texts(row) for row in batch.to_pylist())


def _plain(path: str, key: str) -> Iterator[list[str]]:
    try:
        with open(path, encoding="utf-8") as f:
            yield [f.read()]
    except UnicodeDecodeError:
        raise ConfigError(f"{key}: {path} is not UTF-8 text; give JSON lines, Parquet or text") from None
