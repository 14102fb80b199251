"""What a stored notebook keeps: no widget views or state, an explorer's static fallback, restore."""

from __future__ import annotations

import base64
import json
import subprocess

import matplotlib

matplotlib.use("Agg")

import nbformat  # noqa: E402
import pytest  # noqa: E402

from refdense.course import storage  # noqa: E402
from refdense.course.storage import RUN_TO_INTERACT, WIDGET_VIEW_MIME, pre_save_hook, strip_widgets  # noqa: E402
from refdense.widgets import bce_explorer  # noqa: E402

VIEW = {"model_id": "abc", "version_major": 2, "version_minor": 0}


def _saved_notebook() -> dict:
    """A notebook as JupyterLab sends it to the server on save (a plain dict)."""
    nb = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_code_cell("explorer", execution_count=4, outputs=[
            nbformat.v4.new_output("display_data", data={WIDGET_VIEW_MIME: VIEW, "image/png": "iVBO", "text/plain": RUN_TO_INTERACT}),
            nbformat.v4.new_output("display_data", data={WIDGET_VIEW_MIME: VIEW}),
            nbformat.v4.new_output("stream", text="kept\n"),
        ]),
    ])
    nb.metadata["widgets"] = {"application/vnd.jupyter.widget-state+json": {"state": {"abc": {}}}}
    return json.loads(json.dumps(nb))


def test_pre_save_hook_keeps_the_fallback_and_drops_views_and_state():
    model = {"type": "notebook", "content": _saved_notebook()}
    pre_save_hook(model=model, path="notebooks/06_bce_loss.ipynb", contents_manager=None)
    nb = model["content"]
    assert "widgets" not in nb["metadata"]
    outputs = nb["cells"][0]["outputs"]
    assert [o["output_type"] for o in outputs] == ["display_data", "stream"]  # the view-only output is gone
    assert outputs[0]["data"] == {"image/png": "iVBO", "text/plain": RUN_TO_INTERACT}
    nbformat.validate(nbformat.from_dict(nb))
    text_file = {"type": "file", "content": "x"}
    pre_save_hook(model=text_file, path="a.txt")
    assert text_file == {"type": "file", "content": "x"}


def test_an_explorer_shows_sliders_live_and_a_figure_when_stored():
    explorer = bce_explorer()
    bundle = explorer._repr_mimebundle_()
    assert bundle[WIDGET_VIEW_MIME]["model_id"] == explorer.widget.model_id
    assert base64.b64decode(bundle["image/png"]).startswith(b"\x89PNG")
    assert bundle["text/plain"] == RUN_TO_INTERACT
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("explorer", outputs=[
        nbformat.v4.new_output("display_data", data=bundle)])])
    strip_widgets(nb)
    assert set(nb.cells[0].outputs[0]["data"]) == {"image/png", "text/plain"}


def test_restore_puts_committed_notebooks_back_and_keeps_the_learners_copy(tmp_path):
    repo = tmp_path / "clone"
    (repo / "notebooks").mkdir(parents=True)
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@t", "-c", "commit.gpgsign=false"]
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    committed = nbformat.writes(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("1")]))
    (repo / "notebooks" / "00_a.ipynb").write_text(committed)
    (repo / "notebooks" / "01_b.ipynb").write_text(committed)
    subprocess.run([*git, "add", "."], cwd=repo, check=True)
    subprocess.run([*git, "commit", "-qm", "course"], cwd=repo, check=True)

    assert storage.restore_notebooks(repo) == []
    (repo / "notebooks" / "01_b.ipynb").write_text(committed.replace('"1"', '"my answer"'))
    (repo / "notebooks" / "99_mine.ipynb").write_text(committed)  # the learner's own notebook stays
    assert storage.restore_notebooks(repo) == [repo / "notebooks" / "01_b.ipynb"]
    assert (repo / "notebooks" / "01_b.ipynb").read_text() == committed
    backups = list((repo / "runs" / "notebook-backup").glob("*/01_b.ipynb"))
    assert len(backups) == 1 and "my answer" in backups[0].read_text()
    assert (repo / "notebooks" / "99_mine.ipynb").exists()


def test_restore_outside_a_git_clone_says_why(tmp_path):
    with pytest.raises(RuntimeError, match="restoring needs a git clone"):
        storage.changed_notebooks(tmp_path)


def test_make_lab_saves_through_the_hook(tmp_path):
    """The server option that `make lab` passes, on a real Jupyter server (loopback only)."""
    import json
    import re
    import socket
    import sys
    import time
    import urllib.request
    from pathlib import Path

    makefile = (Path(__file__).resolve().parent.parent / "Makefile").read_text()
    option = re.search(r"--ContentsManager\.pre_save_hook=\S+", makefile)
    assert option, "make lab no longer installs the pre-save hook"
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen(
        [sys.executable, "-m", "jupyter_server", "--allow-root", "--no-browser", "--ServerApp.ip=127.0.0.1",
         f"--port={port}", "--IdentityProvider.token=t", f"--ServerApp.root_dir={tmp_path}", option.group(0)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/api/contents/saved.ipynb?token=t", method="PUT",
            data=json.dumps({"type": "notebook", "format": "json", "content": _saved_notebook()}).encode(),
            headers={"Content-Type": "application/json"},
        )
        deadline = time.monotonic() + 120
        while True:
            try:
                assert urllib.request.urlopen(request, timeout=10).status == 201
                break
            except OSError:
                assert time.monotonic() < deadline, "the Jupyter server did not start within 120 s"
                time.sleep(0.5)
    finally:
        server.terminate()
        server.wait(timeout=30)
    saved = json.loads((tmp_path / "saved.ipynb").read_text())
    assert "widgets" not in saved["metadata"]
    assert all(WIDGET_VIEW_MIME not in o.get("data", {}) for o in saved["cells"][0]["outputs"])
