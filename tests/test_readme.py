"""README.md's commands work as written: a newcomer who copies them gets what the README says.

The shell code blocks of README.md (fenced as ```, ```bash or ```sh) are read as commands. Each is
either run here, or named in EXPENSIVE with the reason it is not: every `--help`, and the "Train on
your own data" path end to end (prepare, train, evaluate) on a small real input, this repository's
own source files, with overrides that make it take seconds. A README command that is neither fails
the test, so a new one needs a decision here. Flags are also checked against each command's --help
and config overrides against its config file, so a renamed flag or key fails even where the run
itself uses smaller settings.
"""

import functools
import json
import os
import re
import shlex
import subprocess
import sys

import pytest

from pretrain_common import cli

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.path.dirname(sys.executable)  # the README's .venv/bin, or wherever this Python's scripts are
PROGRAMS = ("pretrain-jax", "data-prep")
OWN_DATA = "Train on your own data"

# Commands not run here, by their first words, and why.
EXPENSIVE = {
    ("make", "demo"): "prepares 12.6 MB of text and trains 240 steps: minutes",
    ("make", "test"): "the whole test suite, this test included",
    (".venv/bin/tensorboard",): "a server that runs until it is stopped",
    ("launch/tpu_pod.sh",): "creates a TPU VM slice",
    ("sbatch",): "submits a SLURM job",
}

# The README's placeholders in "Train on your own data", and what they become here: two folders of this
# repository's Python (real text, two sources) and folders under tmp_path.
INPUTS = {"/data/crawl": os.path.join(REPO, "pretrain_jax"), "/data/books": os.path.join(REPO, "data_prep")}
OUTPUTS = {"/data/prepared": "prepared", "/runs/mine": "run"}

# Appended to the README's command, so the last value of a key wins: a small vocabulary and short rows
# (a tokenizer of 32,000 pieces cannot be trained on 600 KB), a validation split to evaluate, two steps.
SMALLER = {
    ("data-prep", "run"): ["--config.vocab_size=512", "--config.seq_len=64", "--config.validation_fraction=0.1",
                           "--config.num_workers=1"],
    ("pretrain-jax", "train"): ["--config.seq_len=64", "--config.model.vocab_size=512", "--config.num_train_steps=2"],
}


def shell_blocks(markdown: str) -> list[tuple[str, str]]:
    """(section title, block text) of every fenced block marked as shell, or not marked at all."""
    blocks, section = [], ""
    for match in re.finditer(r"^## ([^\n]+)$|^```(\w*)\n(.*?)^```$", markdown, re.M | re.S):
        if match.group(1):
            section = match.group(1).strip()
        elif match.group(2) in ("", "bash", "sh"):
            blocks.append((section, match.group(3)))
    return blocks


def commands(block: str) -> list[list[str]]:
    """The block's commands as argument lists: continuation lines joined, comments dropped."""
    return [argv for line in block.replace("\\\n", " ").splitlines() if (argv := shlex.split(line, comments=True))]


with open(os.path.join(REPO, "README.md"), encoding="utf-8") as f:
    README = f.read()
COMMANDS = [(section, argv) for section, block in shell_blocks(README) for argv in commands(block)]
HELP = [argv for _, argv in COMMANDS if "--help" in argv]
OURS = [argv for _, argv in COMMANDS if os.path.basename(argv[0]) in PROGRAMS and "--help" not in argv]
OWN_DATA_PATH = [argv for section, argv in COMMANDS if section == OWN_DATA and argv not in HELP]


def expensive(argv: list[str]) -> str | None:
    return next((why for words, why in EXPENSIVE.items() if tuple(argv[:len(words)]) == words), None)


def words(argv: list[str]) -> tuple[str, ...]:
    """(program, command[, subcommand]): `pretrain-jax hf export --workdir=...` -> ("pretrain-jax", "hf", "export")."""
    first_flag = next((i for i, a in enumerate(argv) if a.startswith("-")), len(argv))
    return (os.path.basename(argv[0]), *argv[1:first_flag])


def run(argv: list[str], timeout: int = 120) -> subprocess.CompletedProcess:
    """argv as a newcomer runs it from the repository root: one CPU device, the default allocator choice."""
    program = argv[0]
    if program.startswith(".venv/bin/"):
        program = os.path.join(BIN, os.path.basename(program))
    env = {k: v for k, v in os.environ.items() if k not in ("XLA_FLAGS", "PRETRAIN_JAX_SYSTEM_MALLOC")}
    env["JAX_PLATFORMS"] = "cpu"
    return subprocess.run([program, *argv[1:]], cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout)


@functools.lru_cache(maxsize=None)
def run_once(*argv: str) -> subprocess.CompletedProcess:
    """`run`, once per argument list: a --help the README shows is also what its flags are checked against."""
    return run(list(argv))


def help_text(*command: str) -> str:
    result = run_once(f".venv/bin/{command[0]}", *command[1:], "--help")
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout


def test_the_setup_commands_are_make_demo_and_make_test():
    """The project's contract with a newcomer: two commands, the first block of the README."""
    assert COMMANDS[:2] == [("Set up and run", ["make", "demo"]), ("Set up and run", ["make", "test"])]


def test_every_command_is_run_here_or_named_expensive():
    """A new README command needs a decision here, not silence: run it, or say why not."""
    not_decided = [shlex.join(argv) for section, argv in COMMANDS
                   if not (argv in HELP or section == OWN_DATA or expensive(argv))]
    assert not not_decided, f"README commands this test neither runs nor names in EXPENSIVE: {not_decided}"
    assert HELP and OWN_DATA_PATH, "the README shows --help and the own-data path"


@pytest.mark.parametrize("argv", HELP, ids=[shlex.join(a) for a in HELP])
def test_help_answers_with_the_usage_and_exit_0(argv):
    """A newcomer's first look at a command works right after `make install`."""
    result = run_once(*argv)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "Traceback" not in result.stderr
    assert "usage: " in result.stdout or "flags:" in result.stdout


@pytest.mark.parametrize("argv", OURS, ids=[shlex.join(a) for a in OURS])
def test_flags_and_config_keys_are_the_commands_own(argv):
    """Checked on the command as the README writes it, before the own-data run changes any value."""
    help_output = help_text(*words(argv))
    flags = [a[2:].split("=", 1)[0] for a in argv[1:] if a.startswith("--") and not a.startswith("--config.")]
    for name in flags:
        negated = name[2:] if name.startswith("no") else None
        pattern = rf"^\s+--(\[no\])?{re.escape(name)}:" + (rf"|^\s+--\[no\]{re.escape(negated)}:" if negated else "")
        assert re.search(pattern, help_output, re.M), f"{shlex.join(argv)}: --{name} is not a flag of {words(argv)}"
    config = [a.split("=", 1)[1] for a in argv if a.startswith("--config=")]
    overrides = [a for a in argv if a.startswith("--config.")]
    assert config or not overrides
    if config:
        cli.load_config(os.path.join(REPO, config[0]), overrides)  # a ConfigError names an unknown key


def test_train_on_your_own_data(tmp_path):
    """Prepare, train, evaluate: the README's commands in order, on this repository's own source files."""
    section = README.split(f"## {OWN_DATA}\n", 1)[1].split("\n## ", 1)[0]
    for placeholder in (*INPUTS, *OUTPUTS):
        assert placeholder in section, f"the test's stand-in for {placeholder} needs updating"
    places = {**INPUTS, **{k: str(tmp_path / v) for k, v in OUTPUTS.items()}}
    ran = []
    for argv in OWN_DATA_PATH:
        for placeholder, path in places.items():
            argv = [a.replace(placeholder, path) for a in argv]
        assert not [a for a in argv if re.search(r"(^|[=\"'(])/(data|runs)/", a)], f"a path left as written: {argv}"
        command = words(argv)
        result = run([*argv, *SMALLER.get(command, [])])
        assert result.returncode == 0, f"{shlex.join(argv)}\n{result.stdout[-2000:]}\n{result.stderr[-3000:]}"
        ran.append((command, result.stdout))
    outputs = dict(ran)
    assert list(outputs) == [("data-prep", "run"), ("pretrain-jax", "train"), ("pretrain-jax", "evaluate")]

    prepared = tmp_path / "prepared"
    metadata = json.loads((prepared / "metadata.json").read_text())
    assert metadata["seq_len"] == 64 and set(metadata["sources"]) == {"web", "books"}
    assert (prepared / "report.json").exists() and (prepared / "tokenizer.model").exists()
    assert "kept" in outputs[("data-prep", "run")]

    train_log = outputs[("pretrain-jax", "train")].splitlines()
    assert re.search(r"host allocator (jemalloc|mimalloc) \(/\S+\)$", train_log[0]), train_log[0]
    assert any(line.startswith("step 2/2") for line in train_log)
    assert "validation loss" in outputs[("pretrain-jax", "train")]
    assert (tmp_path / "run" / "config.json").exists() and (tmp_path / "run" / "checkpoints").is_dir()

    evaluation = outputs[("pretrain-jax", "evaluate")]
    assert "step 2" in evaluation and "validation split" in evaluation and "bits_per_byte" in evaluation
