"""The package's floors: nothing below ``training/`` imports it (issue: one model layer)."""

import ast
from pathlib import Path

import pytest

import clusterseg

PACKAGE = Path(clusterseg.__file__).resolve().parent
LOWER_FLOORS = ("nn", "models", "superpixels", "unsupervised", "instances", "io", "graph", "metrics", "datasets")


def _imported_modules(path: Path) -> set[str]:
    """Absolute names of every module imported by ``path`` (relative imports resolved), anywhere in it."""
    package = ".".join(("clusterseg", *path.relative_to(PACKAGE).with_suffix("").parts[:-1]))
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package.split(".")[: len(package.split(".")) - node.level + 1] if node.level else []
            module = ".".join([*base, node.module] if node.module else base)
            names.add(module)
            names.update(f"{module}.{alias.name}" for alias in node.names)
    return names


@pytest.mark.parametrize("floor", LOWER_FLOORS)
def test_lower_floors_never_import_training(floor):
    offenders = {
        str(path.relative_to(PACKAGE)): sorted(n for n in _imported_modules(path) if n.startswith("clusterseg.training"))
        for path in (PACKAGE / floor).rglob("*.py")
    }
    offenders = {k: v for k, v in offenders.items() if v}
    assert not offenders, f"modules below training/ import it: {offenders}"


def test_the_walk_sees_relative_and_lazy_imports(tmp_path):
    sample = PACKAGE / "superpixels" / "lnsnet.py"
    names = _imported_modules(sample)
    assert "clusterseg.models.lnsnet" in names  # a lazy import inside a function
    assert "clusterseg.nn.lnsnet" in names or any(n.startswith("clusterseg.nn") for n in names)
