"""Data flows one way — structures → inputs → workflows → store → analysis → report — and so do
the imports: no module imports a later stage's module, not even inside a function."""

from __future__ import annotations

import ast
from pathlib import Path

import ncmflow

PACKAGE = Path(ncmflow.__file__).parent
# ncmflow.workflows holds the store too (workflows/store.py): it is written by the runs and
# read by analysis; the CLI and the summary are the report end
# the package root is the Python API (every name imported on first use, README "Python API"):
# the report end too, like the CLI; ncmflow.api holds its own functions
LAYERS = {"structures": 1, "inputs": 2, "workflows": 3, "analysis": 4,
          "cli": 5, "summary": 5, "deferred": 5, "__main__": 5, "api": 5}
ROOT = 5


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def layer(module: str) -> int:
    parts = module.split(".")
    return ROOT if len(parts) == 1 else LAYERS[parts[1]]


def imports(path: Path) -> set[str]:
    """Every ncmflow module ``path`` imports, at module level or inside functions."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.split(".")[0] == "ncmflow"}
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "ncmflow":
            found.add(node.module)
            # `from ncmflow import structures` imports the subpackage
            found |= {f"{node.module}.{a.name}" for a in node.names
                      if (PACKAGE.parent / node.module.replace(".", "/") / a.name).exists()}
    return found


def test_every_module_has_a_layer() -> None:
    for path in PACKAGE.rglob("*.py"):
        layer(module_name(path))  # a new top-level module must be placed in LAYERS


def test_no_import_runs_back_up() -> None:
    upward = sorted(f"{module_name(p)} (stage {layer(module_name(p))}) imports {m} (stage {layer(m)})"
                    for p in PACKAGE.rglob("*.py") for m in imports(p)
                    if layer(m) > layer(module_name(p)))
    assert upward == []


def test_the_checker_sees_lazy_imports(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text("def f():\n    from ncmflow.analysis.cdd import DensityGrid\n    import ncmflow.cli\n")
    assert imports(sample) == {"ncmflow.analysis.cdd", "ncmflow.cli"}


def test_no_module_imports_itself_through_others() -> None:
    """No cycles, lazy imports included: a cycle hidden in a function is still a cycle."""
    modules = {module_name(p): p for p in PACKAGE.rglob("*.py")}
    graph = {m: {t for t in imports(p) if t in modules and t != m} for m, p in modules.items()}

    def reachable(start: str) -> set[str]:
        seen, todo = set(), [start]
        while todo:
            for nxt in graph[todo.pop()] - seen:
                seen.add(nxt)
                todo.append(nxt)
        return seen

    assert sorted(m for m in graph if m in reachable(m)) == []
