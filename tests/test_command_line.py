"""Both command lines, `pretrain-jax <command>` and `data-prep <command>`, follow one idiom
(pretrain_common/cli.py): every command and subcommand answers --help with exit 0 and its flags, and a wrong
flag, a wrong config key or a missing required flag with one FATAL line and exit 2 or 1, never a traceback."""

import importlib
import os
import subprocess
import sys

import pytest

import data_prep.__main__ as data_prep_main
from pretrain_common import cli
from pretrain_jax import cli as pretrain_jax_cli

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.path.dirname(sys.executable)
PROGRAMS = {"pretrain-jax": pretrain_jax_cli.main, "data-prep": data_prep_main.main}


def every_command():
    """(program, [command, subcommand?]) for every command the two programs list, read from their tables."""
    for program, commands in (("pretrain-jax", pretrain_jax_cli.COMMANDS), ("data-prep", data_prep_main.COMMANDS)):
        for name, command in commands.items():
            module = cli._load(command.module)
            if getattr(module, "PASSTHROUGH", False):
                continue  # a tool with its own command line: test_lm_eval_passes_its_command_line_through
            subcommands = getattr(module, "SUBCOMMANDS", None)
            for verb in (subcommands or [None]):
                yield program, [name] + ([verb] if verb else [])


COMMANDS = list(every_command())


@pytest.fixture(autouse=True)
def in_this_process(monkeypatch):
    """Training commands would start themselves again on the fast allocator, replacing pytest."""
    monkeypatch.setenv("PRETRAIN_JAX_SYSTEM_MALLOC", "1")


def call(program, argv, capsys):
    """(exit code, stdout, stderr) of the program's main on argv, in this process."""
    with pytest.raises(SystemExit) as exit_info:
        PROGRAMS[program](argv)
    out, err = capsys.readouterr()
    code = exit_info.value.code
    return (code if isinstance(code, int) else 1), out, err + (code if isinstance(code, str) else "")


@pytest.mark.parametrize("program,words", COMMANDS, ids=[" ".join([p, *w]) for p, w in COMMANDS])
def test_help_exits_0_with_the_usage_and_the_flags(program, words, capsys):
    code, out, err = call(program, [*words, "--help"], capsys)
    assert code == 0 and err == ""
    assert f"{program} {' '.join(words)}" in out, "the docstring shows how the command is run"
    assert "flags:" in out
    assert "--" in out.split("flags:")[1] or "arguments:" in out, "a command takes flags or arguments"


@pytest.mark.parametrize("program,words", COMMANDS, ids=[" ".join([p, *w]) for p, w in COMMANDS])
def test_a_wrong_flag_is_one_fatal_line(program, words, capsys):
    code, out, err = call(program, [*words, "--no_such_flag=1"], capsys)
    assert code == 2
    assert err == "FATAL Unknown command line flag 'no_such_flag'\n"


@pytest.mark.parametrize("program,words", COMMANDS, ids=[" ".join([p, *w]) for p, w in COMMANDS])
def test_no_flags_at_all_is_one_fatal_line_naming_what_is_missing(program, words, capsys):
    code, out, err = call(program, words, capsys)
    assert code != 0 and out == ""
    assert err.startswith("FATAL ") and err.count("\n") <= 1 and "required" in err, err


def test_a_wrong_config_key_names_it_and_the_schema(capsys):
    code, _, err = call("pretrain-jax", ["train", "--config=configs/tiny.py", "--workdir=/tmp/x",
                                         "--config.optimizer.peak_lr=1"], capsys)
    assert code == 2
    assert err.startswith("FATAL unknown config key 'optimizer.peak_lr'") and "pretrain_jax/schema.py" in err
    code, _, err = call("data-prep", ["run", "--config=configs/data/demo.py", "--config.seq_length=1"], capsys)
    assert code == 2 and "data_prep/schema.py" in err and err.count("\n") == 1


@pytest.mark.parametrize("program", PROGRAMS)
def test_the_program_lists_its_commands_and_refuses_an_unknown_one(program, capsys):
    code, out, _ = call(program, ["--help"], capsys)
    assert code == 0 and "commands:" in out
    code, _, err = call(program, ["trian"], capsys)
    assert code == 2 and err.startswith("FATAL unknown command 'trian'") and err.count("\n") == 1


@pytest.mark.parametrize("argv", [["pretrain-jax", "--help"], ["data-prep", "run", "--help"],
                                  [sys.executable, "-m", "pretrain_jax", "aot", "--help"],
                                  [sys.executable, "-m", "pretrain_jax.train", "--help"],  # the older style: an alias
                                  [sys.executable, "-m", "data_prep", "--help"]])
def test_the_installed_scripts_and_python_m_answer_help(argv):
    argv = [os.path.join(BIN, argv[0]), *argv[1:]] if not os.path.isabs(argv[0]) else argv
    result = subprocess.run(argv, cwd=REPO, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "usage" in result.stdout or "flags:" in result.stdout


def test_lm_eval_passes_its_command_line_through():
    lm_eval = pytest.importorskip("lm_eval")
    assert lm_eval is not None
    result = subprocess.run([os.path.join(BIN, "pretrain-jax"), "lm-eval", "--no_such_flag"], cwd=REPO,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    assert result.stderr.startswith("FATAL unrecognized arguments: --no_such_flag") and result.stderr.count("\n") == 1


def test_library_modules_define_no_flags():
    """Importing every library module leaves absl's global flag set as it was: the commands own their flags."""
    from absl import flags

    before = set(flags.FLAGS)
    for package in ("pretrain_jax", "data_prep", "pretrain_common"):
        for root, _, files in os.walk(os.path.join(REPO, package)):
            for name in files:
                relative = os.path.relpath(os.path.join(root, name[:-3]), REPO)
                if name.endswith(".py") and name != "__main__.py" and "beam" not in relative:
                    importlib.import_module(relative.replace(os.sep, ".").removesuffix(".__init__"))
    assert set(flags.FLAGS) == before
