"""Generation: the key/value cache changes nothing, sampling filters do what they say, eos stops a row."""

import inspect
import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from pretrain_jax import cli, generate, model, trained
from pretrain_jax.generate import Sampling

# Real text of different lengths (the json package is in the tiny model's training data).
PROMPTS = [inspect.getsource(json.dumps)[:120], "import ", inspect.getsource(json.loads)[:40]]
NEW_TOKENS = 12


@pytest.fixture(scope="module")
def run(tiny_run):
    return trained.load(tiny_run)


def unstacked(params, num_layers):
    """Scanned parameters ("layers" stacked on axis 0) as the per-layer tree of scan_layers=False."""
    layers = params["layers"]
    rest = {k: v for k, v in params.items() if k != "layers"}
    return {**rest, **{f"layers_{i}": jax.tree.map(lambda x, i=i: x[i], layers) for i in range(num_layers)}}


def greedy_by_recompute(cfg, params, prompts, new_tokens):
    """Greedy decoding without a cache: the training forward pass over the whole sequence at every step."""
    tokens, pad = generate.left_pad(prompts)
    batch, prompt_len = tokens.shape
    total = prompt_len + new_tokens
    seq = np.zeros((batch, total), np.int32)
    seq[:, :prompt_len] = tokens
    slots = np.arange(total)[None, :]
    positions = np.maximum(slots - pad[:, None], 0)
    forward = jax.jit(lambda p, t, s: model.apply(cfg, p, t, s, positions))
    for i in range(new_tokens):
        end = prompt_len + i
        segments = ((slots >= pad[:, None]) & (slots < end)).astype(np.int32)  # 0: padding, left and right
        logits = forward(params, seq, segments)
        seq[:, end] = np.asarray(jnp.argmax(logits[:, end - 1], axis=-1))
    return [row[prompt_len:].tolist() for row in seq]


@pytest.mark.parametrize("scan_layers", [True, False])
def test_cached_greedy_equals_full_recompute(run, scan_layers):
    """The cache, left padding and per-row positions reproduce the plain forward pass token for token."""
    cfg = run.config.model.copy_and_resolve_references()
    cfg.scan_layers = scan_layers
    params = run.params if scan_layers else unstacked(run.params, cfg.num_layers)
    prompts = run.tokenizer.encode(PROMPTS)
    assert len({len(p) for p in prompts}) == len(prompts)  # the rows really are padded differently
    expected = greedy_by_recompute(cfg, params, prompts, NEW_TOKENS)
    assert generate.generate(cfg, params, prompts, NEW_TOKENS, eos_id=-1) == expected


def test_top_k_one_sampling_is_greedy(run):
    prompts = run.tokenizer.encode(PROMPTS)
    greedy = generate.generate(run.config.model, run.params, prompts, NEW_TOKENS)
    sampled = generate.generate(run.config.model, run.params, prompts, NEW_TOKENS,
                                Sampling(temperature=1.0, top_k=1), seed=3)
    assert sampled == greedy


def test_sampling_depends_on_the_seed(run):
    prompts = run.tokenizer.encode(PROMPTS)
    hot = Sampling(temperature=2.0)
    assert (generate.generate(run.config.model, run.params, prompts, NEW_TOKENS, hot, seed=0)
            != generate.generate(run.config.model, run.params, prompts, NEW_TOKENS, hot, seed=1))


def test_eos_stops_each_row_at_its_first_eos(run):
    prompts = run.tokenizer.encode(PROMPTS)
    free = generate.generate(run.config.model, run.params, prompts, NEW_TOKENS, eos_id=-1)
    stop = free[0][2]  # a token row 0 produces third: taken as eos
    stopped = generate.generate(run.config.model, run.params, prompts, NEW_TOKENS, eos_id=stop)
    for row, out in zip(free, stopped):
        assert out == (row[:row.index(stop)] if stop in row else row)
    assert generate.generate(run.config.model, run.params, prompts[:1], NEW_TOKENS, eos_id=free[0][0]) == [[]]


def test_top_k_filter_keeps_the_k_largest():
    logits = jnp.array([[1.0, 5.0, 3.0, 4.0], [0.0, -1.0, 2.0, 2.0]])
    filtered = generate.top_k_filter(logits, 2)
    np.testing.assert_array_equal(np.isfinite(filtered), [[False, True, False, True], [False, False, True, True]])
    np.testing.assert_array_equal(filtered[0, 1], 5.0)  # kept logits are unchanged
    np.testing.assert_array_equal(generate.top_k_filter(logits, 0), logits)


def test_top_p_filter_keeps_the_smallest_set_reaching_p():
    probs = jnp.array([[0.5, 0.05, 0.3, 0.15]])
    logits = jnp.log(probs)
    kept = lambda p: np.isfinite(generate.top_p_filter(logits, p))[0].tolist()  # noqa: E731
    assert kept(0.5) == [True, False, False, False]  # the top token alone reaches 0.5
    assert kept(0.6) == [True, False, True, False]
    assert kept(0.85) == [True, False, True, True]  # 0.8 < 0.85: the third is needed too
    assert kept(0.01) == [True, False, False, False]  # the most likely token is always kept
    assert kept(1.0) == [True] * 4


def test_bad_arguments_are_refused():
    with pytest.raises(ValueError, match="top_p"):
        Sampling(temperature=1.0, top_p=0.0)
    with pytest.raises(ValueError, match="temperature"):
        Sampling(temperature=-1.0)
    with pytest.raises(ValueError, match="at least one token"):
        generate.left_pad([[1, 2], []])


def test_cli_prints_each_completion(tiny_run, capsys):
    cli.main(["generate", "--workdir", tiny_run, "--prompt", "import ", "--prompt", "def ", "--max_new_tokens", "5"])
    out = capsys.readouterr().out
    assert "=== 'import '" in out and "=== 'def '" in out


def test_training_writes_samples_to_tensorboard(tiny_config, tmp_path):
    from pretrain_jax import train

    tiny_config.num_train_steps = 2
    tiny_config.generate.update(sample_every=2, prompts=("import ", "def "), max_new_tokens=4)
    train.train(tiny_config, str(tmp_path), jax.devices()[:1])
    events = EventAccumulator(str(tmp_path / "tensorboard"))
    events.Reload()
    texts = {tag: events.Tensors(tag) for tag in events.Tags()["tensors"] if tag.startswith("samples/")}
    assert sorted(texts) == ["samples/0", "samples/1"]
    assert texts["samples/0"][0].step == 2
    assert texts["samples/0"][0].tensor_proto.string_val[0].decode().startswith("```\nimport ")


def test_a_completion_keeps_the_space_its_first_piece_begins_with(run):
    sp = run.tokenizer
    prompt, new = sp.encode("x ="), sp.encode("x = 1")[len(sp.encode("x =")):]
    assert sp.id_to_piece(new[0]).startswith("▁")
    assert generate.decode_continuation(sp, prompt, new) == " 1"
