"""Held-out bits per byte, the evaluate CLI, and task scores during training."""

import math
import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from tensorboard.backend.event_processing import event_accumulator
from tensorboard.util import tensor_util

from configs import tiny
from data_prep import tokenizer as tokenizer_lib
from pretrain_common import records
from pretrain_jax import evaluate, input_pipeline, objectives, trained


@pytest.fixture(scope="module")
def sp(tiny_dataset):
    return tokenizer_lib.load_tokenizer(os.path.join(tiny_dataset, "tokenizer.model"))


def test_token_bytes_reads_pieces_as_utf8_text(sp):
    """Text pieces count their UTF-8 bytes ("▁" a space), byte-fallback pieces 1, control tokens and unk 0."""
    table = evaluate.token_bytes(sp, 600)
    assert table.shape == (600,) and table[sp.eos_id()] == 0 and table[sp.bos_id()] == 0 and table[sp.unk_id()] == 0
    assert table[sp.piece_to_id("<0xE2>")] == 1
    word = next(i for i in range(sp.vocab_size())
                if sp.id_to_piece(i).startswith("\u2581") and len(sp.id_to_piece(i)) == 3 and sp.id_to_piece(i)[1:].isalpha())
    assert table[word] == 3  # "▁" (3 bytes in UTF-8) is read as a space, 1 byte; then 2 ASCII letters
    assert np.all(table[sp.vocab_size():] == 0)
    with pytest.raises(ValueError, match="more than vocab_size"):
        evaluate.token_bytes(sp, 100)


def test_bits_per_byte_by_hand(sp):
    """Uniform logits over 512 tokens cost log2(512) = 9 bits per target; the bytes are counted by hand.

    Row: "x = 1\\n€" <eos> "€" <eos> <pad>. The first token of each document (the dummy-prefix "▁")
    is no target; "€" has no piece in this vocabulary, so it is spelled as its 3 UTF-8 bytes.
    """
    first, second = sp.encode("x = 1\n€"), sp.encode("€")
    assert [sp.id_to_piece(i) for i in first] == ["\u2581", "x", "\u2581=", "\u2581", "1", "<0x0A>", "<0xE2>",
                                                   "<0x82>", "<0xAC>"]
    assert [sp.id_to_piece(i) for i in second] == ["\u2581", "<0xE2>", "<0x82>", "<0xAC>"]
    row = first + [sp.eos_id()] + second + [sp.eos_id()]
    tokens = np.array([row + [records.PAD]])
    batch = input_pipeline.segments_and_positions(tokens, sp.eos_id())
    # targets: "x", " =", " ", "1", "\n", 3 bytes of "€" (9 bytes), eos (0); then 3 bytes of "€", eos (0)
    expected_bytes = 9 + 3
    targets = len(first) + len(second)  # every token but each document's first, plus each eos
    table = jnp.asarray(evaluate.token_bytes(sp, 512))
    assert float(evaluate.target_bytes(table, batch["tokens"], batch["segment_ids"])) == expected_bytes
    t, w = objectives.causal_lm_targets(batch["tokens"], batch["segment_ids"])
    nats = float(objectives.cross_entropy_sum(jnp.zeros((1, tokens.shape[1], 512)), t, w))
    assert float(w.sum()) == targets
    assert evaluate.bits_per_byte(nats, expected_bytes) == pytest.approx(targets * 9 / 12, rel=1e-6)


def test_eval_reports_bits_per_byte_and_tasks_during_training(tiny_dataset, stdlib_tasks, tmp_path):
    """Every validation pass writes eval/bits_per_byte and each task's metrics to TensorBoard."""
    from pretrain_jax import train

    config = tiny.get_config()
    config.data.dir = tiny_dataset
    config.num_train_steps, config.eval_every = 4, 2
    config.eval_tasks = (stdlib_tasks["multiple_choice"], stdlib_tasks["cloze"])
    config.eval_num_fewshot = 1
    train.train(config, str(tmp_path), None)  # 8 devices: tasks scored on the training mesh

    events = event_accumulator.EventAccumulator(str(tmp_path / "tensorboard"), size_guidance={"tensors": 0})
    events.Reload()
    last = {}
    for tag in ("eval/loss", "eval/bits_per_byte", "eval/stdlib_multiple_choice/acc",
                "eval/stdlib_multiple_choice/acc_norm", "eval/stdlib_cloze/acc", "eval/stdlib_cloze/token_perplexity"):
        assert [e.step for e in events.Tensors(tag)] == [2, 4], tag
        last[tag] = float(tensor_util.make_ndarray(events.Tensors(tag)[-1].tensor_proto))
    assert 0 <= last["eval/stdlib_multiple_choice/acc"] <= 1 and last["eval/stdlib_cloze/token_perplexity"] > 1
    # bits per byte = loss / ln 2 * tokens / bytes, and a BPE token spells more than one byte on average
    assert 0 < last["eval/bits_per_byte"] < last["eval/loss"] / math.log(2)


def test_evaluate_cli_prints_heldout_and_task_tables(tiny_run, stdlib_tasks):
    env = {**os.environ, "JAX_PLATFORMS": "cpu", "XLA_FLAGS": ""}
    out = subprocess.run([sys.executable, "-m", "pretrain_jax.evaluate", f"--workdir={tiny_run}",
                          f"--task={stdlib_tasks['multiple_choice']}", "--num_fewshot=2"],
                         capture_output=True, text=True, env=env, check=True).stdout
    print(out)
    assert "validation split" in out and "bits_per_byte" in out
    assert "2-shot" in out and "stdlib_multiple_choice" in out and "acc_norm" in out


def test_validation_in_microbatches_sums_to_the_whole_batch(tiny_run):
    """A run that needs microbatches to fit in training gets them in validation too, with the same result."""
    run = trained.load(tiny_run)
    mesh = jax.tree.leaves(run.params)[0].sharding.mesh
    shardings = jax.tree.map(lambda x: x.sharding, run.params)
    table = evaluate.token_bytes(run.tokenizer, run.config.model.vocab_size)
    batch = next(input_pipeline.eval_batches(run.config, records.read_metadata(run.config.data.dir)))
    results = []
    for count in (1, 4):
        run.config.microbatches = count
        step = evaluate.make_eval_step(run.config, mesh, shardings, table)
        with jax.set_mesh(mesh):
            results.append([float(x) for x in step(run.params, input_pipeline.global_batch(batch, mesh))])
    whole, in_parts = results
    assert in_parts == pytest.approx(whole, rel=1e-5)
    assert whole[1] > 0
