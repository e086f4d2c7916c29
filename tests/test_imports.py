"""Imports point one way: layers -> models -> objectives/metrics -> data -> runs -> explain ->
train/rl -> commands/cli (docs/architecture.md). Late imports inside functions count too."""

import ast
import sys
from pathlib import Path

import attnlab

PACKAGE = Path(attnlab.__file__).parent
# Each layer may import its own and lower ranks only. Top-level modules that everything may use
# (errors, registry, catalog) rank lowest; catalog names classes as strings, never imports them.
RANK = {
    "__init__": 0, "errors": 0, "files": 0, "state_dicts": 0, "registry": 0, "catalog": 0, "status": 0,
    "layers": 1,
    "models": 2,
    "objectives": 3, "metrics": 3,
    "data": 4,
    "recipes": 5, "runs": 5,
    "explain": 6,
    "train": 7, "rl": 7,
    "commands": 8, "explorer": 8, "cli": 8, "__main__": 8,
}  # fmt: skip


def _layer(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def _imports(path: Path) -> list[tuple[int, str]]:
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found += [(node.lineno, node.module)]
            if node.module == "attnlab":  # from attnlab import train
                found += [(node.lineno, f"attnlab.{a.name}") for a in node.names]
    return [(line, name) for line, name in found if name.startswith("attnlab.")]


def upward_imports(package: Path = PACKAGE) -> list[str]:
    bad = []
    for path in sorted(package.rglob("*.py")):
        rel = path.relative_to(package)
        here = rel.parts[0].removesuffix(".py")
        if here not in RANK:
            bad.append(f"{rel}: not in the layer order")
            continue
        for line, name in _imports(path):
            there = _layer(name)
            if RANK.get(there, 99) > RANK[here]:
                bad.append(f"{rel}:{line} {here} -> {name}")
    return bad


def cross_family_imports(package: Path = PACKAGE) -> list[str]:
    bad = []
    for path in sorted((package / "models").rglob("*.py")):
        rel = path.relative_to(package / "models")
        for line, name in _imports(path):
            parts = name.split(".")
            if parts[:2] == ["attnlab", "models"] and len(parts) > 3 and parts[2] != rel.parts[0]:
                bad.append(f"models/{rel}:{line} -> {name}")
    return bad


def test_no_import_points_up_the_layer_order():
    assert upward_imports() == []


def test_a_model_family_imports_no_other_family():
    assert cross_family_imports() == []


def test_the_checks_see_an_upward_and_a_cross_family_import(tmp_path):
    fake = tmp_path / "attnlab"
    (fake / "models" / "a").mkdir(parents=True)
    (fake / "models" / "a" / "m.py").write_text(
        "def f():\n    from attnlab.train.engine import build\n\nfrom attnlab.models.b.x import Y\n"
    )
    assert upward_imports(fake) == ["models/a/m.py:2 models -> attnlab.train.engine"]
    assert cross_family_imports(fake) == ["models/a/m.py:4 -> attnlab.models.b.x"]


if __name__ == "__main__":
    print("\n".join(upward_imports() + cross_family_imports()))
    sys.exit(0)
