"""The notebooks' title and setup cells (refdense/course/header.py).

The committed notebooks carry exactly what ``python -m refdense.course.header`` writes; writing
again changes nothing. The setup cell is run for real: here (refdense imports: it does nothing),
and in a scratch venv without refdense, as on Colab (a stand-in ``google.colab`` records the widget
manager call) with the package installed from a local wheel instead of the repository.
"""

from __future__ import annotations

import copy
import re
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from test_install import REPO, build_wheel, clean_env, run, scratch_venv

from refdense.course.header import course_cells, header_cells, is_header, main, project_settings, with_header

NOTEBOOKS = sorted((REPO / "notebooks").glob("*.ipynb"))


def setup_source() -> str:
    return nbformat.read(NOTEBOOKS[0], as_version=4).cells[1].source


@pytest.mark.clone
def test_the_repository_is_set_once_in_pyproject():
    repository, tag = project_settings()
    assert re.fullmatch(r"https://github\.com/[\w.-]+/[\w.-]+", repository)
    assert re.fullmatch(r"v\d+\.\d+\.\d+", tag)


@pytest.mark.clone
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_every_notebook_starts_with_the_badge_and_the_setup_cell(path: Path):
    nb = nbformat.read(path, as_version=4)
    repository, tag = project_settings()
    title, setup = nb.cells[:2]
    assert [cell.metadata.get("refdense") for cell in (title, setup)] == [{"header": "title"}, {"header": "setup"}]
    assert re.match(r"# \d\d · \S", title.source), f"{path.name}: the title cell must start with the title"
    link = f"https://colab.research.google.com/github/{repository.removeprefix('https://github.com/')}/blob/{tag}/notebooks/{path.name}"
    assert f"]({link})" in title.source
    assert f"git+{repository}@{tag}" in setup.source
    assert sum(is_header(cell) for cell in nb.cells) == 2
    rewritten = with_header(copy.deepcopy(nb), path.name, repository, tag)
    def header(cells):
        return [(cell.cell_type, cell.source, cell.metadata, cell.get("id")) for cell in cells[:2]]

    assert header(rewritten.cells) == header(nb.cells) and rewritten.cells[2:] == nb.cells[2:], (
        f"{path.name}: its header cells are not what refdense.course.header writes; "
        "run python -m refdense.course.header notebooks, then make notebooks"
    )


@pytest.mark.clone
def test_writing_the_header_moves_the_title_once_and_is_idempotent(tmp_path, capsys):
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell("# 00 · A title\n\n**Estimated time:** 1 minute"),
                nbformat.v4.new_code_cell("x = 1")]
    path = tmp_path / "00_a.ipynb"
    nbformat.write(nb, path)
    assert main([str(tmp_path)]) == 0
    first = path.read_text(encoding="utf-8")
    written = nbformat.read(path, as_version=4)
    assert written.cells[0].source.startswith("# 00 · A title\n\n[![Open In Colab]")
    assert [cell.source for cell in course_cells(written)] == ["**Estimated time:** 1 minute", "x = 1"]
    assert main([str(path)]) == 0
    assert path.read_text(encoding="utf-8") == first
    assert capsys.readouterr().out.splitlines() == [f"{path}: header written", f"{path}: header current"]

    written.cells[2].source = "# 00 · Changed\nthe rest"  # a course cell that starts with a title again
    refreshed = with_header(written, path.name, "https://github.com/o/n", "v9.9.9")
    assert refreshed.cells[0].source.startswith("# 00 · Changed\n") and refreshed.cells[2].source == "the rest"
    assert len(refreshed.cells) == 4


def test_a_notebook_without_a_title_or_a_github_repository_is_refused():
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("x = 1")]
    with pytest.raises(ValueError, match="untitled.ipynb: no title"):
        with_header(nb, "untitled.ipynb", "https://github.com/o/n", "v1.0.0")
    with pytest.raises(ValueError, match="https://github.com/OWNER/NAME"):
        header_cells("a.ipynb", "# a", "https://example.org/o/n", "v1.0.0")


def test_the_setup_cell_does_nothing_where_refdense_imports():
    done = subprocess.run([sys.executable, "-c", setup_source()], capture_output=True, text=True, timeout=60,
                          cwd=REPO)
    assert done.returncode == 0 and done.stdout == "" and done.stderr == ""


COLAB_OUTPUT = """
import os
def enable_custom_widget_manager():
    open(os.environ["WIDGET_MANAGER_MARK"], "w").close()
"""


@pytest.mark.slow
def test_the_setup_cell_installs_refdense_on_colab_and_enables_widgets(tmp_path):
    wheel = build_wheel(tmp_path)
    python, site, _ = scratch_venv(tmp_path / "venv", course_stack=True)
    cell = re.sub(r'^PACKAGE = ".*"$', f'PACKAGE = "refdense[course] @ {wheel.as_uri()}"', setup_source(), flags=re.M)
    assert cell != setup_source()
    home, elsewhere = tmp_path / "home", tmp_path / "elsewhere"
    home.mkdir()
    elsewhere.mkdir()
    env = clean_env(home)
    env.update(PIP_NO_INDEX="1", PIP_DISABLE_PIP_VERSION_CHECK="1")

    refused = subprocess.run([str(python), "-c", cell], cwd=elsewhere, env=env, capture_output=True, text=True,
                             timeout=60)
    assert refused.returncode != 0 and "refdense is not installed here: pip install" in refused.stderr

    colab = tmp_path / "colab"  # google.colab as Colab's kernel has it, reduced to the call the cell makes
    (colab / "google" / "colab").mkdir(parents=True)
    (colab / "google" / "colab" / "__init__.py").write_text("")
    (colab / "google" / "colab" / "output.py").write_text(COLAB_OUTPUT)
    mark = tmp_path / "widget-manager-enabled"
    env.update(PYTHONPATH=str(colab), WIDGET_MANAGER_MARK=str(mark))
    printed = run([str(python), "-c", cell], elsewhere, env)
    assert printed.startswith(f"Installed refdense[course] @ {wheel.as_uri()} and enabled Colab's widget manager")
    assert mark.is_file()
    imported = run([str(python), "-c", "import refdense; print(refdense.__file__)"], elsewhere, env)
    assert Path(imported.strip()).is_relative_to(site)

    mark.unlink()
    assert run([str(python), "-c", cell], elsewhere, env) == ""  # installed: the second run does nothing
    assert not mark.exists()
