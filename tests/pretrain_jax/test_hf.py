"""Hugging Face interop (Llama, and Qwen3 for QK-norm): the same logits both ways, the same greedy text, the same
token ids, parameters unchanged by a round trip; imports train on."""

import email.message
import inspect
import json
import os

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

from configs import tiny
from data_prep import tokenizer as tokenizer_lib
from pretrain_common import records
from pretrain_jax import cli, generate, hf, model, trained

MAX_LOGIT_DIFF = 1e-4  # float32, max abs
# Small shapes: GQA (8 query heads on 4 key/value heads), both head kinds, both layer layouts; QK-norm is Qwen3.
SHAPES = {
    "untied_scanned": dict(tie_embeddings=False, scan_layers=True, num_layers=3),
    "tied_unrolled": dict(tie_embeddings=True, scan_layers=False, num_layers=2),
    "qk_norm_tied_scanned": dict(qk_norm=True, tie_embeddings=True, scan_layers=True, num_layers=2),
    # Llama 3.1's long-context RoPE, over an original context short enough that 48 positions show it
    "rope_scaled": dict(num_layers=2, rope_scaling=dict(factor=8.0, low_freq_factor=1.0, high_freq_factor=4.0,
                                                         original_max_position=64)),
}


@pytest.fixture(autouse=True)
def offline(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    torch.manual_seed(0)


@pytest.fixture(scope="module")
def tokenizer_path(tiny_dataset):
    return os.path.join(tiny_dataset, records.read_metadata(tiny_dataset).tokenizer)


@pytest.fixture(scope="module")
def text_tokens(tokenizer_path):
    """[2, 48] ids of real text (the email package's source)."""
    sp = tokenizer_lib.load_tokenizer(tokenizer_path)
    ids = sp.encode([inspect.getsource(email.message.Message.get_payload), inspect.getsource(email.message)])
    return np.array([row[:48] for row in ids], np.int32)


def small_config(**overrides):
    cfg = tiny.get_config().model
    cfg.update(init_std=0.1, **overrides)  # larger weights than training's init: differences would show
    return cfg


def our_logits(cfg, params, tokens):
    positions = np.broadcast_to(np.arange(tokens.shape[1]), tokens.shape)
    forward = jax.jit(lambda p: model.apply(cfg, p, jnp.asarray(tokens), jnp.ones_like(tokens), positions))
    return np.asarray(forward(params))


def hf_logits(hf_model, tokens):
    with torch.no_grad():
        return hf_model(torch.from_numpy(tokens.astype(np.int64))).logits.numpy()


def load_hf(path):
    return AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32, attn_implementation="eager").eval()


def noisy_params(cfg):
    """Initialized parameters plus noise: norm scales moved away from 1, so a swapped norm would show."""
    params = jax.jit(lambda rng: nn.unbox(model.init_params(cfg, rng)))(jax.random.key(1))
    noise = np.random.default_rng(2)
    return jax.tree.map(lambda x: jnp.asarray(np.asarray(x) + 0.1 * noise.standard_normal(x.shape, np.float32)),
                        params)


@pytest.mark.parametrize("shape", SHAPES)
def test_exported_model_gives_transformers_the_same_logits(shape, tokenizer_path, text_tokens, tmp_path):
    cfg = small_config(**SHAPES[shape])
    params = noisy_params(cfg)
    hf.save_pretrained(cfg, params, tokenizer_path, 64, str(tmp_path))
    hf_model = load_hf(str(tmp_path))
    assert type(hf_model).__name__ == ("Qwen3ForCausalLM" if cfg.qk_norm else "LlamaForCausalLM")
    diff = np.abs(our_logits(cfg, params, text_tokens) - hf_logits(hf_model, text_tokens)).max()
    print(f"export {shape}: max |logit difference| {diff:.2e}")
    assert diff <= MAX_LOGIT_DIFF

    # Greedy decoding, 32 tokens: our cached generate against transformers' generate (both stop at eos).
    prompts = [text_tokens[0, :5].tolist(), text_tokens[1, :17].tolist()]
    ours = generate.generate(cfg, params, prompts, 32)
    eos = hf_model.generation_config.eos_token_id
    for prompt, completion in zip(prompts, ours):
        mask = torch.ones(1, len(prompt), dtype=torch.long)
        with torch.no_grad():
            theirs = hf_model.generate(torch.tensor([prompt]), attention_mask=mask, do_sample=False,
                                       max_new_tokens=32)[0, len(prompt):].tolist()
        assert (theirs[:theirs.index(eos)] if eos in theirs else theirs) == completion
    assert len(set(ours[0])) > 3  # a random model, not a degenerate repetition


@pytest.mark.parametrize("shape", SHAPES)
def test_imported_transformers_model_gives_the_same_logits(shape, text_tokens, tmp_path):
    cfg = small_config(**SHAPES[shape])
    # A random transformers model of the family (LlamaForCausalLM, or Qwen3ForCausalLM with qk_norm)
    hf_model = AutoModelForCausalLM.from_config(AutoConfig.for_model(**hf.hf_config(cfg, 64), initializer_range=0.1))
    hf_model.eval()
    with torch.no_grad():
        for name, weight in hf_model.named_parameters():
            if "norm" in name:
                weight.add_(0.1 * torch.randn_like(weight))
    # Sharded on purpose for one shape: the index file is read too.
    hf_model.save_pretrained(str(tmp_path), max_shard_size="100KB" if shape == "tied_unrolled" else "1GB")
    assert os.path.exists(tmp_path / hf.INDEX_FILE) == (shape == "tied_unrolled")
    config, tensors = hf.read_checkpoint(str(tmp_path))
    imported = small_config(**hf.model_section(config))
    assert imported.qk_norm == cfg.qk_norm
    imported.scan_layers = cfg.scan_layers
    params = hf.from_hf_tensors(imported, tensors)
    diff = np.abs(our_logits(imported, params, text_tokens) - hf_logits(hf_model, text_tokens)).max()
    print(f"import {shape}: max |logit difference| {diff:.2e}")
    assert diff <= MAX_LOGIT_DIFF


@pytest.mark.parametrize("overrides", [SHAPES["qk_norm_tied_scanned"],
                                       dict(qk_norm=True, tie_embeddings=False, scan_layers=False, num_layers=2)])
def test_export_then_import_gives_back_the_same_parameters_and_shape(overrides, tokenizer_path, tmp_path):
    """QK-norm models, both layouts (a Llama export's round trip: test_import_writes_a_workdir_...)."""
    cfg = small_config(**overrides)
    params = noisy_params(cfg)
    hf.save_pretrained(cfg, params, tokenizer_path, 64, str(tmp_path))
    config, tensors = hf.read_checkpoint(str(tmp_path))
    section = hf.model_section(config)
    assert section == {**{key: cfg.to_dict()[key] for key in section}, "head_dim": model.head_dim(cfg)}
    back = hf.from_hf_tensors(cfg, tensors)
    assert jax.tree.structure(back) == jax.tree.structure(params)
    jax.tree.map(np.testing.assert_array_equal, back, params)


@pytest.fixture(scope="module")
def exported(tiny_run, tmp_path_factory):
    output = str(tmp_path_factory.mktemp("hf_export"))
    cli.main(["hf", "export", "--workdir", tiny_run, "--output", output])
    return output


def test_export_holds_what_transformers_needs(exported, tiny_run):
    config = json.load(open(os.path.join(exported, "config.json")))
    run_config = trained.load_config(tiny_run)
    assert config["max_position_embeddings"] == run_config.seq_len
    assert (config["num_attention_heads"], config["num_key_value_heads"]) == (8, 4)
    assert {"model.safetensors", "generation_config.json", "tokenizer.json", "tokenizer.model"} <= set(
        os.listdir(exported))


def test_exported_tokenizer_encodes_like_sentencepiece(exported, tiny_run):
    sp = trained.load(tiny_run).tokenizer
    hf_tokenizer = AutoTokenizer.from_pretrained(exported)
    folder = os.path.dirname(email.message.__file__)
    texts = [open(os.path.join(folder, name), encoding="utf-8").read() for name in sorted(os.listdir(folder))
             if name.endswith(".py")][:8]
    texts.append("  leading spaces, tabs\t\tand unicode: naïve café 東京 🙂\n\n")
    for text in texts:
        ids = hf_tokenizer.encode(text)
        assert ids == sp.encode(text)
        assert hf_tokenizer.decode(ids) == text


def test_import_writes_a_workdir_that_training_continues(exported, tiny_run, tiny_dataset, tmp_path):
    from pretrain_jax import train

    workdir = str(tmp_path / "continued")
    cli.main(["hf", "import", "--hf_dir", exported, "--workdir", workdir, "--config=configs/tiny.py",
              f"--config.data.dir={tiny_dataset}", "--config.num_train_steps=2"])
    imported, original = trained.load(workdir), trained.load(tiny_run)
    assert imported.step == 0
    jax.tree.map(np.testing.assert_array_equal, imported.params, original.params)
    config = trained.load_config(workdir)
    scalars = train.train(config, workdir, jax.devices()[:1])
    assert np.isfinite(scalars["train/loss"])
    assert trained.load(workdir).step == 2


def test_checkpoints_with_unsupported_features_are_refused():
    config = hf.hf_config(small_config(), 64)
    with pytest.raises(ValueError, match="rope scaling linear"):
        hf.model_section({**config, "rope_parameters": {"rope_type": "linear", "rope_theta": 5e5, "factor": 8.0}})
    with pytest.raises(ValueError, match="attention_bias"):
        hf.model_section({**config, "attention_bias": True})
    with pytest.raises(ValueError, match="model_type=mistral"):
        hf.model_section({**config, "model_type": "mistral"})


@pytest.mark.parametrize("overrides, message", [
    (dict(use_sliding_window=True, sliding_window=16, max_window_layers=1,
          layer_types=["full_attention", "sliding_attention"]), "sliding window attention"),
    (dict(use_sliding_window=True, sliding_window=16), "sliding window attention"),  # layer_types left out
    (dict(attention_bias=True), "attention_bias"),
    (dict(rope_parameters={"rope_type": "yarn", "rope_theta": 1e6, "factor": 4.0}), "rope scaling"),
])
def test_qwen3_checkpoints_with_unsupported_features_are_refused(overrides, message):
    config = hf.hf_config(small_config(qk_norm=True), 64)
    with pytest.raises(ValueError, match=f"not a plain Llama or Qwen3 checkpoint: .*{message}"):
        hf.model_section({**config, **overrides})


def test_a_qwen3_config_without_head_dim_means_qwen3s_default():
    """Qwen3Config's head_dim defaults to 128, not hidden_size // heads as Llama's does."""
    config = {k: v for k, v in hf.hf_config(small_config(qk_norm=True), 64).items() if k != "head_dim"}
    assert hf.model_section(config)["head_dim"] == 128
    assert hf.model_section({**config, "model_type": "llama"})["head_dim"] == 64 // 8


def test_a_bidirectional_model_is_not_exported_as_a_causal_llama():
    with pytest.raises(ValueError, match="bidirectional"):
        hf.hf_config(small_config(causal=False), 64)
