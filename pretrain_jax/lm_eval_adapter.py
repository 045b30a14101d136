"""A trained workdir as an lm-evaluation-harness model named "pretrain_jax".

    pretrain-jax lm-eval --model pretrain_jax --model_args checkpoint=WORKDIR \
        --tasks hellaswag --include_path MY_TASKS

lm-eval 0.4.13 finds models only in its own registry (no entry-point group), so the
class must be registered before its command line runs: `pretrain-jax lm-eval`
(pretrain_jax/cli/lm_eval.py) imports this module, then hands its arguments to
lm-eval's CLI unchanged. In Python, import this module
and call `lm_eval.simple_evaluate(model="pretrain_jax", model_args="checkpoint=...")`.

Log-likelihoods come from pretrain_jax/fewshot.py, so the harness and
`pretrain-jax evaluate --task=...` score the same prompt identically.
"""

from __future__ import annotations

from typing import Any

from lm_eval.api.model import LM
from lm_eval.api.registry import register_model
from tqdm import tqdm

from pretrain_jax import fewshot, generate, trained


@register_model("pretrain_jax")
class PretrainJaxLM(LM):
    """model_args: checkpoint (a training workdir, required), batch_size (rows per forward pass),
    max_length (tokens per row; default the run's seq_len), max_gen_toks (default 256)."""

    def __init__(self, checkpoint: str, batch_size: int | str = 16, max_length: int = 0, max_gen_toks: int = 256,
                 max_batch_size: int | None = None, device: str | None = None):
        super().__init__()
        del max_batch_size, device  # JAX places the model on its default device; batches are fixed-size
        self.run = trained.load(checkpoint)
        self.max_length = int(max_length) or self.run.config.seq_len
        self.max_gen_toks = int(max_gen_toks)
        rows = 16 if str(batch_size).startswith("auto") else int(batch_size)
        self.scorer = fewshot.Scorer(self.run.config.model, self.max_length, rows)

    def loglikelihood(self, requests) -> list[tuple[float, bool]]:
        pairs = [req.args for req in requests]
        return [(s[0], s[1]) for s in self.scorer.score_text(self.run.params, self.run.tokenizer, pairs)]

    def loglikelihood_rolling(self, requests) -> list[float]:
        """Each text's log-likelihood, every token scored once but the first, which has no context (the
        model never predicts a document's first token); perplexities over whole texts run slightly low."""
        per_text = [fewshot.rolling_pairs(self.run.tokenizer.encode(req.args[0]), self.max_length)
                    for req in requests]
        scores = iter(self.scorer.score_ids(self.run.params, [p for pairs in per_text for p in pairs]))
        return [sum(next(scores)[0] for _ in pairs) for pairs in per_text]

    def generate_until(self, requests) -> list[str]:
        """Greedy completions (pretrain_jax/generate.py, batched, KV cache), cut at the first stop string."""
        out = []
        for start in tqdm(range(0, len(requests), self.scorer.batch_rows), desc="generate", disable=len(requests) < 2):
            out.extend(self._greedy([r.args for r in requests[start:start + self.scorer.batch_rows]]))
        return out

    def _greedy(self, chunk: list[tuple[str, dict[str, Any]]]) -> list[str]:
        tokenizer = self.run.tokenizer
        limits = [int(kwargs.get("max_gen_toks", self.max_gen_toks)) for _, kwargs in chunk]
        if max(limits) >= self.max_length:
            raise ValueError(f"max_gen_toks={max(limits)} leaves no room for the context in max_length="
                             f"{self.max_length} tokens: pass a smaller max_gen_toks (model_args or the task's "
                             "generation_kwargs) or a larger max_length")
        # Each context keeps its last max_length - max_gen_toks tokens, as lm-eval's HF model does.
        prompts = [tokenizer.encode(context)[-(self.max_length - limit):]
                   for (context, _), limit in zip(chunk, limits)]
        if not all(prompts):
            raise ValueError("generate_until needs a non-empty context: the model has no prediction without one")
        new = generate.generate(self.run.config.model, self.run.params, prompts, max(limits),
                                eos_id=tokenizer.eos_id())
        texts = []
        for ids, ids_new, limit, (_, kwargs) in zip(prompts, new, limits, chunk):
            text = generate.decode_continuation(tokenizer, ids, ids_new[:limit])
            until = kwargs.get("until") or []
            for stop in [until] if isinstance(until, str) else until:
                text = text.split(stop)[0]
            texts.append(text)
        return texts


if __name__ == "__main__":  # `python -m pretrain_jax.lm_eval_adapter ...`, as `pretrain-jax lm-eval ...`: the model is
    from lm_eval.__main__ import cli_evaluate  # registered above, under this module's name

    cli_evaluate()
