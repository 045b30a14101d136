"""BERT masking (Devlin et al. 2019, section 3.1) over packed rows.

Each eligible position is chosen with probability `mask_rate` (0.15); a chosen
position's input becomes the mask token (80%), a random ordinary token (10%) or
stays as it was (10%), and the loss is taken on chosen positions only. Positions
are chosen independently (as Hugging Face's DataCollatorForLanguageModeling does),
so a row holds 15% of its tokens chosen on average rather than exactly.

The mask token: the tokenizer (Llama recipe, pretrain_common/tokenizer.py) has no mask
piece, so a masked-LM model's vocabulary is one id larger than the tokenizer's and
its last id, `model.vocab_size - 1`, is the mask. The data needs no change, and a
tokenizer never produces the id. Random replacements are drawn uniformly from the
ordinary ids `[NUM_SPECIAL, mask_id)`; a vocabulary padded past tokenizer + 1 also
draws the unused ids in between, as BERT drew its [unused] pieces.

Never chosen: the special pieces (unk, bos, eos: the document separator), padding
(segment 0) and the mask id itself.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import ml_collections

from pretrain_common import tokenizer

# unk, bos and eos are ids 0, 1, 2 in the Llama recipe; every id above them is an ordinary piece.
NUM_SPECIAL = 1 + max(tokenizer.LLAMA_RECIPE[k] for k in ("unk_id", "bos_id", "eos_id"))
_STREAM = 0x6D6C6D  # "mlm": separates the masking keys from the parameter-init key of the same seed
_EVAL_STEP = 2**31 - 1  # a step no run reaches


def mask_id(model_cfg: ml_collections.ConfigDict) -> int:
    """The id of the mask token: the last row of the model's vocabulary."""
    return model_cfg.vocab_size - 1


def step_key(seed: int, step: jax.Array, microbatch: jax.Array | int = 0) -> jax.Array:
    """The masking key of one training step and microbatch: a pure function of them, so resume is exact."""
    key = jax.random.fold_in(jax.random.key(seed), _STREAM)
    return jax.random.fold_in(jax.random.fold_in(key, step), microbatch)


def eval_key() -> jax.Array:
    """One fixed key for validation, whatever the seed: every pass masks the same positions of the same
    batches, so validation losses compare across steps and runs."""
    return step_key(0, _EVAL_STEP)


def mask_tokens(rng: jax.Array, tokens: jax.Array, segment_ids: jax.Array, mlm_cfg: ml_collections.ConfigDict,
                mask: int) -> tuple[jax.Array, jax.Array, jax.Array]:
    """(inputs, targets, weights), each [batch, length], from tokens and segment_ids [batch, length].

    inputs: tokens with the chosen positions masked, replaced or kept; targets: the
    original tokens; weights: 1.0 at chosen positions, else 0.0. `mask` is the mask id
    (mask_id(model_cfg)); random replacements lie in [NUM_SPECIAL, mask).
    """
    choose_key, action_key, random_key = jax.random.split(rng, 3)
    eligible = (segment_ids != 0) & (tokens >= NUM_SPECIAL) & (tokens != mask)
    chosen = eligible & jax.random.bernoulli(choose_key, mlm_cfg.mask_rate, tokens.shape)
    action = jax.random.uniform(action_key, tokens.shape)  # below mask_fraction: mask; then random; the rest: keep
    to_mask = chosen & (action < mlm_cfg.mask_fraction)
    to_random = chosen & ~to_mask & (action < mlm_cfg.mask_fraction + mlm_cfg.random_fraction)
    random_tokens = jax.random.randint(random_key, tokens.shape, NUM_SPECIAL, mask, dtype=tokens.dtype)
    inputs = jnp.where(to_mask, jnp.asarray(mask, tokens.dtype), jnp.where(to_random, random_tokens, tokens))
    return inputs, tokens, chosen.astype(jnp.float32)
