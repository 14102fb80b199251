"""The RefDense pipeline as one picture (the paper's Fig. 2, with tensor shapes): where each notebook sits.

:data:`STAGES` lists the boxes: what each computes, the shape of what it outputs for one video, the
equation of the paper and the notebook that teaches it. :func:`plot_pipeline` draws them, with the
boxes of one notebook highlighted ("you are here"); every notebook's recap shows it small.

Shapes, for one video of T segments: D the width of a frozen feature stream (1024 for I3D and for
CLIP RN50 on Charades), D* the width inside the model (512), C the action classes (157), C_ent and
C_mot the entity and motion classes (38 and 38 in the paper), D_txt the text encoder's width.
"""

from __future__ import annotations

from dataclasses import dataclass

import matplotlib.pyplot as plt
from matplotlib.axes import Axes
from matplotlib.colors import to_rgb
from matplotlib.figure import Figure
from matplotlib.patches import FancyBboxPatch

from refdense.viz import figure_of
from refdense.viz.style import (
    CONCEPT_COLOURS,
    FONT_SIZES,
    HIGHLIGHT_COLOUR,
    INK,
    MUTED_GREY,
    REFERENCE_GREY,
    figure_size,
)


@dataclass(frozen=True)
class Stage:
    """One box of the pipeline.

    key: short id; title: what it is; shape: what it outputs (one video); equation: of the paper
    ("" where the paper has none); notebooks: the two-digit numbers of the notebooks that teach it;
    x, y: the box's centre in the figure's 0-132 x 0-70 coordinates; kind: the concept kind of
    the branch it belongs to (its colour, :data:`refdense.viz.style.CONCEPT_COLOURS`), None for the
    text encoder, which serves both.
    """

    key: str
    title: str
    shape: str
    equation: str
    notebooks: tuple[str, ...]
    x: float
    y: float
    kind: str | None


STAGES: tuple[Stage, ...] = (
    Stage("labels", "action labels Y", "Y (T, C)", "", ("00",), 12, 64, "action"),
    Stage(
        "decompose",
        "decomposition:\nmin(1, Y A_phi)",
        "Y_ent (T, C_ent)\nY_mot (T, C_mot)",
        "",
        ("02",),
        39,
        64,
        "action",
    ),
    Stage(
        "image", "middle frames ->\nimage encoder\n(CLIP)", "image (T, D)", "", ("00", "03"), 12, 46, "entity"
    ),
    Stage(
        "entity",
        "Action-Entity:\n1 PAT block\n(self-attention)",
        "F_ent (T, D*)",
        "Eq. 5",
        ("03",),
        39,
        46,
        "entity",
    ),
    Stage(
        "entity_head",
        "entity head\n1D-conv\n+ sigmoid",
        "P_ent (T, C_ent)",
        "Eq. 9",
        ("05",),
        66,
        46,
        "entity",
    ),
    Stage(
        "entity_losses",
        "BCE(Y_ent, P_ent)\n+ CoLV(F_ent,\nu_ent)",
        "scalars",
        "Eq. 9, 11",
        ("06", "07"),
        93,
        46,
        "entity",
    ),
    Stage(
        "text", "text encoder\n(frozen):\n'a photo of [c]'", "u_c (C_phi, D_txt)", "", ("07",), 120, 46, None
    ),
    Stage(
        "fusion",
        "fusion: concat\n-> 1D-conv\n+ sigmoid",
        "[F_ent; F_mot]\n(T, 2D*) -> P (T, C)",
        "Eq. 8",
        ("05",),
        66,
        28,
        "action",
    ),
    Stage("action_loss", "BCE(Y, P)", "scalar", "Eq. 4", ("06",), 93, 28, "action"),
    Stage("evaluation", "evaluation of P:\nmAP, mAP_ac", "percent", "", ("08",), 120, 10, "action"),
    Stage(
        "video",
        "segments of K = 8\nframes -> video\nencoder (I3D)",
        "video (T, D)",
        "Eq. 1",
        ("00",),
        12,
        10,
        "motion",
    ),
    Stage(
        "motion",
        "Action-Motion:\nPAT + cross-att\nto F_ent",
        "F_mot (T, D*)",
        "Eq. 2-3, 6-7",
        ("01", "04"),
        39,
        10,
        "motion",
    ),
    Stage(
        "motion_head",
        "motion head\n1D-conv\n+ sigmoid",
        "P_mot (T, C_mot)",
        "Eq. 9",
        ("05",),
        66,
        10,
        "motion",
    ),
    Stage(
        "motion_losses",
        "BCE(Y_mot, P_mot)\n+ CoLV(F_mot,\nu_mot)",
        "scalars",
        "Eq. 9, 11",
        ("06", "07"),
        93,
        10,
        "motion",
    ),
)
"""The boxes: labels on top, the entity branch, the fusion and the motion branch, inputs left, losses right."""

ARROWS: tuple[tuple[str, str, float], ...] = (
    ("labels", "decompose", 0.0),
    ("image", "entity", 0.0),
    ("video", "motion", 0.0),
    ("entity", "motion", 0.0),
    ("entity", "entity_head", 0.0),
    ("motion", "motion_head", 0.0),
    ("entity", "fusion", 0.0),
    ("motion", "fusion", 0.0),
    ("entity_head", "entity_losses", 0.0),
    ("motion_head", "motion_losses", 0.0),
    ("fusion", "action_loss", 0.0),
    ("fusion", "evaluation", 0.0),
    ("entity", "entity_losses", -0.3),
    ("motion", "motion_losses", 0.3),
    ("text", "entity_losses", 0.0),
    ("text", "motion_losses", 0.0),
)
"""Data flow between the boxes: (from, to, curvature of the arrow). The labels reach the losses too
(each loss box names the labels it reads)."""

WHOLE_PIPELINE = ("09", "10")
"""Notebooks about the whole pipeline (training, ablations): every box is theirs."""

_WIDTH, _HEIGHT, _HEIGHT_SMALL = 22.0, 12.5, 10.0
"""A box's width and height in the figure's coordinates (full and small figure)."""


def stages_of(notebook: str) -> list[Stage]:
    """The boxes that notebook ``notebook`` (two digits, e.g. ``"04"``) teaches; every box for 09 and 10."""
    if not (isinstance(notebook, str) and len(notebook) == 2 and notebook.isdigit()):
        raise ValueError(f"stages_of: expected a two-digit notebook number such as '04', found {notebook!r}")
    if notebook in WHOLE_PIPELINE:
        return list(STAGES)
    found = [stage for stage in STAGES if notebook in stage.notebooks]
    if not found:
        known = sorted({n for stage in STAGES for n in stage.notebooks} | set(WHOLE_PIPELINE))
        raise ValueError(
            f"stages_of: no box of the pipeline belongs to notebook {notebook!r}; known: {known}"
        )
    return found


def plot_pipeline(here: str | None = None, *, small: bool = False, ax: Axes | None = None) -> Figure:
    """Draw the pipeline; the boxes of notebook ``here`` (e.g. ``"04"``) are highlighted.

    Each box shows what it computes, the shape of its output, the paper's equation and the
    notebook that teaches it, tinted with its branch's concept colour. ``small=True`` draws a
    compact version (no shapes) for a recap. Both fit the notebook's width (9 inches) with no text
    under 8 pt. Returns the Figure.
    """
    highlighted = {stage.key for stage in stages_of(here)} if here is not None else set()
    height = _HEIGHT_SMALL if small else _HEIGHT
    if ax is None:
        fig = plt.figure(figsize=figure_size("wide", height=4.2 if small else 6.0), layout="constrained")
        ax = fig.add_subplot()
    fig = figure_of(ax)
    ax.set(xlim=(-0.5, 132.5), ylim=(10 - height / 2 - 4, 64 + height / 2 + 1))  # room for the arcs below
    ax.set_axis_off()
    size = FONT_SIZES["small"]
    boxes = {}
    for stage in STAGES:
        on = stage.key in highlighted
        back = not on and bool(highlighted)  # a box of another notebook steps back
        tint = to_rgb(CONCEPT_COLOURS[stage.kind] if stage.kind else MUTED_GREY)
        box = FancyBboxPatch(
            (stage.x - _WIDTH / 2, stage.y - height / 2),
            _WIDTH,
            height,
            boxstyle="round,pad=0.3,rounding_size=1.2",
            facecolor=(*tint, 0.3 if on else (0.06 if back else 0.14)),
            edgecolor=HIGHLIGHT_COLOUR if on else (*tint, 0.4 if back else 0.8),
            linewidth=2.2 if on else 0.8,
            zorder=2,
        )
        boxes[stage.key] = ax.add_patch(box)
        tag = "nb " + "+".join(stage.notebooks) + (f" · {stage.equation}" if stage.equation else "")
        lines = [stage.title] if small else [stage.title, stage.shape]
        ax.text(
            stage.x,
            stage.y + 1.2,
            "\n".join(lines),
            ha="center",
            va="center",
            fontsize=size,
            zorder=3,
            color=MUTED_GREY if back else INK,
            linespacing=1.1,
        )
        ax.text(
            stage.x,
            stage.y - height / 2 + 0.5,
            tag,
            ha="center",
            va="bottom",
            fontsize=size,
            zorder=3,
            color=HIGHLIGHT_COLOUR if on else MUTED_GREY,
            fontweight="bold" if on else "normal",
        )
    centres = {stage.key: (stage.x, stage.y) for stage in STAGES}
    for start, end, curvature in ARROWS:
        ax.annotate(
            "",
            xy=centres[end],
            xytext=centres[start],
            zorder=1,
            arrowprops=dict(
                arrowstyle="-|>",
                color=REFERENCE_GREY,
                lw=0.9,
                shrinkA=1,
                shrinkB=1,
                patchA=boxes[start],
                patchB=boxes[end],
                connectionstyle=f"arc3,rad={curvature}",
            ),
        )
    if not small:
        ax.text(
            54,
            64,
            "the labels Y, Y_ent, Y_mot go to the losses on the right:"
            "\nBCE compares them with P, P_ent, P_mot;"
            "\nY_ent and Y_mot also name each segment's positives for CoLV",
            ha="left",
            va="center",
            fontsize=size,
            color=MUTED_GREY,
            style="italic",
        )
    title = "RefDense (the paper's Fig. 2)"
    if here is not None:
        whole = here in WHOLE_PIPELINE
        title += f": notebook {here} uses all of it" if whole else f": you are here, notebook {here}"
    ax.set_title(title, fontsize=FONT_SIZES["title"])
    return fig
