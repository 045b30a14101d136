"""Every data_prep config key, with its default and meaning; other data configs override these.

Run: data-prep run --config=configs/data/base.py \
         --config.inputs='("web=/data/crawl",)' --config.output_dir=/data/prepared

`stages` lists the curation stages in order; each reads the config group of its name.
A stage's thresholds default to its published recipe, taken from the stage function's
own keyword defaults (data_prep/filters, data_prep/dedup), so they are written once.
`None` turns a single rule off, in a config file or on the command line
(`--config.c4.min_sentences=None`): the keys of those groups that may be None, and
classifier.top_fraction, are typed `object`, which ml_collections parses as a Python
literal (it parses an int, float or str key by its type, so None would be an error or
the string 'None'); the stage checks their values when it is built.
configs/data/fineweb.py is the full recipe.
"""

import inspect
import types
import typing

import ml_collections
from ml_collections import config_dict

from data_prep import contamination, extract, langid
from data_prep.dedup import DedupConfig
from data_prep.filters import c4_quality, fineweb_quality, gopher_quality, gopher_repetition, languages
from data_prep.filters.code import code_quality
from data_prep.stages import upsample

# Set by the pipeline, not by users: which dedup pass runs, and on how many cores.
_DEDUP_SET_BY_STAGE = ("exact", "near", "num_workers")


def keyword_defaults(function, exclude=()) -> ml_collections.ConfigDict:
    """The keyword defaults of `function` as a config group; a key that may be None is typed `object`."""
    hints = typing.get_type_hints(function)
    group = ml_collections.ConfigDict()
    for name, parameter in inspect.signature(function).parameters.items():
        if parameter.default is inspect.Parameter.empty or name in exclude:
            continue
        value = parameter.default
        if isinstance(value, (frozenset, set)):
            value = tuple(sorted(value))
        may_be_none = types.NoneType in typing.get_args(hints[name])
        group[name] = ml_collections.FieldReference(value, field_type=object) if may_be_none else value
    return group


def get_config() -> ml_collections.ConfigDict:
    c = ml_collections.ConfigDict()
    # What to read: paths to files or folders (read recursively), or corpus names
    # ("python-stdlib"); `name=path` names the source, else it is the folder's name.
    c.inputs = ()
    c.output_dir = ""  # where the shards, tokenizer.model, metadata.json, report.json and timings.json go
    # Replace a dataset already in output_dir. Without it a finished one is an error and an
    # unfinished one (same config) is resumed.
    c.overwrite = False
    # Documents larger than this (UTF-8 bytes) are removed as read:too_large before any
    # stage sees them: one 50 MB page would stall a worker for minutes in extraction.
    c.max_document_bytes = 10_000_000
    # Curation, in order (names: the modules of data_prep/stages/). Per-document stages run on all
    # cores; exact_dedup, minhash_dedup and quality see the whole corpus at their place.
    c.stages = ("extract",)
    c.removed_samples_per_reason = 20  # removed documents per reason in removed_samples.jsonl
    c.vocab_size = 32000  # tokenizer vocabulary, 259 of it special and byte pieces (Llama 2: 32000)
    c.seq_len = 2048  # tokens per packed record, documents and separators laid end to end
    c.validation_fraction = 0.01  # share of documents (by id hash) held out for validation
    # ArrayRecord files for train: contiguous, equal document ranges. With a mixture they
    # are shared out among the sources by kept documents, at least one each (data_prep/prepare.py).
    c.num_train_shards = 8
    c.num_validation_shards = 1  # ArrayRecord files for validation; 0 when validation_fraction is 0
    c.seed = 0  # of the split, the tokenizer and classifier samples; the same seed gives the same dataset
    c.num_workers = 0  # curation and tokenizer processes; 0 = every core this process may use
    # An existing SentencePiece model to tokenize with instead of training one (vocab_size
    # and the tokenizer_* sample keys are then unused): e.g. the tokenizer.model of a
    # pretrained checkpoint (pretrain_jax.hf import) whose pretraining continues on this data.
    c.tokenizer_model = ""
    c.tokenizer_sample_bytes = 200_000_000  # UTF-8 text of train documents the tokenizer learns from
    c.tokenizer_max_lines = 10_000_000  # cap on lines (SentencePiece sentences) in that sample
    # A source mixture (data_prep/mixture.py), as in the Llama data table: either weights,
    # the share of training rows drawn from each input source, as (name, weight) pairs,
    # e.g. (("web", 0.67), ("c4", 0.15), ("code", 0.045), ("wiki", 0.045), ("books", 0.045),
    # ("arxiv", 0.025), ("stackexchange", 0.02)); or epochs, (name, epochs) pairs: each source
    # seen that often relative to the others. Each names every input. The train split is then
    # packed per source; validation stays one split. Empty: no mixture, inputs laid end to end.
    c.mixture = ml_collections.ConfigDict({"weights": (), "epochs": ()})

    # extract: HTML to main text (data_prep/extract.py), "resiliparse" or "trafilatura".
    # resiliparse is the default: on 911 real pages (BENCHMARKS.md, "HTML extraction") it
    # keeps more main text than trafilatura (word F1 0.915 vs 0.897), leaks about as little
    # navigation and footer text (3 of 12,084 strings vs none) and runs 23x faster per core;
    # extraction was two thirds of the FineWeb recipe's CPU time. FineWeb used trafilatura.
    c.extract = ml_collections.ConfigDict({"engine": extract.DEFAULT_ENGINE})
    # url: drop blocked domains (and their subdomains) and URLs with banned substrings;
    # one entry a line, e.g. the UT1 adult list. No file: nothing is blocked.
    c.url = ml_collections.ConfigDict({"domains_path": config_dict.placeholder(str),
                                       "substrings_path": config_dict.placeholder(str)})
    # langid: fastText lid.176; keep documents in `languages` (empty: any) whose top
    # language scores above min_score (FineWeb: 0.65).
    c.langid = ml_collections.ConfigDict({"languages": (), "min_score": langid.MIN_SCORE})
    # Heuristic filters (Gopher, C4, FineWeb): every threshold, defaults as published.
    c.gopher_repetition = keyword_defaults(gopher_repetition)
    c.gopher_quality = keyword_defaults(gopher_quality)
    c.c4 = keyword_defaults(c4_quality)  # c4.bad_words_path: a word list, e.g. LDNOOBW; None: no list
    c.fineweb_quality = keyword_defaults(fineweb_quality)
    # Per-language values of those thresholds and stop words (data_prep/filters/languages.py), for documents
    # whose language the langid stage found: "fineweb2" (FineWeb-2's, 30 languages, shipped), the path of a
    # JSON table of the same shape, or None (every language gets the groups' values above).
    c.language_table = ml_collections.FieldReference(languages.DEFAULT_TABLE, field_type=object)
    # code_quality: The Stack / StarCoder rules for source files (inputs read with ?format=code).
    c.code_quality = keyword_defaults(code_quality)
    # pii has no settings: in `stages`, it replaces emails, public IPs and phone numbers.
    # dedup: shared by exact_dedup and minhash_dedup. scope: None = the whole corpus,
    # "source" = each input on its own (FineWeb: per crawl), or "language" = each language
    # langid found, or each programming language (with langid or code_quality before the dedup stage).
    c.dedup = keyword_defaults(DedupConfig, exclude=_DEDUP_SET_BY_STAGE)
    # decontaminate: remove what shares a word n-gram with an evaluation set (data_prep/contamination.py).
    c.decontaminate = ml_collections.ConfigDict()
    # name=path (or a path, named by its file) of each evaluation set, at most 64: pretrain_jax's
    # few-shot task JSONL, lm-eval-style JSONL or Parquet (every string field), or plain text.
    c.decontaminate.eval_sets = ()
    c.decontaminate.ngram = contamination.NGRAM  # words per n-gram (GPT-3: 13), after lowercasing, punctuation out
    c.decontaminate.remove = "document"  # or "paragraph": only the blocks between blank lines that overlap
    # The evaluation sets' distinct n-grams held, 16 bytes each (800 MB at the default): more is an error.
    c.decontaminate.max_ngrams = 50_000_000

    # The quality classifier: train-classifier writes `model`, eval-classifier and the
    # `quality` stage read it. The stage keeps scores >= threshold, or, with
    # top_fraction (DCLM: 0.1), the top fraction of a sample of the documents reaching it.
    c.classifier = ml_collections.ConfigDict()
    c.classifier.model = ""  # the .npz model file
    c.classifier.train = ml_collections.ConfigDict({"labeled": (), "positives": (), "negatives": ()})
    c.classifier.heldout = ml_collections.ConfigDict({"labeled": (), "positives": (), "negatives": ()})
    c.classifier.max_ngram = 2  # word n-grams 1..max_ngram (DCLM: fastText bigrams)
    c.classifier.num_buckets = 2**20  # feature hash buckets
    c.classifier.lowercase = True
    c.classifier.epochs = 10
    c.classifier.alpha = 1e-5  # L2 regularization per example
    c.classifier.threshold = 0.5  # P(high quality) to keep, when top_fraction is None
    c.classifier.top_fraction = ml_collections.FieldReference(None, field_type=object)  # a float, or None
    c.classifier.sample_bytes = 50_000_000  # text sampled (by id hash) to place the top_fraction threshold

    # upsample: how often each document is seen in training (data_prep/stages/upsample.py), as
    # ((lower bound, copies), ...) tables; 0 copies removes, () turns a table off. cluster_copies reads
    # the cluster size the dedup stages record (default: FineWeb-2's rehydration); score_copies the
    # quality stage's score, e.g. ((0.0, 0), (0.5, 1), (0.8, 2)). Each source's train split is packed
    # per bucket, drawn in proportion to copies x tokens (data_prep/mixture.py).
    c.upsample = ml_collections.ConfigDict({"cluster_copies": upsample.FINEWEB2_CLUSTER_COPIES,
                                            "score_copies": ()})
    return c

