"""The package's import graph follows its layers (docs/DESIGN.md, "Layers"): no upward import,
and no import cycle between the modules of a unit.

A unit is a top-level module or subpackage of ``refdense``. A unit may import itself and the units
of lower layers, never a unit of its own layer or above. Imports inside functions count as well:
they are dependencies too, only deferred; so do imports for type checkers (``if TYPE_CHECKING:``)
in the cycle check: two modules that name each other's types are one module in two files.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "refdense"

# Bottom to top; the same order as docs/DESIGN.md.
LAYERS = (
    ("extras", "io", "paths", "progress", "schema", "threads"),  # utilities
    ("data", "metrics", "models", "losses", "weights"),  # the parts, each on its own
    ("text", "prepare", "viz"),  # text encoders, real datasets, plots
    ("synth",),  # the synthetic benchmark (its cache embeds the text dials' prompts)
    ("train",),  # the engine: everything below
    ("experiments",),  # recipes on the engine: demo, ablate, sweep, study, probe, launch
    ("course",),  # helpers of the notebooks
    ("widgets",),  # notebook explorers (course, viz)
    ("cli",),  # the command line
    ("__main__",),  # python -m refdense
)
LAYER = {unit: level for level, units in enumerate(LAYERS) for unit in units}


def unit_of(module: str) -> str | None:
    """``refdense.data.info`` -> ``data``; ``refdense`` itself (its ``__init__``) -> None."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else None


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_modules(path: Path) -> list[tuple[int, str]]:
    """(line, module) of every ``refdense`` import in the file, relative ones resolved."""
    module = module_name(path)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                source = ".".join(base + ([node.module] if node.module else []))
            else:
                source = node.module or ""
            # ``from refdense import synth`` imports the module refdense.synth
            found += [(node.lineno, f"{source}.{alias.name}" if source == "refdense" else source)
                      for alias in node.names]
    return [(line, name) for line, name in found if name.split(".")[0] == "refdense"]


def package_files() -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("*.py") if "__pycache__" not in p.parts)


def test_every_unit_of_the_package_has_a_layer():
    units = {unit_of(module_name(path)) for path in package_files()} - {None}
    assert units <= LAYER.keys(), f"place {sorted(units - LAYER.keys())} in LAYERS (and in docs/DESIGN.md)"


def test_the_layers_are_the_ones_docs_design_states():
    design = (PACKAGE.parent / "docs" / "DESIGN.md").read_text(encoding="utf-8")
    stated = design.split("## Layers", 1)[1].split("\n## ", 1)[0]
    rows = [line.split(":", 1)[1] for line in stated.splitlines() if line.startswith("- layer ")]
    assert [tuple(name.strip(" `.") for name in row.split(",")) for row in rows] == list(LAYERS)


@pytest.mark.parametrize("path", package_files(), ids=lambda p: str(p.relative_to(PACKAGE.parent)))
def test_no_module_imports_upward(path):
    unit = unit_of(module_name(path))
    if unit is None:  # refdense/__init__.py imports nothing
        assert imported_modules(path) == []
        return
    upward = [f"line {line}: {name} (layer {LAYER.get(unit_of(name))})" for line, name in imported_modules(path)
              if unit_of(name) not in (None, unit) and LAYER[unit_of(name)] >= LAYER[unit]]
    assert not upward, f"{path.name} (unit {unit}, layer {LAYER[unit]}) imports its layer or above: {upward}"


def imported_package_modules(path: Path, modules: set[str]) -> set[str]:
    """The modules of ``modules`` that the file imports, anywhere in it. ``from refdense.train import
    distributed`` imports the module ``refdense.train.distributed``; ``from refdense.train import
    TrainConfig`` the package ``refdense.train`` (its ``__init__``)."""
    module = module_name(path)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            source = node.module or ""
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                source = ".".join(base + ([node.module] if node.module else []))
            submodules = {f"{source}.{alias.name}" for alias in node.names} & modules
            found.update(submodules or {source})
    return found & modules - {module}


def import_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The cycles of a directed graph: its strongly connected components of more than one node
    (Tarjan's algorithm), each sorted, or a node that imports itself."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    cycles = []

    def connect(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for other in sorted(graph[node]):
            if other not in index:
                connect(other)
                low[node] = min(low[node], low[other])
            elif other in stack:
                low[node] = min(low[node], index[other])
        if low[node] == index[node]:
            component = []
            while (top := stack.pop()) != node:
                component.append(top)
            component.append(node)
            if len(component) > 1 or node in graph[node]:
                cycles.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            connect(node)
    return cycles


def test_import_cycles_are_found():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}, "e": {"e"}}
    assert import_cycles(graph) == [["a", "b", "c"], ["e"]]
    assert import_cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_cycle_within_a_unit():
    paths = {module_name(path): path for path in package_files()}
    graph = {
        module: {other for other in imported_package_modules(path, set(paths)) if unit_of(other) == unit_of(module)}
        for module, path in paths.items()
        if unit_of(module) is not None
    }
    assert "refdense.train.evaluate" in graph["refdense.train.loop"]  # the graph sees the unit's imports
    assert import_cycles(graph) == []


def test_the_files_conftest_marks_exist():
    from conftest import MARKED_FILES

    missing = [name for files in MARKED_FILES.values() for name in files if not (PACKAGE.parent / "tests" / name).is_file()]
    assert not missing, f"tests/conftest.py marks files that do not exist: {missing}"
