"""The SentencePiece BPE tokenizer: trained with the Llama recipe, applied on all cores."""

from __future__ import annotations

import io
import itertools
import os
import re
import sys
import time
from collections.abc import Iterable, Iterator

import numpy as np
import sentencepiece as spm
from sentencepiece import sentencepiece_model_pb2

from data_prep import workers
from pretrain_common.errors import ConfigError
from pretrain_common.tokenizer import LLAMA_RECIPE, TOKENIZER_FILE, load_tokenizer

MAX_LINE_BYTES = 4192  # SentencePiece's max_sentence_length default: longer lines are skipped
ENCODE_BATCH_CHARS = 1 << 18  # text per task sent to a worker: large enough to amortize pickling
_MAX_VOCAB_RE = re.compile(r"Please set it to a value <= (\d+)")
_MIN_VOCAB_RE = re.compile(r"Vocabulary size is smaller than required_chars\. \d+ vs (\d+)")


def training_lines(texts: Iterable[str], max_lines: int) -> Iterator[str]:
    """The non-blank lines of `texts`, in order, at most `max_lines` of them.

    SentencePiece trains on sentences; feeding lines rather than whole documents keeps
    each under its length limit. Newlines themselves are encoded by byte fallback.
    """
    lines = (line for text in texts for line in text.splitlines() if line.strip())
    return itertools.islice(lines, max_lines)


def train_tokenizer(lines: Iterable[str], output_dir: str, vocab_size: int, num_threads: int) -> str:
    """Trains on `lines` and writes `tokenizer.model` into `output_dir`; returns its path.

    The model is written to memory, not to a model_prefix, so its bytes do not depend
    on the folder it was trained in (a trained model records its prefix), and without
    the thread count it records, so they do not depend on the machine's cores either.
    A vocabulary larger than the sample supports is a ConfigError naming vocab_size.
    """
    model = io.BytesIO()
    print(f"training the tokenizer: vocab_size={vocab_size}, num_threads={num_threads}", file=sys.stderr, flush=True)
    start = time.time()
    try:
        with open(os.devnull, "w") as quiet:
            spm.SentencePieceTrainer.train(
                sentence_iterator=iter(lines),
                model_writer=model,
                vocab_size=vocab_size,
                max_sentence_length=MAX_LINE_BYTES,
                num_threads=num_threads,
                logstream=quiet,
                **LLAMA_RECIPE,
            )
    except RuntimeError as error:
        if too_large := _MAX_VOCAB_RE.search(str(error)):
            raise ConfigError(f"config.vocab_size={vocab_size} is too large for the tokenizer's training sample, "
                              f"which supports at most {too_large.group(1)}: lower vocab_size, or give more input "
                              "text") from None
        if too_small := _MIN_VOCAB_RE.search(str(error)):
            raise ConfigError(f"config.vocab_size={vocab_size} is smaller than the {too_small.group(1)} pieces the "
                              "sample's characters and the special and byte pieces need: raise vocab_size") from None
        raise
    print(f"trained the tokenizer in {time.time() - start:.1f} s", file=sys.stderr, flush=True)
    path = os.path.join(output_dir, TOKENIZER_FILE)
    with open(path, "wb") as f:
        f.write(_without_thread_count(model.getvalue()))
    return path


def _without_thread_count(model: bytes) -> bytes:
    """`model`, a serialized ModelProto, without the trainer's num_threads (loading reads its default).

    Edited through SentencePiece's own generated protobuf classes; every other field is
    serialized back as SentencePiece wrote it (both write fields in number order).
    """
    proto = sentencepiece_model_pb2.ModelProto()
    proto.ParseFromString(model)
    proto.trainer_spec.ClearField("num_threads")
    return proto.SerializeToString()


def check_model(path: str) -> None:
    """Fails at once, naming `path`, if it is not a readable SentencePiece model."""
    try:
        load_tokenizer(path)
    except (OSError, RuntimeError) as e:
        raise ConfigError(f"config.tokenizer_model={path!r} is not a SentencePiece model: {e}") from None


_worker_tokenizer: spm.SentencePieceProcessor | None = None


def _load_in_worker(path: str) -> None:
    global _worker_tokenizer
    _worker_tokenizer = load_tokenizer(path)


def _encode_batch(texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """All documents' ids, each followed by eos, flat; and each document's length."""
    docs = _worker_tokenizer.encode(texts, add_eos=True, num_threads=1)  # one process, one core
    lengths = np.array([len(ids) for ids in docs], dtype=np.int64)
    flat = np.fromiter(itertools.chain.from_iterable(docs), dtype=np.int32, count=lengths.sum())
    return flat, lengths


def _batches(texts: Iterable[str], max_chars: int) -> Iterator[list[str]]:
    batch, size = [], 0
    for text in texts:
        batch.append(text)
        size += len(text)
        if size >= max_chars:
            yield batch
            batch, size = [], 0
    if batch:
        yield batch


def encode_documents(model_path: str, texts: Iterable[str], num_workers: int) -> Iterator[np.ndarray]:
    """Each text's token ids followed by eos, as int32 arrays, in input order.

    Encoding runs in `num_workers` processes that each load the model once. At most
    two batches per worker are in flight, so memory stays bounded on any input size.
    """
    with workers.pool(num_workers, "spawn", _load_in_worker, (model_path,)) as pool:
        for encoded in workers.ordered(pool, _encode_batch, _batches(texts, ENCODE_BATCH_CHARS), 2 * num_workers):
            yield from _split(*encoded)


def _split(flat: np.ndarray, lengths: np.ndarray) -> list[np.ndarray]:
    return np.split(flat, np.cumsum(lengths)[:-1])
