"""The scaling-law command line.

    python -m pretrain_jax.scaling plan --compute=1e21 [--params=7e9] [--fit=ROOT/fit.json]
    python -m pretrain_jax.scaling sweep --config=configs/scaling/stdlib.py --root=workdirs/scaling
    python -m pretrain_jax.scaling sweep ... --launcher="sbatch launch/gpu_slurm.sbatch"   # print commands
    python -m pretrain_jax.scaling fit --root=workdirs/scaling [--tolerance=0.03]
    python -m pretrain_jax.scaling plot --root=workdirs/scaling --out=docs/scaling
"""

from __future__ import annotations

import argparse
import json
import os
import sys

from pretrain_jax import metrics
from pretrain_jax.scaling import accounting, laws, planner, report, results, sweep


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
        sys.exit(f"FATAL {path} not found: run `python -m pretrain_jax.scaling fit --root={args.root}` first")
    with open(path, encoding="utf-8") as f:
        out = json.load(f)
    from pretrain_jax.scaling import plots  # matplotlib only when plotting

    for written in plots.plot_all(results.collect(args.root), out, args.out or os.path.join(args.root, "plots")):
        print(f"wrote {written}")


def _positive(kind: type):
    """An argparse type: a number of `kind` above 0, or a usage error that says so."""
    def parse(text: str):
        value = kind(text)
        if not value > 0:  # nan too
            raise argparse.ArgumentTypeError(f"must be positive, got {text}")
        return value
    parse.__name__ = f"positive {kind.__name__}"  # argparse's message for a non-number: invalid positive float value
    return parse


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m pretrain_jax.scaling", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("plan", help="compute-optimal N and D for a budget, and a model shape near N")
    p.add_argument("--compute", type=_positive(float), required=True, help="budget C = 6ND in FLOPs")
    p.add_argument("--params", type=_positive(float), help="also: the tokens to train this many parameters on")
    p.add_argument("--fit", help="fit.json of a sweep: adds its fitted law")
    p.add_argument("--config", default="configs/base.py",
                   help="training config whose vocabulary the shape keeps and whose seq_len prices it")
    p.add_argument("--head_dim", type=_positive(int), default=128, help="attention head width of the suggested shape")
    p.add_argument("--ratio", type=_positive(float), default=20.0, help="tokens per parameter of the rule of thumb")
    p.set_defaults(run=_plan)
    p = sub.add_parser("sweep", help="train every unfinished run of a sweep, or print their launch commands")
    p.add_argument("--config", required=True, help="sweep config file (schema: configs/scaling/base.py)")
    p.add_argument("--root", required=True, help="folder of the runs' workdirs")
    p.add_argument("--launcher", help="print one command per unfinished run for this launch script, e.g. "
                                      "launch/local.sh, instead of training here")
    p.set_defaults(run=_sweep)
    p = sub.add_parser("fit", help="fit the laws to a sweep's finished runs: ROOT/fit.json, ROOT/results.csv")
    p.add_argument("--root", required=True)
    p.add_argument("--samples", type=int, default=50, help="bootstrap resamples for prediction intervals")
    p.add_argument("--tolerance", type=float, default=0.03,
                   help="fail when a held-out run's loss is predicted worse than this (relative); 0: never")
    p.set_defaults(run=_fit)
    p = sub.add_parser("plot", help="PNG figures from ROOT/fit.json")
    p.add_argument("--root", required=True)
    p.add_argument("--out", help="folder for the PNGs (default ROOT/plots)")
    p.set_defaults(run=_plot)
    return parser


def main(argv: list[str] | None = None) -> None:
    args = _parser().parse_args(argv)
    try:
        args.run(args)
    except (ValueError, FileNotFoundError, KeyError) as e:
        sys.exit(f"FATAL {e}")


if __name__ == "__main__":
    main()
