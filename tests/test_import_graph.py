"""The packages' layers, read from every import statement (lazy ones inside functions too):

    pretrain_common   the contracts both packages share: dataset records, tokenizer, ConfigError, command line
    data_prep         imports pretrain_common only
    pretrain_jax      imports pretrain_common only
    configs/          experiments: import the packages; nothing installed imports them

and inside a package, library modules never import its command-line layer (pretrain_jax/cli, __main__).
"""

import ast
import os

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PACKAGES = ("pretrain_common", "data_prep", "pretrain_jax")
MAY_IMPORT = {"pretrain_common": set(), "data_prep": {"pretrain_common"}, "pretrain_jax": {"pretrain_common"}}
COMMAND_LINE = ("pretrain_jax.cli", "pretrain_jax.__main__", "data_prep.__main__")
FIRST_PARTY = (*PACKAGES, "configs", "benchmarks", "launch", "tests")


def modules():
    """(dotted name, path) of every module of the three packages."""
    for package in PACKAGES:
        for root, _, files in os.walk(os.path.join(REPO, package)):
            for name in sorted(files):
                if name.endswith(".py"):
                    path = os.path.join(root, name)
                    dotted = os.path.relpath(path, REPO)[:-3].replace(os.sep, ".").removesuffix(".__init__")
                    yield dotted, path


def imports(dotted: str, path: str) -> set[str]:
    """Every first-party module name `path` imports, relative imports resolved."""
    names = set()
    for node in ast.walk(ast.parse(open(path).read(), path)):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = dotted.split(".")
                keep = len(parts) - node.level + (1 if path.endswith("__init__.py") else 0)
                base = ".".join(parts[:keep] + ([base] if base else []))
            names.add(base)
            names.update(f"{base}.{alias.name}" for alias in node.names)
    return {n for n in names if n.split(".")[0] in FIRST_PARTY}


MODULES = list(modules())


def is_under(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix + ".")


@pytest.mark.parametrize("dotted,path", MODULES, ids=[m for m, _ in MODULES])
def test_a_module_imports_only_its_package_and_the_layers_below(dotted, path):
    package = dotted.split(".")[0]
    allowed = {package, *MAY_IMPORT[package]}
    wrong = sorted(n for n in imports(dotted, path) if n.split(".")[0] not in allowed)
    assert not wrong, f"{path} imports {wrong}: {package} may import {sorted(allowed)} only"


@pytest.mark.parametrize("dotted,path", MODULES, ids=[m for m, _ in MODULES])
def test_library_modules_do_not_import_the_command_line(dotted, path):
    if any(is_under(dotted, c) for c in COMMAND_LINE):
        return
    wrong = sorted(n for n in imports(dotted, path) if any(is_under(n, c) for c in COMMAND_LINE))
    # `if __name__ == "__main__"` aliases (`python -m pretrain_jax.train`) hand over to the command line
    main_block = "if __name__ == \"__main__\":" in open(path).read()
    assert not wrong or (main_block and wrong == ["pretrain_jax.cli"]), f"{path} imports {wrong}"


def test_the_walker_sees_a_wrong_import(tmp_path):
    module = tmp_path / "stages.py"
    module.write_text("def f():\n    from configs import base\n    from ..pretrain_jax import model\n")
    assert imports("data_prep.stages", str(module)) == {"configs", "configs.base", "pretrain_jax",
                                                        "pretrain_jax.model"}
    nested = tmp_path / "minhash.py"
    nested.write_text("from .. import records\nfrom . import exact\n")
    assert imports("data_prep.dedup.minhash", str(nested)) == {"data_prep", "data_prep.records", "data_prep.dedup",
                                                               "data_prep.dedup.exact"}


def test_configs_are_not_installed_as_a_package():
    setup = open(os.path.join(REPO, "setup.py")).read()
    packages = ast.literal_eval(setup.split("find_packages(include=")[1].split(")")[0])
    assert not any(is_under(p, "configs") or p == "configs.*" for p in packages)
