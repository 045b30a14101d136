"""Hugging Face interop: a workdir as a transformers Llama (or Qwen3) checkpoint, and back
(`pretrain-jax hf export|import`: pretrain_jax/cli/hf.py).

Export writes config.json, model.safetensors (float32), generation_config.json, the
tokenizer (tokenizer.json and tokenizer_config.json built from tokenizer.model, which
is copied too), so `AutoModelForCausalLM.from_pretrained(dir)` and
`AutoTokenizer.from_pretrained(dir)` load it offline. No bos is added by the tokenizer:
training documents start without one. A model with model.qk_norm is exported as Qwen3,
which is Llama plus an RMSNorm on each head's queries and keys before RoPE (q_norm and
k_norm in transformers' models/qwen3/modeling_qwen3.py); any other as Llama.

Import reads a Llama or Qwen3 checkpoint (config.json, one model.safetensors or a sharded
index) into this project's parameters and writes a workdir that train.py resumes
from: step 0, fresh optimizer state, the model section of --config replaced by the
checkpoint's shape. The dataset (--config.data.dir) must be tokenized with the
checkpoint's tokenizer; a tokenizer.model beside the checkpoint is checked against it.

Both sides use the same RoPE layout (halves rotated, see layers.rotary_embedding), so
q/k weights convert by reshape and transpose only.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import sys
import tempfile
from collections.abc import Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import safetensors.flax
import safetensors.numpy
from flax import traverse_util

from pretrain_common import records
from pretrain_common import tokenizer as tokenizer_lib
from pretrain_jax import checkpointing, input_pipeline, model, train_data, train_state, trained
from pretrain_jax import schema as base

WEIGHTS_FILE = "model.safetensors"
INDEX_FILE = "model.safetensors.index.json"

# Our path in one layer's parameters -> (HF name in layer i, input axes of our array). A matrix goes
# to torch's Linear layout [out, in] by flattening its input axes and its output axes and transposing.
LAYER_WEIGHTS = {
    ("attention", "wq"): ("self_attn.q_proj.weight", 1),  # [dim, heads, head_dim]
    ("attention", "wk"): ("self_attn.k_proj.weight", 1),  # [dim, kv_heads, head_dim]
    ("attention", "wv"): ("self_attn.v_proj.weight", 1),
    ("attention", "wo"): ("self_attn.o_proj.weight", 2),  # [heads, head_dim, dim]
    ("mlp", "w_gate"): ("mlp.gate_proj.weight", 1),  # [dim, mlp_dim]
    ("mlp", "w_up"): ("mlp.up_proj.weight", 1),
    ("mlp", "w_down"): ("mlp.down_proj.weight", 1),  # [mlp_dim, dim]
    ("attention_norm", "scale"): ("input_layernorm.weight", 0),  # vectors: as they are
    ("mlp_norm", "scale"): ("post_attention_layernorm.weight", 0),
}
# With model.qk_norm (Qwen3): the per-head query and key norm scales, [head_dim] on both sides.
QK_NORM_WEIGHTS = {
    ("attention", "q_norm", "scale"): ("self_attn.q_norm.weight", 0),
    ("attention", "k_norm", "scale"): ("self_attn.k_norm.weight", 0),
}
TOP_WEIGHTS = {
    ("embedding",): ("model.embed_tokens.weight", 0),  # [vocab, dim] on both sides
    ("final_norm", "scale"): ("model.norm.weight", 0),
    ("head",): ("lm_head.weight", 1),  # [dim, vocab]; absent when tied
}


def _to_torch_layout(x: np.ndarray, in_axes: int) -> np.ndarray:
    if in_axes == 0:
        return x
    return x.reshape(math.prod(x.shape[:in_axes]), -1).T


def _from_torch_layout(x: np.ndarray, in_axes: int, shape: tuple[int, ...]) -> np.ndarray:
    return x if in_axes == 0 else x.T.reshape(shape)


def _layer_weights(cfg: ml_collections.ConfigDict) -> dict[tuple[str, ...], tuple[str, int]]:
    return {**LAYER_WEIGHTS, **QK_NORM_WEIGHTS} if cfg.qk_norm else LAYER_WEIGHTS


def _layers(cfg: ml_collections.ConfigDict, flat: dict) -> list[dict]:
    """Per-layer {path: array} from flattened params, scanned (stacked on axis 0) or not."""
    if cfg.scan_layers:
        return [{k[1:]: v[i] for k, v in flat.items() if k[0] == "layers"} for i in range(cfg.num_layers)]
    return [{k[1:]: v for k, v in flat.items() if k[0] == f"layers_{i}"} for i in range(cfg.num_layers)]


def to_hf_tensors(cfg: ml_collections.ConfigDict, params: Any) -> dict[str, np.ndarray]:
    """Our parameter tree -> HF Llama or Qwen3 state dict (torch layout, float32 numpy)."""
    flat = {k: np.asarray(v, np.float32) for k, v in traverse_util.flatten_dict(params).items()}
    tensors = {hf: _to_torch_layout(flat[ours], n) for ours, (hf, n) in TOP_WEIGHTS.items() if ours in flat}
    for i, layer in enumerate(_layers(cfg, flat)):
        for ours, (hf, n) in _layer_weights(cfg).items():
            tensors[f"model.layers.{i}.{hf}"] = _to_torch_layout(layer[ours], n)
    return {name: np.ascontiguousarray(x) for name, x in tensors.items()}


def from_hf_tensors(cfg: ml_collections.ConfigDict, tensors: dict[str, np.ndarray]) -> Any:
    """HF Llama or Qwen3 state dict -> our (unboxed) parameter tree for `cfg`; shapes are checked."""
    abstract = traverse_util.flatten_dict(jax.eval_shape(lambda: model.init_params(cfg, jax.random.key(0))))
    shapes = {k: v.value.shape for k, v in abstract.items()}

    def take(name: str, in_axes: int, shape: tuple[int, ...]) -> np.ndarray:
        if name not in tensors:
            raise KeyError(f"{name} missing from the checkpoint")
        x = _from_torch_layout(np.asarray(tensors[name], np.float32), in_axes, shape)
        if x.shape != shape:
            raise ValueError(f"{name}: shape {x.shape} after conversion, the model needs {shape}")
        return x

    flat = {ours: take(hf, n, shapes[ours]) for ours, (hf, n) in TOP_WEIGHTS.items() if ours in shapes}
    for ours, (hf, n) in _layer_weights(cfg).items():
        prefix = ("layers",) if cfg.scan_layers else None
        per_layer = [take(f"model.layers.{i}.{hf}", n, shapes[(prefix or (f"layers_{i}",)) + ours][cfg.scan_layers:])
                     for i in range(cfg.num_layers)]
        if cfg.scan_layers:
            flat[("layers",) + ours] = np.stack(per_layer)
        else:
            flat.update({(f"layers_{i}",) + ours: x for i, x in enumerate(per_layer)})
    dtype = jnp.dtype(cfg.param_dtype)
    return traverse_util.unflatten_dict({k: jnp.asarray(v, dtype) for k, v in flat.items()})


class Family(NamedTuple):
    """A transformers model family this project's decoder is exactly, for one value of model.qk_norm."""

    architecture: str
    qk_norm: bool
    only_fields: dict[str, Any]  # config fields only this family has, as export writes them
    default_head_dim: int | None  # its config's head_dim when config.json has none; None: dim // heads


# model_type -> family. Qwen3 is Llama plus per-head q_norm/k_norm (transformers' modeling_qwen3.py), its
# default head_dim 128 (configuration_qwen3.py).
FAMILIES = {
    "llama": Family("LlamaForCausalLM", False, {"mlp_bias": False}, None),
    "qwen3": Family("Qwen3ForCausalLM", True, {"use_sliding_window": False}, 128),
}


def _rope_parameters(cfg: ml_collections.ConfigDict) -> dict[str, Any]:
    """transformers' rope_parameters: the default rotation, or Llama 3.1's scaling ("llama3")."""
    scaling = cfg.rope_scaling
    if scaling.factor <= 1:
        return {"rope_type": "default", "rope_theta": cfg.rope_theta}
    return {"rope_type": "llama3", "rope_theta": cfg.rope_theta, "factor": scaling.factor,
            "low_freq_factor": scaling.low_freq_factor, "high_freq_factor": scaling.high_freq_factor,
            "original_max_position_embeddings": scaling.original_max_position}


def _rope_scaling(rope: dict[str, Any]) -> dict[str, Any]:
    """Our model.rope_scaling from transformers' rope_parameters (default or "llama3")."""
    if rope.get("rope_type", rope.get("type", "default")) != "llama3":
        return base.get_config().model.rope_scaling.to_dict()  # the schema's: factor 1, no scaling
    return {"factor": float(rope["factor"]), "low_freq_factor": float(rope["low_freq_factor"]),
            "high_freq_factor": float(rope["high_freq_factor"]),
            "original_max_position": int(rope["original_max_position_embeddings"])}


def hf_config(cfg: ml_collections.ConfigDict, seq_len: int) -> dict[str, Any]:
    """LlamaConfig, or with qk_norm Qwen3Config, fields (transformers 5: rope_parameters, dtype) for our model
    section."""
    if not cfg.causal:
        raise ValueError("an HF Llama or Qwen3 model is causal; this one is bidirectional (model.causal=False), "
                         "and transformers would run it with a mask it was not trained with")
    model_type, family = next((name, f) for name, f in FAMILIES.items() if f.qk_norm == cfg.qk_norm)
    return dict(
        architectures=[family.architecture], model_type=model_type, vocab_size=cfg.vocab_size, hidden_size=cfg.dim,
        intermediate_size=cfg.mlp_dim, num_hidden_layers=cfg.num_layers, num_attention_heads=cfg.num_heads,
        num_key_value_heads=cfg.num_kv_heads, head_dim=model.head_dim(cfg), hidden_act="silu",
        rms_norm_eps=cfg.norm_eps, rope_parameters=_rope_parameters(cfg),
        max_position_embeddings=seq_len, tie_word_embeddings=cfg.tie_embeddings, attention_bias=False,
        bos_token_id=tokenizer_lib.LLAMA_RECIPE["bos_id"], eos_token_id=tokenizer_lib.LLAMA_RECIPE["eos_id"],
        dtype="float32", **family.only_fields)


def model_section(hf: dict[str, Any]) -> dict[str, Any]:
    """Our `model` config values for a Llama or Qwen3 config dict; features we do not implement are refused."""
    rope = hf.get("rope_parameters") or hf.get("rope_scaling") or {}
    model_type = hf.get("model_type", "llama")
    layer_types = hf.get("layer_types") or []  # Qwen3: "sliding_attention" layers, else from use_sliding_window
    sliding = any(t != "full_attention" for t in layer_types) or (not layer_types and hf.get("use_sliding_window"))
    unsupported = {
        f"rope scaling {rope.get('rope_type', rope.get('type'))}": rope.get("rope_type", rope.get("type", "default"))
        not in ("default", "llama3"),
        "attention_bias": hf.get("attention_bias", False), "mlp_bias": hf.get("mlp_bias", False),
        "sliding window attention": sliding,
        f"hidden_act={hf.get('hidden_act')}": hf.get("hidden_act", "silu") != "silu",
        f"model_type={model_type}": model_type not in FAMILIES,
    }
    if any(unsupported.values()):
        raise ValueError(f"not a plain Llama or Qwen3 checkpoint: {[k for k, v in unsupported.items() if v]}")
    family, heads = FAMILIES[model_type], hf["num_attention_heads"]
    return dict(
        vocab_size=hf["vocab_size"], dim=hf["hidden_size"], num_layers=hf["num_hidden_layers"], num_heads=heads,
        num_kv_heads=hf.get("num_key_value_heads") or heads,
        head_dim=hf.get("head_dim") or family.default_head_dim or hf["hidden_size"] // heads,
        mlp_dim=hf["intermediate_size"],
        rope_theta=float(rope.get("rope_theta", hf.get("rope_theta", 10000.0))), norm_eps=hf["rms_norm_eps"],
        tie_embeddings=bool(hf.get("tie_word_embeddings", False)), qk_norm=family.qk_norm,
        rope_scaling=_rope_scaling(rope))


def save_pretrained(cfg: ml_collections.ConfigDict, params: Any, tokenizer_model: str, seq_len: int,
                    output: str) -> None:
    """Writes an HF Llama (Qwen3 with qk_norm) folder: config, weights, generation config and tokenizer files."""
    from transformers import GenerationConfig

    os.makedirs(output, exist_ok=True)
    config = hf_config(cfg, seq_len)
    with open(os.path.join(output, "config.json"), "w", encoding="utf-8") as f:
        json.dump(config, f, indent=2)
    safetensors.numpy.save_file(to_hf_tensors(cfg, params), os.path.join(output, WEIGHTS_FILE),
                                metadata={"format": "pt"})
    GenerationConfig(bos_token_id=config["bos_token_id"], eos_token_id=config["eos_token_id"],
                     pad_token_id=config["eos_token_id"]).save_pretrained(output)
    hf_tokenizer(tokenizer_model).save_pretrained(output)
    shutil.copyfile(tokenizer_model, os.path.join(output, trained.TOKENIZER_FILE))


def hf_tokenizer(tokenizer_model: str) -> Any:
    """Our SentencePiece model as a transformers fast tokenizer that encodes to the same ids.

    transformers' own conversion: TokenizersBackend reads the SentencePiece proto and follows its
    normalizer spec, dummy prefix and byte fallback as SentencePieceProcessor.encode does.
    LlamaTokenizer(vocab_file=...) does not (transformers 5 builds it with no vocabulary from the
    file and a Metaspace pre-tokenizer that skips the prefix when the text starts with a space).
    No bos is added; padding is on the left, for batched generation. Read from a folder of its
    own, so that no tokenizer.json of an earlier export is loaded instead.
    """
    from transformers import TokenizersBackend

    with tempfile.TemporaryDirectory() as folder:
        shutil.copyfile(tokenizer_model, os.path.join(folder, trained.TOKENIZER_FILE))
        return TokenizersBackend.from_pretrained(folder, padding_side="left")


def export(workdir: str, output: str, step: int | None = None, ema: bool = False) -> None:
    """A training run's checkpoint at `step` (default: the newest), or its EMA parameters, as an HF Llama
    (Qwen3 with qk_norm) folder."""
    run = trained.load(workdir, step=step, ema=ema)
    save_pretrained(run.config.model, run.params, os.path.join(workdir, trained.TOKENIZER_FILE),
                    run.config.seq_len, output)


def read_checkpoint(hf_dir: str) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """(config.json as a dict, every tensor) of an HF folder with one safetensors file or a sharded index."""
    with open(os.path.join(hf_dir, "config.json"), encoding="utf-8") as f:
        hf = json.load(f)
    index = os.path.join(hf_dir, INDEX_FILE)
    if os.path.exists(index):
        with open(index, encoding="utf-8") as f:
            files = sorted(set(json.load(f)["weight_map"].values()))
    elif os.path.exists(os.path.join(hf_dir, WEIGHTS_FILE)):
        files = [WEIGHTS_FILE]
    else:
        raise FileNotFoundError(f"neither {WEIGHTS_FILE} nor {INDEX_FILE} in {hf_dir} (pickled weights are not read)")
    tensors = {}
    for name in files:
        # The flax reader keeps bfloat16 (numpy has none); converted to float32 in from_hf_tensors.
        tensors.update(safetensors.flax.load_file(os.path.join(hf_dir, name)))
    return hf, tensors


def import_checkpoint(hf_dir: str, config: ml_collections.ConfigDict, workdir: str) -> ml_collections.ConfigDict:
    """Writes a workdir holding the HF model as a step-0 checkpoint; returns the config it trains with."""
    hf, tensors = read_checkpoint(hf_dir)
    config = config.copy_and_resolve_references()
    config.model.update(model_section(hf))
    params = from_hf_tensors(config.model, tensors)
    metadata = records.read_metadata(config.data.dir)
    input_pipeline.check_compatible(metadata, config)
    _check_same_tokenizer(os.path.join(hf_dir, trained.TOKENIZER_FILE),
                          os.path.join(config.data.dir, metadata.tokenizer))
    setup = train_state.setup(config, trained.data_parallel_mesh(jax.local_devices()[:1]))
    state = train_state.new_state(config, setup.tx, params)
    trained.save_run_files(config, workdir)
    ckpt = checkpointing.Checkpointer(os.path.join(workdir, trained.CHECKPOINTS), every=0, keep=None)
    try:
        ckpt.save(state, train_data.TrainData(config, metadata), force=True)
    finally:
        ckpt.close()
    return config


def _check_same_tokenizer(hf_tokenizer: str, dataset_tokenizer: str) -> None:
    if not os.path.exists(hf_tokenizer):
        return  # nothing to compare with: the caller vouches for the dataset's tokenization
    pieces = lambda path: [sp.id_to_piece(i) for sp in [tokenizer_lib.load_tokenizer(path)]  # noqa: E731
                           for i in range(sp.get_piece_size())]
    if pieces(hf_tokenizer) != pieces(dataset_tokenizer):
        raise ValueError(f"the dataset's tokenizer ({dataset_tokenizer}) is not the checkpoint's ({hf_tokenizer}): "
                         "prepare the data with the checkpoint's tokenizer")


def continue_command(config_path: str, overrides: Sequence[str], given: ml_collections.ConfigDict,
                     imported: ml_collections.ConfigDict, workdir: str) -> str:
    """The training command that continues an imported workdir: the given overrides plus the model keys
    the import changed (nested groups spelled key by key)."""
    def flat(section: ml_collections.ConfigDict, prefix: str) -> dict[str, Any]:
        out = {}
        for key, value in section.items():
            if isinstance(value, ml_collections.ConfigDict):
                out.update(flat(value, f"{prefix}{key}."))
            else:
                out[f"{prefix}{key}"] = value
        return out

    before, after = flat(given.model, "model."), flat(imported.model, "model.")
    shape = [f"--config.{key}={value}" for key, value in after.items() if before[key] != value]
    return (f"pretrain-jax train --config={config_path} --workdir={workdir} " + " ".join([*overrides, *shape])).strip()


if __name__ == "__main__":  # `python -m pretrain_jax.hf ...`: an alias of `pretrain-jax hf ...`
    from pretrain_jax import cli

    cli.main(["hf", *sys.argv[1:]])
