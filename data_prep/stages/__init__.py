"""Every curation stage by name: each module of this package defines and registers its own (data_prep/stage.py).

A new stage is a module here and its config group in data_prep/schema.py; nothing else
lists stages. `check` runs before any document is read, `build` gives the stages of
`config.stages` in order, and `files` the files their results depend on.
"""

from __future__ import annotations

import importlib
import pkgutil

import ml_collections

from data_prep.stage import REGISTRY, Stage
from pretrain_common.errors import ConfigError

for _module in pkgutil.iter_modules(__path__):
    importlib.import_module(f"{__name__}.{_module.name}")


def check(config: ml_collections.ConfigDict) -> None:
    """Every stage of `config.stages` known, listed once and checked, so a bad name or setting fails
    before any document is read, not after a pass over the corpus."""
    names = list(config.stages)
    unknown = [name for name in names if name not in REGISTRY]
    if unknown:
        raise ConfigError(f"config.stages has unknown stages {unknown}; known: {sorted(REGISTRY)}")
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise ConfigError(f"config.stages lists {repeated} more than once")
    for index, name in enumerate(names):
        REGISTRY[name].check(config, names[:index])


def build(config: ml_collections.ConfigDict) -> list[Stage]:
    """The stages of `config.stages`, in order, built from their config groups."""
    return [REGISTRY[name].from_config(config) for name in config.stages]


def files(config: ml_collections.ConfigDict) -> list[str]:
    """The files, beside the inputs, that the stages of `config.stages` read: their results depend on them."""
    return [path for name in config.stages for path in REGISTRY[name].files(config)]
