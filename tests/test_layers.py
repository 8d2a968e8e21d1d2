"""The import direction of the package, as a checked contract: each module imports only
modules below it (deferred imports and type-checking ones included)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"

#: top to bottom; a module imports none of its own layer and none above it
LAYERS = [
    ["sweep", "hydra_plugins.aesweep_optuna_sweeper.optuna_sweeper"],  # Hydra's side
    ["parent"],  # a sweep's parent run: the write side
    ["review"],  # a sweep read back from MLflow: the read side (report.py's too)
    ["experiment", "search"],  # one job; one study: independent of each other
]
#: the bottom: imports nothing of the package
FOUNDATIONS = ["names", "errors"]


def _module_name(path: Path) -> str:
    """``parent``, ``figures`` (a package counts as one module), ``hydra_plugins.x.y``."""
    parts = path.relative_to(SRC).with_suffix("").parts
    if parts[0] == "aesweep":
        return parts[1]
    return ".".join(parts)


def _modules() -> dict[str, list[Path]]:
    paths = [*SRC.glob("aesweep/**/*.py"), *SRC.glob("hydra_plugins/*/*.py")]
    modules: dict[str, list[Path]] = {}
    for path in paths:
        if path.relative_to(SRC).parts[-1] == "__init__.py" and path.parent.name == "aesweep":
            continue
        if path.name == "__init__.py" and path.parent.parent.name == "hydra_plugins":
            continue
        modules.setdefault(_module_name(path), []).append(path)
    return modules


def _imports(*paths: Path) -> set[str]:
    """The aesweep modules ``paths`` import, anywhere in the files (a package's own
    modules importing each other do not count)."""
    found = set()
    for path in paths:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                base = node.module
                names = [base] + [f"{base}.{alias.name}" for alias in node.names]
            else:
                continue
            for name in names:
                if name.startswith("aesweep."):
                    found.add(name.removeprefix("aesweep.").split(".")[0])
    own = {_module_name(path) for path in paths if path.is_relative_to(SRC)}
    return (found & set(_modules())) - own


def _layer(module: str) -> int:
    """0 for the top layer, ..., len(LAYERS) for every other module."""
    return next((i for i, layer in enumerate(LAYERS) if module in layer), len(LAYERS))


@pytest.mark.parametrize("module", sorted(_modules()))
def test_a_module_imports_only_modules_below_it(module):
    imported = _imports(*_modules()[module])
    if module in FOUNDATIONS:
        assert imported == set(), f"{module} must import nothing of aesweep"
        return
    layer = _layer(module)
    upward = sorted(
        name for name in imported if _layer(name) < layer or (_layer(name) == layer < len(LAYERS))
    )
    assert not upward, f"{module} (layer {layer}) imports {upward}, not below it"


def test_the_contract_sees_an_upward_import(tmp_path):
    # The check itself: experiment importing the read side would break the direction.
    path = tmp_path / "experiment.py"
    path.write_text("def f():\n    from aesweep.review import load_sweep\n")
    assert "review" in _imports(path)
    assert _layer("review") < _layer("experiment")
