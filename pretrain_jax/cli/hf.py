"""Hugging Face interop: `hf export` writes a transformers Llama (Qwen3 with QK-norm) folder; `hf import` a workdir.

    pretrain-jax hf export --workdir=workdirs/demo --output=hf/demo [--step=N] [--ema]
    pretrain-jax hf import --hf_dir=hf/demo --workdir=workdirs/more --config=configs/demo.py --config.data.dir=DATA
"""

from __future__ import annotations

from typing import Sequence

from absl import flags

from pretrain_common import cli
from pretrain_jax import hf

USER_ERRORS = (ValueError, FileNotFoundError)  # a workdir, folder, tokenizer or model that cannot be converted
_given_overrides: list[str] = []  # this invocation's --config.KEY=VALUE arguments


def _define_export(fv: flags.FlagValues, argv: Sequence[str]) -> None:
    flags.DEFINE_string("workdir", None, "the --workdir of a training run", flag_values=fv)
    flags.DEFINE_string("output", None, "the folder to write", flag_values=fv)
    flags.DEFINE_integer("step", None, "the checkpoint of this step (default: the newest)", flag_values=fv)
    flags.DEFINE_bool("ema", False, "the EMA of the parameters (a run with ema_decay > 0)", flag_values=fv)


def _export(args: flags.FlagValues) -> None:
    cli.required(args, "workdir", "output")
    hf.export(args.workdir, args.output, args.step, args.ema)
    print(f"wrote {args.output}")


def _define_import(fv: flags.FlagValues, argv: Sequence[str]) -> None:
    flags.DEFINE_string("hf_dir", None, "an HF Llama or Qwen3 folder (config.json, safetensors)", flag_values=fv)
    flags.DEFINE_string("workdir", None, "the workdir to write (step 0), which training continues", flag_values=fv)
    cli.define_config(fv, argv, "training config file; --config.KEY=VALUE overrides follow")
    _given_overrides[:] = [arg for arg in argv if arg.startswith("--config.")]  # repeated in the printed command


def _import(args: flags.FlagValues) -> None:
    cli.required(args, "hf_dir", "workdir", "config")
    given = cli.config(args["config"])
    imported = hf.import_checkpoint(args.hf_dir, given, args.workdir)
    command = hf.continue_command(args["config"].config_filename, _given_overrides, given, imported, args.workdir)
    print(f"wrote {args.workdir} (step 0); continue with: {command}")


SUBCOMMANDS = {
    "export": cli.Subcommand("a training workdir -> an HF Llama or Qwen3 folder", _define_export, _export,
                             __doc__.split("\n\n")[1]),
    "import": cli.Subcommand("an HF Llama or Qwen3 folder -> a workdir training continues", _define_import,
                             _import, __doc__.split("\n\n")[1]),
}
