"""Heuristic document filters: the published Gopher, C4 and FineWeb rules, and URL lists.

The convention, shared by every filter:

- A filter is a pure function of a document's text (or URL) with keyword thresholds
  that default to the published recipe; None turns an optional rule off.
- It returns None to keep the document, or a reason `"<filter>:<rule>"` naming the rule
  that dropped it (`Removed(*reason.split(":", 1))` makes the pipeline's record).
- A filter that also rewrites the text (only C4 does) returns `Cleaned(text, reason)`,
  with exactly one of the two set.

Filters called one after another on the same string share its tokenization (see
`text_stats`), so running several costs little more than running one.
"""

from data_prep.filters.c4 import Cleaned, c4_quality
from data_prep.filters.fineweb import fineweb_quality
from data_prep.filters.gopher import gopher_quality, gopher_repetition
from data_prep.filters.url import UrlBlocklist

__all__ = [
    "Cleaned",
    "UrlBlocklist",
    "c4_quality",
    "fineweb_quality",
    "gopher_quality",
    "gopher_repetition",
]
