"""Text generation from a trained model, with a key/value cache (`pretrain-jax generate`:
pretrain_jax/cli/generate.py).

Prompts of different lengths are left-padded to a common length, so every row writes
the same cache slot at each step. Each row's positions start at 0 at its first real
token (RoPE sees what it saw in training, where every document starts at position 0)
and padding slots are masked out. The prompt runs once (prefill), then one token per
step inside a jitted `lax.while_loop`, until every row has produced eos or
`max_new_tokens`.
"""

from __future__ import annotations

import dataclasses
import os
import sys
from collections.abc import Callable, Sequence
from functools import partial
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import sentencepiece as spm

from pretrain_common import records
from pretrain_common import tokenizer as tokenizer_lib
from pretrain_jax import model
from pretrain_jax.attention import Decoding


@dataclasses.dataclass(frozen=True)
class Sampling:
    """How the next token is picked from the logits."""

    temperature: float = 0.0  # 0: greedy (argmax); otherwise logits are divided by it before sampling
    top_k: int = 0  # keep only the k most likely tokens; 0 keeps all
    top_p: float = 1.0  # nucleus sampling (Holtzman et al. 2020): the smallest set reaching this mass; 1 keeps all

    def __post_init__(self):
        if self.temperature < 0:
            raise ValueError(f"temperature={self.temperature}: must be >= 0 (0 is greedy)")
        if self.top_k < 0:
            raise ValueError(f"top_k={self.top_k}: must be >= 0 (0 keeps every token)")
        if not 0 < self.top_p <= 1:
            raise ValueError(f"top_p={self.top_p}: must be in (0, 1]")


def top_k_filter(logits: jax.Array, k: int) -> jax.Array:
    """Logits [..., vocab] with all but the k largest of each row set to -inf (ties at the k-th kept)."""
    if k <= 0 or k >= logits.shape[-1]:
        return logits
    kth_largest = jax.lax.top_k(logits, k)[0][..., -1:]
    return jnp.where(logits < kth_largest, -jnp.inf, logits)


def top_p_filter(logits: jax.Array, p: float) -> jax.Array:
    """Logits [..., vocab] keeping the most likely tokens until their probability reaches p; the rest -inf.

    The most likely token is always kept, so no row is left empty.
    """
    if p >= 1:
        return logits
    descending = -jnp.sort(-logits, axis=-1)
    probs = jax.nn.softmax(descending, axis=-1)
    mass_before = jnp.cumsum(probs, axis=-1) - probs  # probability of the tokens ranked above
    smallest_kept = jnp.min(jnp.where(mass_before < p, descending, jnp.inf), axis=-1, keepdims=True)
    return jnp.where(logits < smallest_kept, -jnp.inf, logits)


def next_token(logits: jax.Array, rng: jax.Array, sampling: Sampling) -> jax.Array:
    """logits [batch, vocab] float32 -> token ids [batch] int32."""
    if sampling.temperature == 0:
        return jnp.argmax(logits, axis=-1).astype(jnp.int32)
    logits = top_p_filter(top_k_filter(logits / sampling.temperature, sampling.top_k), sampling.top_p)
    return jax.random.categorical(rng, logits, axis=-1).astype(jnp.int32)


def left_pad(prompts: Sequence[Sequence[int]], pad_id: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(tokens [batch, longest] int32 right-aligned, padding count per row [batch] int32)."""
    if not prompts or any(len(p) == 0 for p in prompts):
        raise ValueError("every prompt needs at least one token (and at least one prompt is needed)")
    longest = max(len(p) for p in prompts)
    tokens = np.full((len(prompts), longest), pad_id, np.int32)
    for row, prompt in enumerate(prompts):
        tokens[row, longest - len(prompt):] = prompt
    return tokens, np.array([longest - len(p) for p in prompts], np.int32)


@partial(jax.jit, static_argnames=("cfg", "max_new_tokens", "sampling"))
def _decode(params: Any, tokens: jax.Array, pad: jax.Array, rng: jax.Array, eos_id: jax.Array, *,
            cfg: ml_collections.FrozenConfigDict, max_new_tokens: int,
            sampling: Sampling) -> tuple[jax.Array, jax.Array]:
    """(new tokens [batch, max_new_tokens], length before eos [batch]); slots after a row's eos are junk."""
    batch, prompt_len = tokens.shape
    valid = jnp.arange(prompt_len + max_new_tokens)[None, :] >= pad[:, None]  # [batch, cache_len]
    positions = jnp.maximum(jnp.arange(prompt_len)[None, :] - pad[:, None], 0)
    logits, cache = model.decode(cfg, params, None, tokens, positions, Decoding(jnp.int32(0), valid))

    def record(i, token, out, done, lengths):
        """Writes token i; a row's length is fixed at its first eos."""
        out = out.at[:, i].set(token)
        lengths = jnp.where(~done & (token == eos_id), i, lengths)
        return out, done | (token == eos_id), lengths

    first = next_token(logits[:, -1], jax.random.fold_in(rng, 0), sampling)
    out, done, lengths = record(0, first, jnp.zeros((batch, max_new_tokens), jnp.int32), jnp.zeros(batch, bool),
                                jnp.full(batch, max_new_tokens, jnp.int32))

    def step(carry):
        i, out, done, lengths, cache = carry
        slot = prompt_len + i - 1  # the cache slot of token i-1, fed now
        logits, cache = model.decode(cfg, params, cache, out[:, i - 1, None], (slot - pad)[:, None],
                                     Decoding(slot, valid))
        token = next_token(logits[:, -1], jax.random.fold_in(rng, i), sampling)
        return (i + 1, *record(i, token, out, done, lengths), cache)

    keep_going = lambda carry: (carry[0] < max_new_tokens) & ~jnp.all(carry[2])  # noqa: E731
    _, out, _, lengths, _ = jax.lax.while_loop(keep_going, step, (jnp.int32(1), out, done, lengths, cache))
    return out, lengths


def generate(model_cfg: ml_collections.ConfigDict, params: Any, prompts: Sequence[Sequence[int]],
             max_new_tokens: int, sampling: Sampling = Sampling(), seed: int = 0,
             eos_id: int = tokenizer_lib.LLAMA_RECIPE["eos_id"]) -> list[list[int]]:
    """The new token ids of each prompt's completion, up to (not including) its first eos."""
    if not model_cfg.causal:
        raise ValueError("generation needs a causal model (model.causal=True)")
    if max_new_tokens < 1:
        raise ValueError(f"max_new_tokens={max_new_tokens}: must be >= 1")
    tokens, pad = left_pad(prompts)
    out, lengths = _decode(params, tokens, pad, jax.random.key(seed), jnp.int32(eos_id),
                           cfg=ml_collections.FrozenConfigDict(model_cfg), max_new_tokens=max_new_tokens,
                           sampling=sampling)
    out, lengths = jax.device_get((out, lengths))
    return [row[:n].tolist() for row, n in zip(out, lengths)]


def decode_continuation(tokenizer: spm.SentencePieceProcessor, prompt: Sequence[int], new: Sequence[int]) -> str:
    """The text `new` adds after `prompt`: decoded alone, a first piece "▁x" would lose its space."""
    return tokenizer.decode(list(prompt) + list(new))[len(tokenizer.decode(list(prompt))):]


def complete(model_cfg: ml_collections.ConfigDict, params: Any, tokenizer: spm.SentencePieceProcessor,
             prompts: Sequence[str], max_new_tokens: int, sampling: Sampling = Sampling(),
             seed: int = 0) -> list[str]:
    """The text each prompt continues with (no bos: training documents start without one)."""
    prompt_ids = tokenizer.encode(list(prompts))
    new = generate(model_cfg, params, prompt_ids, max_new_tokens, sampling, seed, tokenizer.eos_id())
    return [decode_continuation(tokenizer, p, n) for p, n in zip(prompt_ids, new)]


def periodic_samples(config: ml_collections.ConfigDict,
                     metadata: records.DatasetMetadata) -> Callable[[Any], dict[str, str]]:
    """params -> TensorBoard texts: each of config.generate.prompts with its greedy completion.

    The tokenizer is read once per run, not at every sampling step.
    """
    tokenizer = tokenizer_lib.load_tokenizer(os.path.join(config.data.dir, metadata.tokenizer))
    prompts = config.generate.prompts

    def run(params: Any) -> dict[str, str]:
        completions = complete(config.model, params, tokenizer, prompts, config.generate.max_new_tokens)
        # A code block keeps newlines and indentation as they are under TensorBoard's markdown.
        return {f"samples/{i}": f"```\n{p}{c}\n```" for i, (p, c) in enumerate(zip(prompts, completions))}

    return run


if __name__ == "__main__":  # `python -m pretrain_jax.generate ...`: an alias of `pretrain-jax generate ...`
    from pretrain_jax import cli

    cli.main(["generate", *sys.argv[1:]])
