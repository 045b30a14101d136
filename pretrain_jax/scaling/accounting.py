"""What a config costs: parameters, training FLOPs per token, and the compute C of its run.

C = FLOPs per token x training tokens, where FLOPs per token is 6N plus the
attention term (metrics.training_flops_per_token). N here is the parameter count
behind "6N": every matmul weight, so the non-embedding parameters plus a tied
output head (Kaplan et al. 2020 count N without embeddings; a tied head is still
a matmul and costs compute).
"""

from __future__ import annotations

import dataclasses

import ml_collections

from pretrain_jax import metrics, model, train_data


def compute_params(model_cfg: ml_collections.ConfigDict) -> int:
    """N in C = 6ND: the attention term vanishes at sequence length 0, leaving 6N."""
    return round(metrics.training_flops_per_token(model_cfg, 0) / 6)


@dataclasses.dataclass(frozen=True)
class Accounting:
    params_total: int
    params_non_embedding: int  # without the input embedding table (model.param_count)
    params: int  # N in C = 6ND (compute_params)
    flops_per_token: float  # 6N + attention, forward and backward
    tokens: int  # training tokens of the run: its rows (global_batch_schedule or size, per step) x sequence length

    @property
    def compute(self) -> float:
        """C in FLOPs."""
        return self.flops_per_token * self.tokens


def of_config(config: ml_collections.ConfigDict) -> Accounting:
    """The accounting of a training config (pretrain_jax/schema.py) for its whole run."""
    counts = model.param_count(config.model)
    return Accounting(
        params_total=counts["total"], params_non_embedding=counts["non_embedding"],
        params=compute_params(config.model),
        flops_per_token=metrics.training_flops_per_token(config.model, config.seq_len),
        tokens=train_data.rows_between(train_data.batch_schedule(config), 0, config.num_train_steps) * config.seq_len)


def budget_line(acc: Accounting) -> str:
    """One console line: the run's token budget and compute, and the tokens per parameter."""
    return (f"budget: {acc.tokens:,} training tokens x {acc.flops_per_token / 1e6:.2f} MFLOPs = "
            f"C {acc.compute:.3e} FLOPs | N {acc.params / 1e6:.3f}M in 6N, "
            f"{acc.tokens / acc.params:.1f} tokens per parameter")
