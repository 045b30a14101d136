"""Few-shot task scoring: task files, prompts, tokenization and batched log-likelihoods."""

import json

import jax
import numpy as np
import pytest

from pretrain_jax import fewshot, model, sharding, trained


@pytest.fixture(scope="module")
def run(tiny_run):
    return trained.load(tiny_run)


def _write(path, items):
    path.write_text("".join(json.dumps(x) + "\n" for x in items))
    return str(path)


@pytest.mark.parametrize("items, message", [
    ([{"context": "a", "choices": ["b", "c"], "label": 2}], "integer 'label'"),
    ([{"context": "a", "choices": ["b"], "label": 0}], ">= 2 non-empty"),
    ([{"context": "a"}], "'continuation'"),
    ([{"choices": ["b", "c"], "label": 0}], "string 'context'"),
    ([{"context": "a", "continuation": "b"}, {"context": "a", "choices": ["b", "c"], "label": 0}], "mixes"),
    ([], "no items"),
])
def test_bad_task_files_fail_with_the_reason(tmp_path, items, message):
    with pytest.raises(ValueError, match=message):
        fewshot.load_task(_write(tmp_path / "t.jsonl", items))


def test_prompt_draws_solved_examples_deterministically_never_the_item(stdlib_tasks):
    items = fewshot.load_task(stdlib_tasks["multiple_choice"])
    text = fewshot.prompt(items, 5, 3)
    assert text == fewshot.prompt(items, 5, 3) and text != fewshot.prompt(items, 5, 3, seed=1)
    *shots, query = text.split("\n\n")
    assert query == items[5]["context"] and len(shots) == 3
    solved = {x["context"] + fewshot.answer(x) for i, x in enumerate(items) if i != 5}
    assert set(shots) <= solved
    assert fewshot.prompt(items, 5, 0) == items[5]["context"]
    other = [{"context": "Q", "continuation": " A"}]
    assert fewshot.prompt(items, 5, 1, other) == "Q A\n\n" + items[5]["context"]
    with pytest.raises(ValueError, match="only 1 items"):
        fewshot.prompt(items, 5, 2, other)


def test_encode_pair_splits_one_encoding_of_the_whole_text(run):
    sp = run.tokenizer
    context, continuation = fewshot.encode_pair(sp, "def wrap(text, width=70):\n    return ", "lines")
    assert context + continuation == sp.encode("def wrap(text, width=70):\n    return lines")
    assert sp.decode(continuation).endswith("lines") and context == sp.encode("def wrap(text, width=70):\n    return")


def test_rolling_pairs_score_every_token_but_the_first_once():
    ids = list(range(100, 150))
    pairs = fewshot.rolling_pairs(ids, 16)
    assert [t for _, cont in pairs for t in cont] == ids[1:]
    assert all(len(ctx) + len(cont) <= 16 and ctx for ctx, cont in pairs)
    assert all(ctx + cont == ids[ids.index(ctx[0]):ids.index(cont[-1]) + 1] for ctx, cont in pairs)


def _log_probs(run, ids):
    """log p(ids[t + 1] | ids[:t + 1]) and whether it is the argmax, for every t, from one unpadded forward pass."""
    tokens = np.array([ids])
    logits = model.apply(run.config.model, run.params, tokens, np.ones_like(tokens), np.arange(len(ids))[None])
    logp = jax.nn.log_softmax(logits[0, :-1].astype(np.float32))
    return logp[np.arange(len(ids) - 1), ids[1:]], np.argmax(logp, -1) == np.array(ids[1:])


def test_batched_padded_scores_equal_unpadded_forward_passes(run):
    """Several buckets, a partial batch and a pair cut from the left to max_length."""
    ids = run.tokenizer.encode(open(fewshot.__file__, encoding="utf-8").read())
    pairs = [(ids[:5], ids[5:8]), (ids[:30], ids[30:31]), (ids[:40], ids[40:60]), (ids[:100], ids[100:110])]
    scorer = fewshot.Scorer(run.config.model, max_length=64, batch_rows=2)
    scores = scorer.score_ids(run.params, pairs)
    prefix, prefix_greedy = _log_probs(run, ids[:60])  # causal: the pairs within 64 tokens are its prefixes
    cut, cut_greedy = _log_probs(run, ids[46:110])  # the last pair keeps its last 64 tokens
    expected = [(prefix[a - 1:b - 1], prefix_greedy[a - 1:b - 1]) for a, b in ((5, 8), (30, 31), (40, 60))]
    expected.append((cut[53:], cut_greedy[53:]))
    for (logprob, greedy, count), (want, want_greedy) in zip(scores, expected):
        assert logprob == pytest.approx(float(want.sum()), rel=1e-4, abs=1e-4)
        assert greedy == bool(want_greedy.all()) and count == len(want)


def test_task_metrics_follow_from_the_scores(run, stdlib_tasks):
    """acc: argmax of log-likelihood; acc_norm: of log-likelihood per character; cloze acc: greedy match."""
    scorer = fewshot.Scorer(run.config.model, run.config.seq_len)
    items = fewshot.load_task(stdlib_tasks["multiple_choice"])
    result = fewshot.score_task(scorer, run.params, run.tokenizer, items, num_fewshot=1)
    acc, acc_norm = [], []
    for i, x in enumerate(items):
        context = fewshot.prompt(items, i, 1)
        logprob = np.array([s[0] for s in scorer.score_text(run.params, run.tokenizer,
                                                            [(context, c) for c in x["choices"]])])
        acc.append(np.argmax(logprob) == x["label"])
        acc_norm.append(np.argmax(logprob / [len(c) for c in x["choices"]]) == x["label"])
    assert result == {"acc": np.mean(acc), "acc_norm": np.mean(acc_norm), "items": len(items)}

    cloze = fewshot.load_task(stdlib_tasks["cloze"])
    result = fewshot.score_task(scorer, run.params, run.tokenizer, cloze)
    scores = scorer.score_text(run.params, run.tokenizer, [(x["context"], x["continuation"]) for x in cloze])
    assert result["acc"] == np.mean([s[1] for s in scores])
    assert result["token_perplexity"] == pytest.approx(np.exp(-sum(s[0] for s in scores) / sum(s[2] for s in scores)))
    assert result["token_perplexity"] > 1


def test_scores_on_a_training_mesh_equal_one_device(run, tiny_run):
    """Rows split over data x fsdp, parameters sharded as in training: the same numbers as on one device."""
    config = run.config.copy_and_resolve_references()
    config.mesh.update(data=4, fsdp=2)
    mesh = sharding.make_mesh(config.mesh, jax.devices())
    params = trained.restore_state(config, tiny_run, mesh).params
    ids = run.tokenizer.encode("def fill(text, width=70, **kwargs):\n    return '\\n'.join(wrap(text, width))")
    pairs = [(ids[:a], ids[a:a + 5]) for a in (3, 10, 20, 30, 35)]
    on_mesh = fewshot.Scorer(config.model, 64, 3, mesh, jax.tree.map(lambda x: x.sharding, params))
    assert on_mesh.batch_rows == 8  # rounded up to the 8 data-parallel devices
    for (lp, greedy, n), (want_lp, want_greedy, want_n) in zip(
            on_mesh.score_ids(params, pairs), fewshot.Scorer(config.model, 64, 3).score_ids(run.params, pairs)):
        assert lp == pytest.approx(want_lp, rel=1e-5, abs=1e-5) and (greedy, n) == (want_greedy, want_n)


def test_a_bidirectional_model_cannot_score_continuations(run):
    bidirectional = run.config.model.copy_and_resolve_references()
    bidirectional.causal = False
    with pytest.raises(ValueError, match="needs a causal model"):
        fewshot.Scorer(bidirectional, max_length=32)


def test_a_line_that_is_not_json_names_the_file_and_line(tmp_path):
    path = tmp_path / "task.jsonl"
    path.write_text('{"context": "a", "continuation": "b"}\n{"context": "a",\n')
    with pytest.raises(ValueError, match=r"task.jsonl:2: not a JSON object"):
        fewshot.load_task(str(path))
