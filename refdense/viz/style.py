"""The course's one visual language: what each colour means, the font sizes and the figure sizes.

Every plot of the package and of the notebooks takes its colours and sizes from here, so a colour
means the same thing in every figure (green: entities, purple: motions, blue: actions) and a figure
drawn for the notebook's width shows its text at the sizes below. Nothing is set at import:
:func:`rc_params` gives the defaults, which :func:`refdense.course.checks.start_notebook` applies in a notebook
and :func:`styled` applies around code that draws outside one (the run reports, the sweeps' figures).

Colours are matplotlib colour strings ("tab:..." of the tab10 palette, or a grey level "0.0"-"1.0").
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

CONCEPT_COLOURS = {"action": "tab:blue", "entity": "tab:green", "motion": "tab:purple"}
"""One colour per concept kind: actions, their entities and their motions (timelines, the pipeline's
branches, bars of a kind)."""

TRUTH_COLOUR = "0.2"
"""The ground truth where it is drawn against predictions (a label's line or filled area); a
prediction takes the colour of its model (:data:`MODEL_COLOURS`) or of its concept kind."""

MODEL_COLOURS = {"refdense": "tab:orange", "pat": "tab:brown", "probe": "tab:olive"}
"""One colour per model family: RefDense (the ``full`` recipe; its fused head and its composed readout
P_ent * P_mot alike, told apart by line style), the PAT baseline, the linear probe."""

VARIANT_COLOURS = ("tab:pink", "tab:gray", "tab:cyan")
"""The colours of RefDense's ablation variants drawn against their reference (``full``, in
``MODEL_COLOURS["refdense"]``), in order, then again with the next of :data:`LINE_STYLES`: a sweep's
figure. The first is BCE's pink, which suits ``no_colv`` (BCE alone)."""

LOSS_COLOURS = {"colv": "tab:cyan", "bce": "tab:pink"}
"""The two losses compared in notebook 07, CoLV and BCE (an ablation's ``no_colv`` is BCE alone)."""

OUTCOME_COLOURS = {"positive": "tab:green", "negative": "tab:red", "undecided": "0.55"}
"""A positive (y = 1, an entity that is on, a supported test) against a negative (y = 0, a
contradicted test); undecided: neither (a test whose interval contains 0)."""

METRIC_COLOURS = {"mAP_ac": "tab:purple", "F1_ac": "tab:blue", "P_ac": "tab:green", "R_ac": "tab:orange"}
"""The action-conditional metrics of the evaluation explorer (its bars and curves). Their hues serve other
roles elsewhere; that figure draws no concept kind or model, so nothing there reads two ways."""

LINE_STYLES = ("-", "--", ":")
"""Line styles, in order, that tell apart curves of one colour (the loss terms of one concept kind)."""

HIGHLIGHT_COLOUR = "tab:red"
"""What the reader should look at: the pipeline's "you are here" boxes, a marked value."""

INK = "black"
"""Text, a total, a start point: what carries the figure."""

BACKGROUND = "white"
"""The figure's background: lines that keep rows of one colour apart."""

REFERENCE_GREY = "0.5"
"""Reference lines (zero, a threshold, the mAP line, separators between blocks)."""

MUTED_GREY = "0.35"
"""Text and marks that step back (an inactive name, a box not in this notebook)."""

FAINT_GREY = "0.88"
"""Backgrounds and faint outlines: missing data in a matrix, the sphere's outline in notebook 07."""

FONT_SIZES = {"title": 11, "body": 10, "small": 8}
"""Font sizes in points: titles; axis labels, ticks and text; legends and dense tick labels. Nothing
smaller than ``small`` (8 pt) is drawn, so text stays readable at the notebook's width."""

NOTEBOOK_DPI = 80
"""The dots per inch of a stored notebook's figures: a 9-inch figure is 720 pixels, the notebook's width."""

FIGURE_SIZES = {"column": (6.0, 3.6), "wide": (9.0, 3.6), "square": (4.6, 4.2)}
"""Figure sizes in inches, (width, height): one column (a single plot), wide (the notebook's whole
width: panels side by side, a timeline), square (a matrix or a map)."""

COLOUR_MAPS = {"sequential": "viridis", "diverging": "RdBu_r"}
"""Colour maps: a value from 0 up (attention, AP, similarity; the shades of an ordered series); a
signed value centred on 0 (a position bias, a cosine)."""


def figure_size(kind: str = "wide", *, height: float | None = None, panels: int = 1) -> tuple[float, float]:
    """(width, height) in inches of a figure of size ``kind`` (a key of :data:`FIGURE_SIZES`).

    ``height`` replaces the standard height (a figure whose height follows its rows); ``panels``
    multiplies the width, for figures written to files that hold one standard figure per model.
    """
    if kind not in FIGURE_SIZES:
        raise ValueError(f"figure_size: expected a kind in {sorted(FIGURE_SIZES)}, found {kind!r}")
    if panels < 1:
        raise ValueError(f"figure_size: expected at least one panel, found {panels}")
    width, standard = FIGURE_SIZES[kind]
    return (width * panels, standard if height is None else height)


def series_colours(count: int) -> list[tuple[float, float, float, float]]:
    """``count`` RGBA colours for an ordered series (strides, sizes, steps), dark to light along the
    sequential colour map, so that order reads as shade and no hue borrows another role's meaning."""
    import matplotlib as mpl
    import numpy as np

    if count < 1:
        raise ValueError(f"series_colours: expected at least one colour, found {count}")
    ramp = mpl.colormaps[COLOUR_MAPS["sequential"]]
    return [ramp(float(x)) for x in np.linspace(0.0, 0.8, count)]


def rc_params(dpi: float | None = None) -> dict[Any, Any]:
    """The course's matplotlib defaults as rcParams: fonts, spines, the standard figure and colour map.

    ``dpi`` sets ``figure.dpi`` (:data:`NOTEBOOK_DPI` in a notebook); None leaves it (and so the
    resolution of saved files) as it is. Use with ``matplotlib.rcParams.update`` or ``rc_context``.
    """
    params: dict[Any, Any] = {  # Any keys: matplotlib types them as the literal rcParams names
        "figure.figsize": FIGURE_SIZES["wide"],
        "font.size": FONT_SIZES["body"],
        "axes.titlesize": FONT_SIZES["title"],
        "axes.labelsize": FONT_SIZES["body"],
        "xtick.labelsize": FONT_SIZES["body"],
        "ytick.labelsize": FONT_SIZES["body"],
        "legend.fontsize": FONT_SIZES["small"],
        "figure.titlesize": FONT_SIZES["title"],
        "axes.spines.top": False,
        "axes.spines.right": False,
        "axes.grid": False,
        "image.cmap": COLOUR_MAPS["sequential"],
    }
    if dpi is not None:
        params["figure.dpi"] = dpi
    return params


@contextmanager
def styled(dpi: float | None = None) -> Iterator[None]:
    """Draw with the course's defaults inside the block (``with styled(): ...``), restored after it."""
    import matplotlib as mpl

    with mpl.rc_context(rc_params(dpi)):
        yield
