"""Every test that needs the course extra is marked ``course``, so that ``-m "not course"`` runs in an
environment without it (README, Tests).

Read from the sources, without importing them: a test needs the extra when it imports one of the
extra's packages (``refdense.extras.EXTRA_PACKAGES``, nbval) or a module of refdense that does on
import (``refdense.viz``, ``refdense.widgets``, the notebook tools of ``refdense.course``), in its
file's top, in its own body, or in a fixture or helper of its file that it names. Its mark comes from
``tests/conftest.py`` (whole files) or from its decorators.
"""

from __future__ import annotations

import ast
from functools import cache
from pathlib import Path

import pytest
from conftest import file_markers

from refdense.extras import EXTRA_PACKAGES

TESTS = Path(__file__).resolve().parent
PACKAGE = TESTS.parent / "refdense"
STACK = (*EXTRA_PACKAGES, "nbval")


def imports(body: list[ast.stmt]) -> set[str]:
    """The modules ``body`` imports when it runs, functions' bodies and ``if TYPE_CHECKING:`` aside; a
    ``require_extra("matplotlib", ...)`` of ``refdense.extras`` counts as an import."""
    found: set[str] = set()
    for node in body:
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found |= {node.module, *(f"{node.module}.{alias.name}" for alias in node.names)}
        elif isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            found |= imports(node.orelse)
        elif isinstance(node, ast.Expr | ast.Assign) and isinstance(call := node.value, ast.Call):
            if ast.unparse(call.func) == "require_extra" and isinstance(call.args[0], ast.Constant):
                found.add(call.args[0].value)
        elif isinstance(node, ast.If | ast.Try | ast.With | ast.ClassDef):
            found |= imports([child for child in ast.iter_child_nodes(node) if isinstance(child, ast.stmt)])
    return found


def source_of(module: str) -> Path | None:
    """The file of the refdense module ``module`` (a module or a package), None when there is none
    (``refdense.data.DatasetInfo``: a name in a module)."""
    path = PACKAGE.parent.joinpath(*module.split("."))
    for candidate in (path.with_suffix(".py"), path / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


@cache
def imported_by(module: str) -> frozenset[str]:
    """What importing the refdense module ``module`` imports first: its parent packages and the
    modules its top imports."""
    path = source_of(module)
    if path is None:
        return frozenset()
    parents = {".".join(module.split(".")[:n]) for n in range(1, module.count(".") + 1)}
    return frozenset(parents | imports(ast.parse(path.read_text()).body))


@cache
def needs_extra(module: str) -> bool:
    """Whether importing ``module`` imports a package of the course extra, itself or through the
    refdense modules it imports."""
    seen, todo = set(), [module]
    while todo:
        name = todo.pop()
        if name.split(".")[0] in STACK:
            return True
        if name not in seen and name.split(".")[0] == "refdense":
            seen.add(name)
            todo.extend(imported_by(name))
    return False


def functions_needing_extra(tree: ast.Module) -> set[str]:
    """The top-level functions of a test file (tests, fixtures, helpers) that import the course extra,
    themselves or through another such function they name."""
    functions = {node.name: node for node in tree.body if isinstance(node, ast.FunctionDef)}
    needing = {
        name
        for name, node in functions.items()
        if any(needs_extra(m) for n in ast.walk(node) if isinstance(n, ast.stmt) for m in imports([n]))
    }
    while True:
        more = {
            name
            for name, node in functions.items()
            if name not in needing
            and named(node) & needing
        }
        if not more:
            return needing
        needing |= more


def named(node: ast.FunctionDef) -> set[str]:
    """The names a function uses: in its body, as its arguments (fixtures), in ``usefixtures``."""
    used = {n.id for n in ast.walk(node) if isinstance(n, ast.Name)} | {a.arg for a in node.args.args}
    return used | {
        n.value for d in node.decorator_list for n in ast.walk(d) if isinstance(n, ast.Constant) and isinstance(n.value, str)
    }


def marks(node: ast.FunctionDef) -> set[str]:
    return {
        ast.unparse(d).split(".")[2].split("(")[0]
        for d in node.decorator_list
        if ast.unparse(d).startswith("pytest.mark.")
    }


def unmarked_tests_needing_extra(path: Path) -> list[str]:
    tree = ast.parse(path.read_text())
    module_marks = [ast.unparse(node) for node in tree.body if isinstance(node, ast.Assign)
                    and ast.unparse(node.targets[0]) == "pytestmark"]
    if "course" in file_markers(path) or any("pytest.mark.course" in marks for marks in module_marks):
        return []
    whole_file = any(needs_extra(module) for module in imports(tree.body))
    needing = functions_needing_extra(tree)
    return [
        node.name
        for node in tree.body
        if isinstance(node, ast.FunctionDef) and node.name.startswith("test")
        and (whole_file or node.name in needing) and "course" not in marks(node)
    ]


def test_the_scan_sees_the_course_stack_through_refdense():
    assert needs_extra("matplotlib.pyplot") and needs_extra("refdense.viz.metrics") and needs_extra("refdense.widgets")
    assert needs_extra("refdense.course.execute")  # nbformat at its top
    assert needs_extra("refdense.viz.style")  # nothing of matplotlib itself, but its package requires it
    assert not needs_extra("refdense.train") and not needs_extra("refdense.course.results")


def test_the_scan_finds_an_unmarked_test_and_its_fixture(tmp_path):
    (tmp_path / "test_example.py").write_text(
        "import pytest\n\n"
        "@pytest.fixture\ndef figure():\n    import matplotlib.pyplot as plt\n    return plt.figure()\n\n"
        "def test_draws(figure):\n    pass\n\n"
        "@pytest.mark.course\ndef test_marked(figure):\n    pass\n\n"
        "def test_plain():\n    import refdense.train\n"
    )
    assert unmarked_tests_needing_extra(tmp_path / "test_example.py") == ["test_draws"]


@pytest.mark.parametrize("path", sorted(TESTS.glob("test_*.py")), ids=lambda path: path.name)
def test_every_test_that_needs_the_course_extra_is_marked_course(path):
    assert unmarked_tests_needing_extra(path) == [], f"{path.name}: mark these course (tests/conftest.py or a decorator)"
