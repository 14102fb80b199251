"""The course website's staging (refdense/course/book.py, ``make book``)."""

from __future__ import annotations

import nbformat

from refdense.course.book import stage_notebook
from refdense.course.header import BADGE
from refdense.course.storage import RUN_TO_INTERACT



def test_staging_rewrites_links_adds_the_explorer_hint_and_uses_the_local_badge():
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_markdown_cell(f"[![b]({BADGE})](x) [next](01_pat_backbone.ipynb#top) [m](../docs/METHOD.md)"),
        nbformat.v4.new_code_cell("explorer()", outputs=[nbformat.v4.new_output(
            "display_data", data={"image/png": "AAAA", "text/plain": RUN_TO_INTERACT})]),
    ]
    staged = stage_notebook(nb, "https://github.com/o/n", "v1.2.3")
    assert staged.cells[0].source == ("[![b](assets/colab-badge.svg)](x) [next](01_pat_backbone.html#top) "
                                      "[m](https://github.com/o/n/blob/v1.2.3/docs/METHOD.md)")
    assert [o.get("text") for o in staged.cells[1].outputs] == [None, f"({RUN_TO_INTERACT})\n"]
