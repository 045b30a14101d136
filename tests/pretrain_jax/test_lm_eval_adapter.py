"""lm-evaluation-harness runs a trained workdir as the model "pretrain_jax", offline, on a local task."""

import os
import subprocess
import sys

os.environ["HF_DATASETS_OFFLINE"] = "1"  # the task's data is a local JSONL file; nothing is downloaded

import jax  # noqa: E402
import lm_eval  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from lm_eval.api.instance import Instance  # noqa: E402
from lm_eval.tasks import TaskManager  # noqa: E402

from pretrain_jax import fewshot, generate, model  # noqa: E402
from pretrain_jax.lm_eval_adapter import PretrainJaxLM  # noqa: E402

TASK_YAML = """task: stdlib_mc
dataset_path: json
dataset_kwargs:
  data_files:
    test: {path}
test_split: test
output_type: multiple_choice
doc_to_text: context
doc_to_choice: choices
doc_to_target: label
target_delimiter: ""
metric_list:
  - metric: acc
    aggregation: mean
    higher_is_better: true
  - metric: acc_norm
    aggregation: mean
    higher_is_better: true
"""


@pytest.fixture(scope="module")
def lm(tiny_run):
    return PretrainJaxLM(checkpoint=tiny_run, batch_size=8)


@pytest.fixture(scope="module")
def include_path(stdlib_tasks, tmp_path_factory):
    folder = tmp_path_factory.mktemp("lm_eval_tasks")
    (folder / "stdlib_mc.yaml").write_text(TASK_YAML.format(path=stdlib_tasks["multiple_choice"]))
    return str(folder)


def test_harness_accuracy_equals_the_projects_scorer(lm, include_path, stdlib_tasks):
    """Same prompts (0-shot, choices appended as written), same log-likelihoods, same acc and acc_norm."""
    results = lm_eval.simple_evaluate(model=lm, tasks=["stdlib_mc"], num_fewshot=0,
                                      task_manager=TaskManager(include_path=include_path))["results"]["stdlib_mc"]
    ours = fewshot.score_task(lm.scorer, lm.run.params, lm.run.tokenizer,
                              fewshot.load_task(stdlib_tasks["multiple_choice"]), num_fewshot=0)
    print(f"tiny_run on stdlib_mc (24 items, 4 choices): harness {results}, ours {ours}")
    assert results["acc,none"] == ours["acc"] and results["acc_norm,none"] == ours["acc_norm"]


def test_rolling_and_generation_match_direct_forward_passes(lm):
    sp = lm.run.tokenizer
    text = "def wrap(text, width=70, **kwargs):\n    w = TextWrapper(width"
    ids = sp.encode(text)
    (rolling,) = lm.loglikelihood_rolling([Instance("loglikelihood_rolling", {}, (text,), 0)])
    logits = model.apply(lm.run.config.model, lm.run.params, np.array([ids]), np.ones((1, len(ids)), int),
                         np.arange(len(ids))[None])
    logp = jax.nn.log_softmax(logits[0, :-1])
    assert rolling == pytest.approx(float(logp[np.arange(len(ids) - 1), ids[1:]].sum()), rel=1e-4)
    (long_rolling,) = lm.loglikelihood_rolling([Instance("loglikelihood_rolling", {}, (text * 6,), 0)])
    assert long_rolling < rolling < 0  # several windows of 64 tokens

    generated, cut = lm.generate_until([Instance("generate_until", {}, (text, {"until": [], "max_gen_toks": 8}), 0),
                                        Instance("generate_until", {}, (text, {"until": ["e"], "max_gen_toks": 8}), 1)])
    greedy = list(ids)  # the argmax of a whole forward pass, token by token: no cache
    for _ in range(8):
        logits = model.apply(lm.run.config.model, lm.run.params, np.array([greedy]), np.ones((1, len(greedy)), int),
                             np.arange(len(greedy))[None])
        greedy.append(int(np.argmax(logits[0, -1])))
    assert generated and generated == generate.decode_continuation(sp, ids, greedy[len(ids):])
    assert cut == generated.split("e")[0]


def test_cli_registers_the_model_and_runs_a_local_task(tiny_run, include_path):
    env = {**os.environ, "JAX_PLATFORMS": "cpu", "XLA_FLAGS": ""}
    out = subprocess.run([sys.executable, "-m", "pretrain_jax.lm_eval_adapter", "--model", "pretrain_jax",
                          "--model_args", f"checkpoint={tiny_run}", "--tasks", "stdlib_mc", "--include_path",
                          include_path, "--limit", "4", "--batch_size", "4"],
                         capture_output=True, text=True, env=env, check=True)
    assert "stdlib_mc" in out.stdout and "acc_norm" in out.stdout


def test_generation_that_leaves_no_room_for_the_context_is_refused(lm):
    request = Instance("generate_until", {}, ("import os", {"until": [], "max_gen_toks": lm.max_length}), 0)
    with pytest.raises(ValueError, match="leaves no room for the context"):
        lm.generate_until([request])


def test_an_empty_context_is_refused_rather_than_scored_without_its_first_token(lm):
    with pytest.raises(ValueError, match="needs a non-empty context"):
        lm.loglikelihood([Instance("loglikelihood", {}, ("", "import os"), 0)])
