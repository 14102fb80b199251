"""The pipeline figure (refdense.viz.pipeline): every notebook's boxes, highlighted where asked."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402
from matplotlib.patches import FancyBboxPatch  # noqa: E402

from refdense.viz.pipeline import ARROWS, STAGES, plot_pipeline, stages_of  # noqa: E402


def test_each_notebook_owns_its_boxes():
    assert {stage.key for stage in stages_of("04")} == {"motion"}
    assert {stage.key for stage in stages_of("05")} == {"entity_head", "fusion", "motion_head"}
    assert {stage.key for stage in stages_of("07")} == {"entity_losses", "motion_losses", "text"}
    assert len(stages_of("09")) == len(stages_of("10")) == len(STAGES)  # the whole pipeline
    with pytest.raises(ValueError, match="no box of the pipeline belongs to notebook '11'"):
        stages_of("11")
    with pytest.raises(ValueError, match="two-digit notebook number"):
        stages_of("4")


def test_arrows_join_existing_boxes_and_every_box_is_connected():
    keys = {stage.key for stage in STAGES}
    assert len(keys) == len(STAGES)
    ends = {key for start, end, _ in ARROWS for key in (start, end)}
    assert ends == keys


def test_the_figure_highlights_the_boxes_of_one_notebook():
    fig = plot_pipeline("04")
    ax = fig.axes[0]
    boxes = [patch for patch in ax.patches if isinstance(patch, FancyBboxPatch)]
    assert len(boxes) == len(STAGES)
    thick = [box for box in boxes if box.get_linewidth() > 2]
    assert len(thick) == 1
    texts = [text.get_text() for text in ax.texts]
    assert "nb 01+04 · Eq. 2-3, 6-7" in texts and "F_mot (T, D*)" in "\n".join(texts)
    assert "notebook 04" in ax.get_title()
    plt.close(fig)


def test_the_small_figure_has_no_shapes_and_nothing_highlighted_without_a_notebook():
    fig = plot_pipeline(small=True)
    ax = fig.axes[0]
    assert all(box.get_linewidth() < 2 for box in ax.patches if isinstance(box, FancyBboxPatch))
    assert not any("(T, D*)" in text.get_text() for text in ax.texts)
    plt.close(fig)


@pytest.mark.parametrize("small", [False, True])
def test_the_figure_reads_at_the_notebook_width(small):
    from refdense.viz.style import FONT_SIZES, rc_params

    with matplotlib.rc_context(rc_params(80)):
        fig = plot_pipeline("04", small=small)
        fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    ax = fig.axes[0]
    assert fig.get_size_inches()[0] <= 9.0
    boxes = [box.get_window_extent(renderer) for box in ax.patches if isinstance(box, FancyBboxPatch)]
    texts = [text for text in ax.texts if text.get_text()]  # the arrows are empty annotations
    assert min(text.get_fontsize() for text in texts) >= FONT_SIZES["small"]
    for text in texts:  # a box's text stays inside it; no text runs into a box it is not in
        extent = text.get_window_extent(renderer)
        for box in boxes:
            if box.overlaps(extent):
                assert (
                    box.x0 <= extent.x0
                    and extent.x1 <= box.x1
                    and box.y0 <= extent.y0
                    and extent.y1 <= box.y1
                ), text.get_text()
    plt.close(fig)
