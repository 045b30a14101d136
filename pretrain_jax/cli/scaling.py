"""Scaling laws: plan a compute budget, run a sweep, fit the laws, plot them.

    pretrain-jax scaling plan --compute=1e21 [--params=7e9] [--fit=ROOT/fit.json]
    pretrain-jax scaling sweep --config=configs/scaling/stdlib.py --root=workdirs/scaling
    pretrain-jax scaling sweep ... --launcher="sbatch launch/gpu_slurm.sbatch"   # print commands
    pretrain-jax scaling fit --root=workdirs/scaling [--tolerance=0.03]
    pretrain-jax scaling plot --root=workdirs/scaling --out=docs/scaling
"""

from __future__ import annotations

import json
import os
import sys
from typing import Sequence

from absl import flags

from pretrain_common import cli
from pretrain_jax import metrics
from pretrain_jax.scaling import accounting, laws, planner, report, results, sweep

USER_ERRORS = (ValueError, FileNotFoundError, KeyError)  # a fit, root or config that cannot be used


def _plan(args) -> None:
    named = {"chinchilla": laws.CHINCHILLA, f"{args.ratio:g} tokens/param": laws.TokensPerParameter(args.ratio)}
    if args.fit:
        named["fitted"] = report.fitted_law(args.fit)
    train_cfg = sweep.load_config_file(args.config)
    print(f"N_opt, D_opt: C = 6ND = {args.compute:.3e} FLOPs, the laws' convention (Hoffmann et al.)\n"
          f"trainer C: the suggested shape trained on D_opt tokens, priced as the trainer counts "
          f"(6N + attention at seq_len {train_cfg.seq_len})")
    print(f"{'law':<18} {'N_opt':>10} {'D_opt':>10} {'D/N':>6} {'loss':>6} | suggested shape (its N, trainer C)")
    for p in planner.plan(args.compute, named):
        cfg = planner.suggest_model(p.params, train_cfg.model, head_dim=args.head_dim)
        trainer_c = metrics.training_flops_per_token(cfg, train_cfg.seq_len) * p.tokens
        loss = f"{p.loss:6.3f}" if p.loss is not None else f"{'':6}"
        print(f"{p.method:<18} {p.params:10.3e} {p.tokens:10.3e} {p.tokens / p.params:6.1f} {loss} | dim {cfg.dim}, "
              f"{cfg.num_layers} layers, {cfg.num_heads}/{cfg.num_kv_heads} heads, mlp {cfg.mlp_dim} "
              f"({accounting.compute_params(cfg):.3e}, {trainer_c:.3e})")
    if args.params:
        for name, law in named.items():
            d = float(law.tokens_for(args.params))
            print(f"N = {args.params:.3e}: train on D = {d:.3e} tokens ({name}; 6ND = {6 * args.params * d:.3e})")


def _sweep(args) -> None:
    sweep_cfg = sweep.load_config_file(args.config)
    if args.launcher:
        print("\n".join(sweep.launch_commands(sweep_cfg, args.root, args.launcher)))
        return
    status = sweep.run_sweep(sweep_cfg, args.root)
    trained = sum(s == "trained" for s in status.values())
    print(f"sweep done: {trained} trained, {len(status) - trained} already finished; results in {args.root}")


def _fit(args) -> None:
    rows = results.collect(args.root)
    results.write_csv(rows, os.path.join(args.root, "results.csv"))
    out = report.analyze(rows, results.read_manifest(args.root)["mode"], samples=args.samples)
    with open(os.path.join(args.root, "fit.json"), "w", encoding="utf-8") as f:
        json.dump(out, f, indent=2)
    _print_report(out)
    if not args.tolerance or not out["holdout"]:
        return
    if any("parametric" not in c for c in out["holdout"]):
        sys.exit("FAIL no L(N, D) prediction for the held-out runs: the parametric law was not fitted")
    worst = max(c["parametric"]["relative_error"] for c in out["holdout"])
    if worst > args.tolerance:
        sys.exit(f"FAIL held-out prediction off by {100 * worst:.2f}% > {100 * args.tolerance:.1f}%")


def _frontier_lines(lc: dict) -> list[str]:
    return [f"L(C) on the frontier ({len(lc['frontier'])} runs): L = {lc['law']['k']:.4g} C^{lc['law']['p']:.4f}, "
            f"R2 {lc['goodness']['r2']:.4f}, rmse {100 * lc['goodness']['rmse']:.2f}%"]


def _parametric_lines(par: dict) -> list[str]:
    p, g = par["law"], par["goodness"]
    return [f"L(N, D) = {p['E']:.3f} + {p['A']:.4g}/N^{p['alpha']:.3f} + {p['B']:.4g}/D^{p['beta']:.3f}: "
            f"R2 {g['r2']:.4f}, rmse {100 * g['rmse']:.2f}%, worst {100 * g['max_abs']:.2f}%; "
            f"N_opt ~ C^{par['exponents']['a']:.3f} with C = 6ND"]


def _isoflop_lines(iso: dict) -> list[str]:
    return ["IsoFLOP profiles: C as the runs spent it (6N + attention); D_opt = C / FLOPs per token at N_opt, "
            "interpolated over the runs",
            *(f"IsoFLOP C {prof['compute']:.3g}: N_opt {prof['params_opt']:.3e}, D_opt {prof['tokens_opt']:.3e} "
              f"({prof['tokens_opt'] / prof['params_opt']:.1f} tokens per parameter), loss {prof['loss_opt']:.4f}"
              + ("" if prof["inside"] else " (outside its sizes: not in the law)") for prof in iso["profiles"]),
            f"IsoFLOP N_opt = {iso['params_opt_law']['k']:.4g} C^{iso['params_opt_law']['p']:.3f}"]


def _best_lines(name: str):
    return lambda best: [f"{name} = {best['law']['k']:.4g} C^{best['law']['p']:.3f}"] if "law" in best else []


SECTIONS = {"loss_vs_compute": _frontier_lines, "parametric": _parametric_lines, "isoflop": _isoflop_lines,
            "best_learning_rate": _best_lines("best learning rate"), "best_batch_size": _best_lines("best batch size")}


def _print_report(out: dict) -> None:
    cells = (f" (the best of each of {out['cells']} size x budget cells in L(N, D) and IsoFLOP)"
             if out["cells"] < out["runs"] else "")
    print(f"{out['runs']} runs fitted{cells}; unfinished: {out['unfinished'] or 'none'}")
    for key, lines in SECTIONS.items():
        for line in ([f"{key}: not fitted: {out[key]['error']}"] if "error" in out[key] else lines(out[key])
                     ) if key in out else []:
            print(line)
    for check in out["holdout"]:
        for law in ("parametric", "loss_vs_compute"):
            if law in check:
                c = check[law]
                interval = (f", 90% interval [{c['interval_5_95'][0]:.4f}, {c['interval_5_95'][1]:.4f}] over "
                            f"{out[law]['bootstrap_fits']} bootstrap fits" if "interval_5_95" in c else "")
                what = ("L(N, D) predicts" if law == "parametric" else
                        "the L(C) frontier, the best loss at its compute (a bound, not a prediction, unless the "
                        "run is compute-optimal), is")
                print(f"held out {check['name']}: observed {check['observed']:.4f}; {what} "
                      f"{c['predicted']:.4f} ({100 * c['relative_error']:.2f}% off{interval})")


def _plot(args) -> None:
    path = os.path.join(args.root, "fit.json")
    if not os.path.exists(path):
        raise FileNotFoundError(f"{path} not found: run `pretrain-jax scaling fit --root={args.root}` first")
    with open(path, encoding="utf-8") as f:
        out = json.load(f)
    from pretrain_jax.scaling import plots  # matplotlib only when plotting

    for written in plots.plot_all(results.collect(args.root), out, args.out or os.path.join(args.root, "plots")):
        print(f"wrote {written}")


def _positive(fv: flags.FlagValues, *names: str) -> None:
    for name in names:
        flags.register_validator(name, lambda v: v is None or v > 0, message=f"--{name} must be positive",
                                 flag_values=fv)


def _define_plan(fv: flags.FlagValues, argv: Sequence[str]) -> None:
    flags.DEFINE_float("compute", None, "budget C = 6ND in FLOPs", flag_values=fv)
    flags.DEFINE_float("params", None, "also: the tokens to train this many parameters on", flag_values=fv)
    flags.DEFINE_string("fit", None, "fit.json of a sweep: adds its fitted law", flag_values=fv)
    flags.DEFINE_string("config", "configs/base.py", "training config whose vocabulary the shape keeps and whose "
                        "seq_len prices it", flag_values=fv)
    flags.DEFINE_integer("head_dim", 128, "attention head width of the suggested shape", flag_values=fv)
    flags.DEFINE_float("ratio", 20.0, "tokens per parameter of the rule of thumb", flag_values=fv)
    _positive(fv, "compute", "params", "head_dim", "ratio")


def _define_sweep(fv: flags.FlagValues, argv: Sequence[str]) -> None:
    flags.DEFINE_string("config", None, "sweep config file (schema: configs/scaling/base.py)", flag_values=fv)
    flags.DEFINE_string("root", None, "folder of the runs' workdirs", flag_values=fv)
    flags.DEFINE_string("launcher", None, "print one command per unfinished run for this launch script, e.g. "
                        "launch/local.sh, instead of training here", flag_values=fv)


def _define_fit(fv: flags.FlagValues, argv: Sequence[str]) -> None:
    flags.DEFINE_string("root", None, "the sweep's folder", flag_values=fv)
    flags.DEFINE_integer("samples", 50, "bootstrap resamples for prediction intervals", flag_values=fv)
    flags.DEFINE_float("tolerance", 0.03, "fail when a held-out run's loss is predicted worse than this "
                       "(relative); 0: never", flag_values=fv)


def _define_plot(fv: flags.FlagValues, argv: Sequence[str]) -> None:
    flags.DEFINE_string("root", None, "the sweep's folder", flag_values=fv)
    flags.DEFINE_string("out", None, "folder for the PNGs (default ROOT/plots)", flag_values=fv)


def _requiring(run, *names: str):
    def checked(args: flags.FlagValues) -> None:
        cli.required(args, *names)
        run(args)
    return checked


def _usage(verb: str) -> str:
    """The lines of this module's docstring that show `verb`."""
    return "\n".join(line for line in __doc__.splitlines() if f"scaling {verb} " in line)


SUBCOMMANDS = {
    "plan": cli.Subcommand("compute-optimal N and D for a budget, and a model shape near N", _define_plan,
                           _requiring(_plan, "compute"), _usage("plan")),
    "sweep": cli.Subcommand("train every unfinished run of a sweep, or print their launch commands", _define_sweep,
                            _requiring(_sweep, "config", "root"), _usage("sweep")),
    "fit": cli.Subcommand("fit the laws to a sweep's finished runs: ROOT/fit.json, ROOT/results.csv", _define_fit,
                          _requiring(_fit, "root"), _usage("fit")),
    "plot": cli.Subcommand("PNG figures from ROOT/fit.json", _define_plot, _requiring(_plot, "root"), _usage("plot")),
}
