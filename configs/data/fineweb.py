"""The FineWeb recipe (Penedo et al. 2024, section 3), in order, on HTML or WARC inputs.

Run: data-prep run --config=configs/data/fineweb.py \
         --config.inputs='("crawl=/data/CC-MAIN-2024-10",)' --config.output_dir=/data/fineweb-en

    extract            trafilatura main text (section 3.2)
    url                blocklists: set url.domains_path / url.substrings_path (UT1 adult list)
    langid             fastText lid.176, English with score > 0.65
    gopher_repetition  Gopher repetition rules (Rae et al. 2021, table A1)
    gopher_quality     Gopher quality rules
    c4                 C4 line cleaning and page rules, without its punctuation and bad-words rules
    fineweb_quality    FineWeb's own three rules (section 3.6)
    pii                emails and public IP addresses to placeholders (and phone numbers)
    exact_dedup        normalized-text hash, per source
    minhash_dedup      MinHash 5-grams, 14 bands x 8 rows, per source (FineWeb: per crawl)

Measured on 2 shared CPU cores (tests/data_prep/test_fineweb_recipe.py, 90 Debian
handbook and Python docs pages, 4.4 MB of HTML): about 5 pages/s end to end, 85% of
the CPU time in trafilatura extraction; 10 of 90 pages kept.
"""

import ml_collections

from configs.data import base


def get_config() -> ml_collections.ConfigDict:
    c = base.get_config()
    c.stages = ("extract", "url", "langid", "gopher_repetition", "gopher_quality", "c4", "fineweb_quality",
                "pii", "exact_dedup", "minhash_dedup")
    # FineWeb's extractor. resiliparse, the base default, keeps more main text on our real
    # pages and runs 23x faster (BENCHMARKS.md, "HTML extraction"): set it for speed.
    c.extract.engine = "trafilatura"
    c.langid.languages = ("en",)
    # FineWeb keeps C4's line and page rules but not its terminal-punctuation line rule
    # (datatrove C4QualityFilter(filter_no_terminal_punct=False)): fineweb_quality has its own.
    c.c4.require_terminal_punctuation = False
    # gopher_quality.rules and fineweb_quality.rules are "fineweb" (the base default): the rules as
    # datatrove built FineWeb. "datatrove" follows datatrove 0.10, which changed them since.
    c.dedup.scope = "source"  # each input is one crawl snapshot: dedup within it, not across
    return c
