"""The training config schema: every key, its default and why.

Other configs start from `get_config()` here and override only what differs.
Any key can be overridden on the command line:

    pretrain-jax train --config=configs/demo.py --workdir=/tmp/run \
        --config.num_train_steps=500 --config.model.num_layers=4

An unknown key fails at once (the config is locked). Model defaults are the
Llama 6.7B shape (Touvron et al. 2023, Table 2); optimizer defaults are the
Llama recipe (section 2.2).
"""

import ml_collections


def get_config() -> ml_collections.ConfigDict:
    c = ml_collections.ConfigDict()

    c.seed = 0  # parameter init and data order; same seed + same data = same run

    # --- model: a Llama-style decoder (pretrain_jax/model.py) ---
    m = c.model = ml_collections.ConfigDict()
    m.vocab_size = 32000  # must be >= the tokenizer's vocabulary (checked against the dataset)
    m.dim = 4096  # residual stream width d_model
    m.num_layers = 32
    m.num_heads = 32  # query heads
    m.num_kv_heads = 32  # key/value heads: = num_heads is MHA, 1 is MQA, in between is GQA
    m.head_dim = 0  # 0 means dim // num_heads
    m.mlp_dim = 11008  # SwiGLU hidden width; Llama uses 2/3 * 4 * dim rounded up to a multiple of 256
    m.rope_theta = 10000.0  # rotary base frequency (Su et al. 2021)
    # Llama 3.1's RoPE scaling for long-context stages (transformers' "llama3" rope type): factor 1 is off; 3.1
    # used factor 8, low/high frequency factors 1 and 4 over an original context of 8192
    m.rope_scaling = ml_collections.ConfigDict(
        dict(factor=1.0, low_freq_factor=1.0, high_freq_factor=4.0, original_max_position=8192))
    m.norm_eps = 1e-6  # RMSNorm epsilon
    m.qk_norm = False  # RMSNorm on each head's queries and keys before RoPE; stabilizes attention logits
    m.tie_embeddings = False  # share the input embedding with the output head
    m.causal = True  # False gives the bidirectional (masked-LM) variant
    m.param_dtype = "float32"  # storage dtype of parameters and optimizer state
    m.dtype = "float32"  # compute dtype of activations and matmuls ("bfloat16" on accelerators)
    m.scan_layers = True  # nn.scan over layers: compile time independent of depth
    m.remat = "none"  # rematerialization of each layer: none | full | dots_no_batch | minimal
    # With mesh.stage > 1: microbatches a batch is cut into for the pipeline (0: as many as stages), and the
    # times each goes round the stages (MaxText's num_pipeline_repeats: the layers cut into stage x repeats
    # chunks, stage s running chunks s, stage + s, ...; a smaller bubble, needs microbatches >= stages)
    m.pipeline_microbatches = 0
    m.pipeline_repeats = 1
    # xla: our einsums, backward written out (pretrain_jax/attention.py) | dot_product_attention: jax.nn's XLA
    # version | cudnn: cuDNN flash attention through jax.nn (NVIDIA GPUs, dtype bfloat16 or float16; packed
    # documents as a [length, length] bias) | splash: JAX's Pallas splash attention (TPUs, MaxText's kernel;
    # seq_len a multiple of 128) | pallas_gpu: JAX's Pallas flash attention with segment ids (NVIDIA GPUs).
    # The Pallas kernels run interpreted on a CPU, for tests.
    m.attention_impl = "xla"
    m.init_std = 0.02  # std of the normal initializer for weight matrices and embeddings
    # > 0: the loss computes the output logits this many positions at a time (recomputed in the backward pass),
    # never holding [batch, length, vocab] float32 logits (MaxText's vocabulary tiling); must divide seq_len.
    # 0: all at once (faster when they fit).
    m.logits_chunk = 0
    # z-loss coefficient: adds z_loss * mean(logsumexp(logits)^2) to the loss, keeping the output logits from
    # drifting (PaLM used 1e-4; Marin added it when its head norm blew up); 0 is off. Logged as train/z_loss.
    m.z_loss = 0.0

    # --- objective (pretrain_jax/objectives.py) ---
    c.objective = "causal_lm"  # causal_lm: next token (model.causal True) | masked_lm: BERT (model.causal False)
    # Masked LM (pretrain_jax/masking.py), BERT's recipe (Devlin et al. 2019, section 3.1). The mask token is
    # id model.vocab_size - 1, so model.vocab_size must exceed the tokenizer's vocabulary (tokenizer + 1).
    mlm = c.mlm = ml_collections.ConfigDict()
    mlm.mask_rate = 0.15  # chance that an eligible token (not special, not padding) is chosen for prediction
    mlm.mask_fraction = 0.8  # of the chosen: input replaced by the mask token
    mlm.random_fraction = 0.1  # of the chosen: input replaced by a random ordinary token; the rest (0.1) unchanged

    # --- data: shards written by `data-prep run` (pretrain_common/records.py) ---
    d = c.data = ml_collections.ConfigDict()
    d.dir = ""  # prepared dataset folder (holds metadata.json); required
    d.train_split = "train"
    d.eval_split = "validation"
    d.shuffle = True  # seeded global shuffle of sequences, reshuffled every epoch
    # (source, weight) pairs that replace the sampling weights of a mixed dataset (metadata.json,
    # data_prep/mixture.py) without preparing it again; each source named once, 0 leaves one out.
    # Empty: the weights in the dataset's metadata.
    d.mixture_weights = ()
    # Data stages after the first (Levanter's step-keyed mixtures): (start step, weights) or (start step,
    # weights, data dir) entries, at increasing steps. From its start step on, a stage draws from its data dir
    # (default data.dir; prepared with the same tokenizer) by its (source, weight) pairs, () keeping the dataset's
    # own weights. Step 0 to the first stage is data.dir with mixture_weights. A source read in several stages
    # continues where it stopped. Example: ((9000, (("web", 0.3), ("code", 0.7))), (9500, (), "/data/anneal")).
    d.stages = ()
    d.num_threads = 2  # Grain reader threads per process
    d.prefetch = 4  # batches Grain reads ahead

    c.seq_len = 2048  # tokens per training row; must equal the dataset's record length
    c.global_batch_size = 2048  # rows per optimizer step across all processes (4M tokens at 2048, as Llama)
    # Batch-size ramp (MaxText's rampup, OLMo-core's batch-size schedule): (first step, global batch) pairs at
    # increasing steps from 0, the last one's batch equal to global_batch_size. Empty: global_batch_size
    # throughout. The data position is kept in rows, so a resume stays exact when batch sizes change.
    c.global_batch_schedule = ()
    c.microbatches = 1  # gradient accumulation: the batch is split into this many sequential parts
    c.num_train_steps = 250_000

    # --- optimizer: AdamW with warmup, then a learning-rate schedule (pretrain_jax/optimizer.py) ---
    o = c.optimizer = ml_collections.ConfigDict()
    o.peak_learning_rate = 3e-4  # Llama 6.7B/13B; 1.5e-4 for 32.5B/65.2B
    o.warmup_steps = 2000  # linear warmup from 0 to the peak
    o.schedule = "cosine"  # after warmup: cosine | linear | wsd (warmup-stable-decay) | constant | inverse_sqrt
    o.decay_steps = 0  # steps of decay (wsd: the run's last); 0: cosine, linear to the end, wsd decay_fraction
    o.decay_fraction = 0.1  # wsd, when decay_steps is 0: the share of num_train_steps spent decaying
    o.decay_shape = "linear"  # wsd's decay: linear | cosine | 1-sqrt (Hägele et al. 2024, section 3)
    o.final_learning_rate_fraction = 0.1  # the decays end at this fraction of the peak
    o.b1 = 0.9
    o.b2 = 0.95
    o.eps = 1e-8
    o.weight_decay = 0.1  # decoupled; never applied to norm scales or biases
    o.decay_embeddings = True  # whether weight decay applies to the embedding and output head
    o.grad_clip_norm = 1.0  # global-norm clipping; 0 disables
    # dtype of Adam's first moment (optax's mu_dtype); the second moment keeps the parameters' dtype,
    # whose range its small squared gradients need
    o.state_dtype = "float32"

    # --- start from another run (pretrain_jax/trained.py): anneals, mid-training, cooldowns ---
    init = c.init = ml_collections.ConfigDict()
    # WORKDIR[@STEP]: the first state takes the parameters of that run's checkpoint (its newest without @STEP);
    # also `--init_from=` on the train command line. A resumed run keeps the step it started from. Recorded as
    # WORKDIR@STEP in the new workdir's config.json.
    init.source = ""
    # Also take its optimizer state, step and skip counters: the run continues the source's schedule (a WSD
    # cooldown: the same config with num_train_steps = STEP + D and optimizer.decay_steps = D). Off by default:
    # a new schedule and fresh moments, as OLMo 3's mid-training.
    init.optimizer_state = False
    # Set optimizer.peak_learning_rate to the learning rate the source had at STEP: with schedule="linear",
    # warmup_steps=0 and final_learning_rate_fraction=0 this is the OLMo 2/3 anneal (linear from there to 0).
    init.peak_from_source = False
    # Set by `pretrain-jax average` in the workdir it writes: the (WORKDIR@STEP, weight) it averaged.
    c.averaged_from = ()

    # --- stability (pretrain_jax/spikes.py) ---
    sp = c.spike = ml_collections.ConfigDict()
    # Skip an update whose loss or gradient norm is more than `sigma` standard deviations above the mean of the
    # last `window` updates (OLMo-core's SkipStepAdamW: 6); 0 is off. Counted as train/spikes_skipped_total.
    sp.sigma = 0.0
    sp.window = 128  # updates of history; checks start once half of it is filled
    # > 0: on a spike, also restore the newest checkpoint before it and read on past the batches read since,
    # skipping at least this many batches after that checkpoint's position (PaLM, section 5.1, skipped 200 to
    # 500); recorded in workdir/rollbacks.jsonl. Needs sigma > 0.
    sp.rollback_batches = 0
    sp.max_rollbacks = 10  # stop the run at a spike after this many rollbacks
    # Exponential moving average of the parameters kept in the train state, e.g. 0.999 (Marin used EMA through
    # its cooldowns); validated beside the raw parameters as eval_ema/*, exportable (hf export --ema). 0 is off.
    c.ema_decay = 0.0

    # --- parallelism: mesh axes (pretrain_jax/sharding.py) ---
    mesh = c.mesh = ml_collections.ConfigDict()
    mesh.data = -1  # pure data parallelism; -1 takes all devices (of a slice) the other axes leave
    # pipeline parallelism: the layers split into this many stages (model.scan_layers; see model.pipeline_*)
    mesh.stage = 1
    mesh.fsdp = 1  # parameters, gradients and optimizer state sharded (ZeRO-3 style)
    # context parallelism: each row split over this many devices (long-context stages; seq_len divisible by 2 x
    # context, attention_impl xla or dot_product_attention)
    mesh.context = 1
    mesh.tensor = 1  # Megatron-style tensor parallelism over heads and the MLP hidden dimension
    # Sizes above are per slice (ICI). Multi-slice runs also split axes across slices over the data-center
    # network (DCN): the products below must equal the number of slices; the whole axis is ICI x DCN.
    # Usually only data parallelism crosses slices (dcn_data = slices): it sends one gradient all-reduce per step.
    mesh.dcn_data = 1
    mesh.dcn_stage = 1
    mesh.dcn_fsdp = 1
    mesh.dcn_context = 1
    mesh.dcn_tensor = 1
    # A mesh axis that does not divide a dimension the rules shard over it (2 kv heads on tensor=4) leaves that
    # dimension whole, replicated. Runs print which arrays at start and refuse to start when those bytes exceed
    # this fraction of the per-device state the rules ask for (pretrain_jax/sharding.py, replication_report).
    mesh.max_replicated_fraction = 0.25

    # --- sample texts during training (pretrain_jax/generate.py), shown in TensorBoard's Text tab ---
    g = c.generate = ml_collections.ConfigDict()
    g.sample_every = 0  # steps between greedy completions of `prompts` written as text summaries; 0 disables
    g.prompts = ()  # texts to continue, e.g. ("def ", "import ")
    g.max_new_tokens = 32  # tokens per completion at most (eos stops sooner)

    # --- loop, logging, evaluation, checkpoints (pretrain_jax/train.py) ---
    c.log_every = 10  # steps between TensorBoard scalars and console progress lines
    # steps between validation passes, and one at the end; 0: only the one at the end; -1: none (a
    # dataset prepared without a validation split)
    c.eval_every = 1000
    c.eval_batches = 20  # validation batches per pass; 0 means the whole split
    # Few-shot task files scored at every validation pass (pretrain_jax/fewshot.py): eval/<task>/acc, ...
    c.eval_tasks = ()
    c.eval_num_fewshot = 0  # solved examples before each task item
    c.eval_task_batch = 16  # (context, choice) rows per forward pass when scoring tasks
    c.checkpoint_every = 1000  # steps between checkpoints (one is always written at the end)
    c.keep_checkpoints = 3  # the newest K are kept
    c.async_checkpointing = True  # write checkpoints in the background while training continues
    c.max_consecutive_nonfinite = 10  # stop after this many skipped (non-finite) updates in a row
    # steps between Hugging Face exports of the parameters to workdir/hf/step_<N>, and one at the end (needs the
    # hf extra); 0 is off
    c.hf_export_every = 0
    c.peak_flops_per_device = 0.0  # for MFU; 0 measures a matmul in model.dtype on the device at start-up
    return c
