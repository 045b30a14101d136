"""Logical axis names: the model names its dimensions, sharding.py maps names to mesh axes.

Parameters and activations use different names for the same dimension (EMBED vs.
ACT_EMBED) because FSDP shards a weight's embedding dimension but not an
activation's.
"""

# Parameter axes.
VOCAB = "vocab"
EMBED = "embed"
HEADS = "heads"  # query heads
KV_HEADS = "kv_heads"
HEAD_DIM = "head_dim"
MLP = "mlp"  # SwiGLU hidden dimension
NORM = "norm"  # the single axis of a norm scale
LAYERS = "layers"  # the stacked-layer axis that nn.scan adds (sharded over pipeline stages)

# Activation axes.
BATCH = "batch"
STAGES = "stages"  # the pipeline's slots, one per stage
LENGTH = "length"
KV_LENGTH = "kv_length"  # the key/value positions attention reads: every position of the row
ACT_EMBED = "act_embed"
ACT_HEADS = "act_heads"
ACT_KV_HEADS = "act_kv_heads"
ACT_MLP = "act_mlp"
ACT_VOCAB = "act_vocab"
