"""Scaling laws for this trainer: compute accounting, planning, sweeps, fits and plots.

    pretrain-jax scaling plan|sweep|fit|plot ...

Modules in pipeline order: accounting (N, FLOPs, C of a config), laws (the
parametric and power laws), planner (compute-optimal N, D and a model shape),
sweep (a grid of runs from a base config), results (the runs read back),
fit (laws fitted to results), plots (PNG figures).
"""
