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
from matplotlib.figure import Figure
from matplotlib.patches import FancyBboxPatch

from refdense.viz import figure_of


@dataclass(frozen=True)
class Stage:
    """One box of the pipeline.

    key: short id; title: what it is; shape: what it outputs (one video); equation: of the paper
    ("" where the paper has none); notebooks: the two-digit numbers of the notebooks that teach it;
    x, y: the box's centre in the figure's 0-135 x 0-70 coordinates.
    """

    key: str
    title: str
    shape: str
    equation: str
    notebooks: tuple[str, ...]
    x: float
    y: float


STAGES: tuple[Stage, ...] = (
    Stage("labels", "action labels Y", "Y (T, C)", "", ("00",), 9, 64),
    Stage(
        "decompose",
        "decomposition\nY_phi = min(1, Y A_phi)",
        "Y_ent (T, C_ent)\nY_mot (T, C_mot)",
        "",
        ("02",),
        33,
        64,
    ),
    Stage("image", "middle frames ->\nimage encoder (CLIP)", "image stream (T, D)", "", ("00", "03"), 9, 46),
    Stage("entity", "Action-Entity\n1 PAT block, self-att", "F_ent (T, D*)", "Eq. 5", ("03",), 33, 46),
    Stage("entity_head", "entity head\n1D-conv + sigmoid", "P_ent (T, C_ent)", "Eq. 9", ("05",), 56, 46),
    Stage(
        "entity_losses",
        "BCE(Y_ent, P_ent)\n+ CoLV(F_ent, u_ent)",
        "scalars",
        "Eq. 9, 11",
        ("06", "07"),
        80,
        46,
    ),
    Stage("text", "text encoder (frozen)\n'a photo of [c]'", "u_c (C_phi, D_txt)", "", ("07",), 103, 28),
    Stage(
        "fusion",
        "fusion: concat ->\n1D-conv + sigmoid",
        "[F_ent; F_mot] (T, 2D*)\n-> P (T, C)",
        "Eq. 8",
        ("05",),
        56,
        28,
    ),
    Stage("action_loss", "BCE(Y, P)", "scalar", "Eq. 4", ("06",), 80, 28),
    Stage("evaluation", "evaluation of P\nmAP, mAP_ac", "percent", "", ("08",), 126, 28),
    Stage(
        "video",
        "segments of K=8 frames\n-> video encoder (I3D)",
        "video stream (T, D)",
        "Eq. 1",
        ("00",),
        9,
        10,
    ),
    Stage(
        "motion",
        "Action-Motion: PAT\n+ cross-att to F_ent",
        "F_mot (T, D*)",
        "Eq. 2-3, 6-7",
        ("01", "04"),
        33,
        10,
    ),
    Stage("motion_head", "motion head\n1D-conv + sigmoid", "P_mot (T, C_mot)", "Eq. 9", ("05",), 56, 10),
    Stage(
        "motion_losses",
        "BCE(Y_mot, P_mot)\n+ CoLV(F_mot, u_mot)",
        "scalars",
        "Eq. 9, 11",
        ("06", "07"),
        80,
        10,
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
    ("fusion", "evaluation", 0.22),
    ("entity", "entity_losses", -0.3),
    ("motion", "motion_losses", 0.3),
    ("text", "entity_losses", 0.0),
    ("text", "motion_losses", 0.0),
)
"""Data flow between the boxes: (from, to, curvature of the arrow). The labels reach the losses too
(each loss box names the labels it reads)."""

WHOLE_PIPELINE = ("09", "10")
"""Notebooks about the whole pipeline (training, ablations): every box is theirs."""

_WIDTH, _HEIGHT = 19.0, 10.0


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
    notebook that teaches it. ``small=True`` draws a compact version (no shapes) for a recap.
    Returns the Figure.
    """
    highlighted = {stage.key for stage in stages_of(here)} if here is not None else set()
    if ax is None:
        fig = plt.figure(figsize=(10, 4.3) if small else (15, 6.6), layout="constrained")
        ax = fig.add_subplot()
    fig = figure_of(ax)
    ax.set(xlim=(-2, 137), ylim=(-1, 71))
    ax.set_axis_off()
    size = 7.5 if small else 9
    boxes = {}
    for stage in STAGES:
        on = stage.key in highlighted
        box = FancyBboxPatch(
            (stage.x - _WIDTH / 2, stage.y - _HEIGHT / 2),
            _WIDTH,
            _HEIGHT,
            boxstyle="round,pad=0.3,rounding_size=1.2",
            facecolor="#ffe9a8" if on else ("#f4f4f4" if highlighted else "#eaf1fb"),
            edgecolor="#c0392b" if on else "0.6",
            linewidth=2.2 if on else 0.8,
            zorder=2,
        )
        boxes[stage.key] = ax.add_patch(box)
        tag = "nb " + "+".join(stage.notebooks) + (f" · {stage.equation}" if stage.equation else "")
        lines = [stage.title] if small else [stage.title, stage.shape]
        ax.text(
            stage.x,
            stage.y + 0.8,
            "\n".join(lines),
            ha="center",
            va="center",
            fontsize=size,
            zorder=3,
            color="black" if on or not highlighted else "0.35",
            linespacing=1.15,
        )
        ax.text(
            stage.x,
            stage.y - _HEIGHT / 2 + 0.9,
            tag,
            ha="center",
            va="bottom",
            fontsize=size - 0.5,
            zorder=3,
            color="#c0392b" if on else "0.3",
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
                color="0.45",
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
            56,
            64,
            "the labels Y, Y_ent, Y_mot go to the losses on the right:"
            "\nBCE compares them with P, P_ent, P_mot;"
            "\nY_ent and Y_mot also name each segment's positives for CoLV",
            ha="left",
            va="center",
            fontsize=size,
            color="0.3",
            style="italic",
        )
    title = "RefDense (the paper's Fig. 2)"
    if here is not None:
        whole = here in WHOLE_PIPELINE
        title += f": notebook {here} uses all of it" if whole else f": you are here, notebook {here}"
    ax.set_title(title, fontsize=size + 2)
    return fig
