"""Masked LM: BERT's proportions on real token ids, what is never masked, determinism, config checks,
exact resume, and a tiny run that learns to fill in masked tokens."""

import os
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from configs import tiny_mlm
from data_prep import corpora
from data_prep import tokenizer as tokenizer_lib
from pretrain_common import records
from pretrain_jax import config as config_lib
from pretrain_jax import input_pipeline, masking, model, objectives, optimizer, sharding, train, train_state, trained
from pretrain_jax.input_pipeline import segments_and_positions

MIN_TOKENS = 1_000_000
ROW = 512
TOLERANCE = 0.01  # absolute, in units of the fraction: 1 percentage point of eligible (or of chosen) tokens
ONE_DEVICE = jax.devices()[:1]


@pytest.fixture(scope="module")
def real_rows(tiny_dataset):
    """At least 1M token ids of Python stdlib sources, encoded with the tiny dataset's tokenizer.

    One document per group of 512-token rows, its last row padded: real separators and padding.
    """
    sp = tokenizer_lib.load_tokenizer(os.path.join(tiny_dataset, records.read_metadata(tiny_dataset).tokenizer))
    _, files = corpora.python_stdlib_files()
    rows, total = [], 0
    for path in files[::3]:
        with open(path, encoding="utf-8", errors="replace") as f:
            ids = np.array(sp.encode(f.read(), add_eos=True), np.int32)
        padded = np.pad(ids, (0, -len(ids) % ROW), constant_values=records.PAD)
        rows.append(padded.reshape(-1, ROW))
        total += len(ids)
        if total >= MIN_TOKENS:
            break
    batch = segments_and_positions(np.concatenate(rows), sp.eos_id())
    assert np.sum(batch["segment_ids"] != 0) >= MIN_TOKENS
    return batch


def masked(batch, seed=0):
    cfg = tiny_mlm.get_config()
    fn = jax.jit(lambda rng, t, s: masking.mask_tokens(rng, t, s, cfg.mlm, masking.mask_id(cfg.model)))
    return jax.tree.map(np.asarray, fn(jax.random.key(seed), batch["tokens"], batch["segment_ids"]))


def test_bert_proportions_over_a_million_real_tokens(real_rows):
    tokens, segment_ids = real_rows["tokens"], real_rows["segment_ids"]
    inputs, targets, weights = masked(real_rows)
    mask = masking.mask_id(tiny_mlm.get_config().model)
    chosen = weights > 0
    eligible = (segment_ids != 0) & (tokens >= masking.NUM_SPECIAL)
    np.testing.assert_array_equal(targets, tokens)
    rates = {
        "chosen of eligible": chosen.sum() / eligible.sum(),
        "masked of chosen": (chosen & (inputs == mask)).sum() / chosen.sum(),
        "random of chosen": (chosen & (inputs != mask) & (inputs != tokens)).sum() / chosen.sum(),
        "unchanged of chosen": (chosen & (inputs == tokens)).sum() / chosen.sum(),
    }
    print({k: round(float(v), 4) for k, v in rates.items()}, f"over {eligible.sum():,} eligible tokens")
    for (name, rate), expected in zip(rates.items(), (0.15, 0.8, 0.1, 0.1)):
        assert abs(rate - expected) < TOLERANCE, (name, rate)
    # A random token can equal the original (1 in 509), so "unchanged" is 0.1 plus a hair.


def test_special_tokens_and_padding_are_never_chosen_and_replacements_are_ordinary(real_rows):
    tokens, segment_ids = real_rows["tokens"], real_rows["segment_ids"]
    inputs, _, weights = masked(real_rows)
    mask = masking.mask_id(tiny_mlm.get_config().model)
    chosen = weights > 0
    assert (segment_ids == 0).sum() > 10_000 and (tokens == 2).sum() > 50  # the sample has both to avoid
    assert not chosen[segment_ids == 0].any()
    assert not chosen[tokens < masking.NUM_SPECIAL].any()
    np.testing.assert_array_equal(inputs[~chosen], tokens[~chosen])  # nothing else is touched
    replaced = chosen & (inputs != mask) & (inputs != tokens)
    assert ((inputs[replaced] >= masking.NUM_SPECIAL) & (inputs[replaced] < mask)).all()


def test_a_mask_token_in_the_input_is_never_chosen():
    cfg = tiny_mlm.get_config()
    mask = masking.mask_id(cfg.model)
    tokens = jnp.full((4, 64), mask, jnp.int32)
    _, _, weights = masking.mask_tokens(jax.random.key(0), tokens, jnp.ones_like(tokens), cfg.mlm, mask)
    assert float(weights.sum()) == 0


def test_masking_is_a_pure_function_of_the_key(real_rows):
    small = {k: v[:64] for k, v in real_rows.items()}
    first, again, other = masked(small, 1), masked(small, 1), masked(small, 2)
    for a, b in zip(first, again):
        np.testing.assert_array_equal(a, b)
    assert not np.array_equal(first[2], other[2])
    a, b = masking.step_key(0, 5, 0), masking.step_key(0, 5, 1)
    assert not np.array_equal(jax.random.key_data(a), jax.random.key_data(b))  # microbatches differ


def test_masked_lm_loss_counts_only_the_chosen_positions():
    tokens = jnp.arange(3, 3 + 2 * 32, dtype=jnp.int32).reshape(2, 32)
    batch = {k: jnp.asarray(v) for k, v in segments_and_positions(np.asarray(tokens), 2).items()}
    cfg = tiny_mlm.get_config()
    uniform = lambda params, t, s, p: jnp.zeros(t.shape + (cfg.model.vocab_size,))  # noqa: E731
    loss_fn = objectives.loss_fn(cfg, uniform)
    rng = jax.random.key(3)
    loss_sum, count, _ = loss_fn(None, batch, rng)
    _, _, weights = masking.mask_tokens(rng, batch["tokens"], batch["segment_ids"], cfg.mlm, 512)
    assert float(count) == float(weights.sum()) > 0
    np.testing.assert_allclose(loss_sum, float(count) * np.log(cfg.model.vocab_size), rtol=1e-6)


@pytest.mark.parametrize("objective, causal, message", [
    ("masked_lm", True, "needs model.causal=False"),
    ("causal_lm", False, "needs model.causal=True"),
    ("span_lm", True, "choose one of"),
])
def test_the_objective_must_match_the_attention(objective, causal, message):
    config = tiny_mlm.get_config()
    config.objective, config.model.causal = objective, causal
    with pytest.raises(ValueError, match=message):
        config_lib.validate(config, 1)


def test_a_masked_lm_needs_an_id_beyond_the_tokenizer_for_the_mask(tiny_dataset):
    config = tiny_mlm.get_config()
    config.data.dir = tiny_dataset
    config.model.vocab_size = 512  # the tokenizer's size: no id left for the mask
    with pytest.raises(ValueError, match="vocab_size=513"):
        input_pipeline.check_compatible(records.read_metadata(tiny_dataset), config)


@pytest.fixture(scope="module")
def resumed_mlm_run(tiny_mlm_run, tmp_path_factory):
    """The tiny_mlm_run config run again, stopped halfway and resumed: (config, its workdir)."""
    config = trained.load_config(tiny_mlm_run)
    steps = config.num_train_steps
    workdir = str(tmp_path_factory.mktemp("resumed_mlm_run"))
    config.num_train_steps = steps // 2
    train.train(config, workdir, ONE_DEVICE)
    config.num_train_steps = steps
    train.train(config, workdir, ONE_DEVICE)
    return config, workdir


def held_out_masked_loss(config, params):
    """Mean masked-token loss over the validation split, masked with the fixed evaluation key."""
    loss = jax.jit(objectives.loss_fn(config, partial(model.apply, config.model)))
    total = count = 0.0
    for batch in input_pipeline.eval_batches(config, records.read_metadata(config.data.dir)):
        s, n, _ = loss(params, batch, masking.eval_key())
        total, count = total + float(s), count + float(n)
    return total / count


def test_a_tiny_masked_lm_learns_to_fill_in_masked_tokens(tiny_mlm_run, restore, scalars):
    config = trained.load_config(tiny_mlm_run)
    initial = train_state.setup(config, ONE_DEVICE).init(config)
    final, _ = restore(config, tiny_mlm_run, with_data=False)
    before, after = held_out_masked_loss(config, initial.params), held_out_masked_loss(config, final.params)
    print(f"held-out masked-token loss: {before:.3f} at init -> {after:.3f} after {config.num_train_steps} steps")
    assert before == pytest.approx(np.log(config.model.vocab_size), abs=0.1)
    assert after < before - 1.0
    logged_loss = scalars(tiny_mlm_run)["eval/loss"][config.num_train_steps]
    assert logged_loss == pytest.approx(after, rel=1e-4)  # the loop's validation uses the same objective and key


def test_a_masked_lm_run_resumes_bitwise(tiny_mlm_run, resumed_mlm_run, restore):
    config, resumed_dir = resumed_mlm_run
    straight, _ = restore(config, tiny_mlm_run, with_data=False)
    resumed, _ = restore(config, resumed_dir, with_data=False)
    assert int(straight.step) == int(resumed.step) == config.num_train_steps
    for a, b in zip(jax.tree.leaves(straight), jax.tree.leaves(resumed)):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
