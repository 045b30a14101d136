"""The command-line idiom of both packages: `PROGRAM <command> --flag=... [--config=FILE --config.KEY=VALUE ...]`.

Every command is a module with `define(flag_values, argv)` (its absl flags, on a flag set
of its own, and a config file through ml_collections' config_flags), `run(flag_values)`, and
a docstring that `--help` prints above the flags. Commands are imported only when chosen,
so one whose extra is not installed costs the others nothing. What a command cannot do
with its input (a ConfigError, a missing file) ends it with one `FATAL <reason>` line;
`--help` exits 0, a wrong flag or config key prints one line and exits 2.

Config files (`--config=configs/demo.py[:ARG]`) may import their siblings (`from configs
import demo`): the folder above the nearest `configs/` is put on the import path, from
any working directory.
"""

from __future__ import annotations

import dataclasses
import gc
import importlib
import os
import re
import sys
from typing import Any, Callable, Sequence

from absl import flags
from ml_collections import config_flags

from pretrain_common.errors import ConfigError

HELP = ("-h", "--help", "-help", "--helpfull", "--helpshort")
# Errors that are the user's input, not a bug: one line, no traceback.
USER_ERRORS = (ConfigError, FileNotFoundError)


@dataclasses.dataclass(frozen=True)
class Command:
    # A module that defines define(flag_values, argv), run(flag_values) and a docstring (or SUBCOMMANDS), or
    # "module:NAME" naming a Subcommand in it.
    module: str
    summary: str  # one line for the list of commands


@dataclasses.dataclass(frozen=True)
class Subcommand:
    """One of a command's subcommands (`pretrain-jax hf export`): what a command module is, for one verb."""

    summary: str
    define: Callable[[flags.FlagValues, Sequence[str]], None]
    run: Callable[..., None]  # run(flag_values, *arguments)
    usage: str = ""  # printed by --help above the flags
    arguments: tuple[str, ...] = ()  # names of the positional arguments it takes (`data-prep diff A B`)

    @property
    def __doc__(self) -> str:  # type: ignore[override]
        return f"{self.summary}\n\n{self.usage}".strip()


def define_config(flag_values: flags.FlagValues, argv: Sequence[str], help_text: str,
                  name: str = "config") -> flags.FlagHolder:
    """A config-file flag whose --NAME.KEY=VALUE overrides are read from `argv`."""
    _config_folder_importable(argv, name)
    return config_flags.DEFINE_config_file(name, None, help_text, flag_values=flag_values, lock_config=True,
                                           sys_argv=list(argv))


def _config_folder_importable(argv: Sequence[str], name: str) -> None:
    """Puts the folder above the config file's nearest `configs/` on sys.path, for its `from configs import ...`."""
    for arg in argv:
        if arg.startswith(f"--{name}="):
            path = os.path.abspath(arg.split("=", 1)[1].split(":", 1)[0])
            while path != os.path.dirname(path):
                path = os.path.dirname(path)
                if os.path.basename(path) == "configs":
                    root = os.path.dirname(path)
                    if root not in sys.path:
                        sys.path.insert(0, root)
                    return


def config(holder: flags.FlagHolder) -> Any:
    """The loaded config of a config-file flag (None when not given); a file that could not be loaded is a
    ConfigError naming it (config_flags hands a stand-in that raises the load error at its first use)."""
    value = holder.value
    if value is not None:
        try:
            value.keys()
        except OSError as e:
            raise ConfigError(_load_failure(holder.name, e)) from None
    return value


def required(flag_values: flags.FlagValues, *names: str) -> None:
    for name in names:
        if flag_values[name].value is None:
            raise ConfigError(f"--{name} is required")


def _load_failure(flag: str, error: OSError) -> str:
    """One line for a config file ml_collections could not load: its last line names the file and the reason."""
    return f"--{flag}: {str(error.__cause__ or error).splitlines()[-1].strip()}"


def unknown_key_message(error: Exception, schema: str, argv: Sequence[str] = ()) -> str:
    """One line for ml_collections' rejection of `--config.<unknown key>`, keeping its suggestion.

    ml_collections names the key's last part only: the override in `argv` that holds it gives its full path.
    """
    text = str(error).replace("\\n", "\n").replace("\\'", "'")
    key = re.search(r"'([^'\n]+)'", text)
    suggestion = re.search(r'Did you mean "([^"]+)"', text)
    name = key.group(1) if key else text
    overrides = [m.group(1) for m in map(re.compile(r"--\w+\.([\w.]+)=").match, argv) if m]
    name = next((o for o in overrides if name in o.split(".")), name)
    message = f"unknown config key {name!r}"
    if suggestion:
        message += f" (did you mean {suggestion.group(1)!r}?)"
    return f"{message}; every key is listed, with its meaning, in {schema}"


def _load(target: str) -> Any:
    """The module `target` names, or its attribute after a colon."""
    module, _, attribute = target.partition(":")
    loaded = importlib.import_module(module)
    return getattr(loaded, attribute) if attribute else loaded


def _usage(program: str, commands: dict[str, Command]) -> str:
    width = max(map(len, commands))
    return "\n".join([f"usage: {program} <command> [flags]   ({program} <command> --help for its flags)", "",
                      "commands:", *(f"  {name:<{width}}  {c.summary}" for name, c in commands.items())])


def _parse(flag_values: flags.FlagValues, argv: list[str], schema: str) -> list[str]:
    """Parses argv into flag_values and returns the positional arguments; a wrong flag or config key is a
    ConfigError of one line."""
    try:
        rest = flag_values(argv)
    except (AttributeError, KeyError) as e:  # how ml_collections rejects an unknown override
        raise ConfigError(unknown_key_message(e, schema, argv)) from None
    except OSError as e:  # a config file that could not be loaded, met when an override is applied to it
        name = re.search(r"config file (\S+)_config\b", str(e))
        raise ConfigError(_load_failure(name.group(1) if name else "config", e)) from None
    except flags.Error as e:
        raise ConfigError(str(e).splitlines()[0]) from None
    return rest[1:]


def load_config(path: str, overrides: Sequence[str] = (), schema: str = "the config's schema") -> Any:
    """The config a command line would load: `path` (FILE[:ARG]) with "--config.KEY=VALUE" overrides."""
    argv = ["load_config", f"--config={path}", *overrides]
    flag_values = flags.FlagValues()
    holder = define_config(flag_values, argv, "config file")
    positional = _parse(flag_values, argv, schema)
    if positional:
        raise ConfigError(f"unexpected arguments: {positional}")
    return config(holder)


def _exit_usage(message: str) -> None:
    print(f"FATAL {message}", file=sys.stderr)
    raise SystemExit(2)


def main(program: str, commands: dict[str, Command], argv: Sequence[str] | None = None,
         schema: str = "the config's schema") -> None:
    """Runs `program <command> ...` from argv (default sys.argv[1:])."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in HELP or argv[0] == "help":
        print(_usage(program, commands))
        raise SystemExit(0 if argv else 2)
    if argv[0] not in commands:
        _exit_usage(f"unknown command {argv[0]!r}; the commands are {', '.join(commands)} ({program} --help)")
    name, module = argv[0], _load(commands[argv[0]].module)
    errors = getattr(module, "USER_ERRORS", USER_ERRORS)  # a subcommand's are its module's
    subcommands = getattr(module, "SUBCOMMANDS", None)
    if subcommands is not None:  # `program name verb ...`: the verb's flags and run
        verbs = {verb: Command(module.__name__, sub.summary) for verb, sub in subcommands.items()}
        if len(argv) < 2 or argv[1] not in subcommands:
            if len(argv) < 2 or argv[1] in HELP:
                print(_usage(f"{program} {name}", verbs))
                raise SystemExit(0 if len(argv) > 1 else 2)
            _exit_usage(f"unknown command {name} {argv[1]!r}; choose one of {', '.join(subcommands)}")
        name, module, argv = f"{name} {argv[1]}", subcommands[argv[1]], argv[1:]
    full = [f"{program} {name}", *argv[1:]]
    if getattr(module, "PASSTHROUGH", False):  # a tool with a command line of its own: it parses its flags
        module.run(full)
        return
    flag_values = flags.FlagValues()
    module.define(flag_values, full)
    arguments = getattr(module, "arguments", ())
    if any(arg in HELP for arg in argv[1:]):
        listed = f"arguments: {' '.join(arguments)}\n" if arguments else ""
        print(f"{(module.__doc__ or '').strip()}\n\n{listed}flags:\n{flag_values.get_help() or '  (none)'}")
        raise SystemExit(0)
    try:
        positional = _parse(flag_values, full, schema)
        if len(positional) != len(arguments):
            raise ConfigError(f"the arguments {' '.join(arguments)} are required, got {positional}" if arguments
                              else f"unexpected arguments: {positional}")
    except ConfigError as e:
        _exit_usage(str(e))
    try:
        module.run(flag_values, *positional)
        return
    except errors as e:  # USER_ERRORS, or the command's own: what its input can get wrong
        fatal = f"FATAL {e}"
    # Out of the except clause the error and the frames it held are gone: the progress bars of a run it
    # stopped close now, so the FATAL line is the last one printed.
    gc.collect()
    sys.exit(fatal)
