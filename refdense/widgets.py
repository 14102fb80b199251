"""Interactive explorers for the notebooks: ipywidgets controls wired to a pure function and a plot.

Every factory here follows one pattern:

1. a **pure function** computes a result from plain arguments (in :mod:`refdense.losses`,
   :mod:`refdense.metrics` or :mod:`refdense.viz`);
2. a **plot function** of :mod:`refdense.viz` draws that result and returns a Figure;
3. the **factory** (``bce_explorer()``, ``colv_explorer()``, ...) builds one control per argument
   and returns an :class:`Explorer`, which recomputes and redraws whenever a control changes.

An :class:`Explorer` displays itself in a notebook (``explorer`` as the last line of a cell): first
its hint (HTML: what the controls do, and that a stored notebook shows only a picture until the cell
is run), then the sliders in a live session, a static figure and "run this cell to get the sliders"
in a stored notebook. The hint is a separate output above the figure, so JupyterLab shows it where
it would hide a text/plain line behind the image. It exposes, for tests and for "check yourself" cells:

- ``explorer.sliders``: ``{argument name: control}`` (sliders, dropdowns);
- ``explorer.result``: the pure function's last result; ``explorer.figure``: the last Figure;
- ``explorer.note``: the text that says which controls do nothing under the current setting
  (they are disabled, e.g. ``pos_weight`` under the asymmetric loss), and what a degenerate setting
  draws (``remark=``, e.g. no concept selected in :func:`colv_explorer`);
- ``explorer.hint``: the HTML line shown above the figure.

Headless use (no browser needed)::

    explorer = bce_explorer()
    explorer.sliders["pos_weight"].value = 5.0
    explorer.result["grad_positive"]      # recomputed with pos_weight=5

To add a factory: write the pure function and the plot function, then return
``Explorer({name: control, ...}, compute=pure_function, plot=plot_function, hint=...)``; pass
``inactive=`` a function of the current values that returns ``{name: why}`` for the controls that
do nothing under them, and ``remark=`` one that returns a sentence for settings the figure alone
would not explain ("" otherwise).

A check cell of a notebook drives its own explorer, not the one displayed above it, so that Run All
leaves the displayed explorer where the learner starts: at its default values.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from refdense.course.storage import RUN_TO_INTERACT
from refdense.extras import missing_extra
from refdense.losses import ASL_CLIP, ASL_GAMMA_NEG, ASL_GAMMA_POS, COLV_VARIANTS
from refdense.metrics.validation import Lengths, Videos
from refdense.viz.evaluation import MATRICES, evaluation_curves, plot_evaluation
from refdense.viz.losses import bce_curves, colv_geometry, plot_bce_curves, plot_colv_geometry

try:
    import ipywidgets as widgets
    import matplotlib.pyplot as plt
    from IPython.display import HTML, display
    from matplotlib.figure import Figure
except ModuleNotFoundError as error:
    raise missing_extra(error, "refdense.widgets (the notebooks' explorers)") from error


class Explorer:
    """Controls wired to ``compute(**values) -> result`` and ``plot(result) -> Figure``.

    Attributes:
        sliders: the controls, keyed by the name of the ``compute`` argument they set.
        result: the last value of ``compute``; figure: the last Figure drawn.
        note: an HTML line naming the controls that are disabled, and why, and the remark on the
            current setting ("" when there is neither).
        hint: the HTML shown above the figure: ``hint`` and how to get the sliders.
        widget: the container to display (controls, the note, the plot).
    """

    def __init__(
        self,
        sliders: Mapping[str, widgets.ValueWidget],
        compute: Callable[..., Any],
        plot: Callable[[Any], Figure],
        inactive: Callable[[dict[str, Any]], Mapping[str, str]] | None = None,
        *,
        hint: str,
        remark: Callable[[dict[str, Any]], str] | None = None,
    ) -> None:
        self.sliders = dict(sliders)
        for control in self.sliders.values():
            control.style.description_width = "initial"  # the whole label, never "gamma_n..."
        self._compute = compute
        self._plot = plot
        self._inactive = inactive
        self._remark = remark
        self.hint = (
            f"<b>Explorer.</b> {hint} <i>In a stored notebook the figure below is a picture of the "
            f"default setting: run this cell (Shift+Enter) to get the controls.</i>"
        )
        self.output = widgets.Output()
        self.note = widgets.HTML("")
        rows = [widgets.HBox(list(self.sliders.values())[k : k + 3]) for k in range(0, len(self.sliders), 3)]
        self.widget = widgets.VBox([*rows, self.note, self.output])
        self.result: Any = None
        self.figure: Figure  # drawn by _update below
        for control in self.sliders.values():
            control.observe(self._update, names="value")
        self._update()

    def values(self) -> dict[str, Any]:
        """The current value of every control."""
        return {name: control.value for name, control in self.sliders.items()}

    def _update(self, change: Any = None) -> None:
        values = self.values()
        reasons = dict(self._inactive(values)) if self._inactive else {}
        for name, control in self.sliders.items():
            control.disabled = name in reasons
        remark = self._remark(values) if self._remark else ""
        self.note.value = "; ".join(
            [f"<i>{name}</i> does nothing here: {why}" for name, why in reasons.items()]
            + ([remark] if remark else [])
        )
        self.result = self._compute(**values)
        self.figure = self._plot(self.result)
        with self.output:
            self.output.clear_output(wait=True)
            display(self.figure)
        plt.close(self.figure)  # shown once, in the output area; pyplot keeps no reference

    def _repr_mimebundle_(self, **kwargs: Any) -> dict[str, Any]:
        """The widget view, with the current figure and :data:`RUN_TO_INTERACT` as its fallback.

        A live JupyterLab shows the sliders; a stored notebook keeps only the picture and the line
        (:func:`refdense.course.storage.strip_widgets` removes the view, which cannot be restored).
        """
        bundle = dict(self.widget._repr_mimebundle_(**kwargs))
        buffer = io.BytesIO()
        self.figure.savefig(buffer, format="png", bbox_inches="tight")
        bundle["image/png"] = base64.b64encode(buffer.getvalue()).decode("ascii")
        bundle["text/plain"] = RUN_TO_INTERACT
        return bundle

    def _ipython_display_(self) -> None:
        """The hint as its own HTML output, then the widget view with its fallback figure."""
        display(HTML(self.hint))
        display(self._repr_mimebundle_(), raw=True)


def bce_explorer(
    positive_rate: float = 0.05,
    classification: str = "bce",
    pos_weight: float = 1.0,
    gamma_neg: float = ASL_GAMMA_NEG,
    gamma_pos: float = ASL_GAMMA_POS,
    clip: float = ASL_CLIP,
) -> Explorer:
    """BCE or the asymmetric loss of one entry, its gradient, and where a class of a given rarity settles.

    Controls: ``positive_rate`` (0.2% to 50%, log scale), ``classification`` (``bce`` or
    ``asymmetric``), ``pos_weight`` (0.1 to 100, log scale; BCE only), ``gamma_neg``, ``gamma_pos``
    and ``clip`` (asymmetric only). A control that does nothing under the chosen loss is disabled,
    and the note says so. Result: :func:`refdense.viz.losses.bce_curves`.
    """
    sliders = {
        "positive_rate": widgets.FloatLogSlider(
            value=positive_rate,
            base=10,
            min=-2.7,
            max=np.log10(0.5),
            step=0.05,
            description="pos. rate",
            readout_format=".3f",
            continuous_update=False,
        ),
        "classification": widgets.Dropdown(
            options=["bce", "asymmetric"], value=classification, description="loss"
        ),
        "pos_weight": widgets.FloatLogSlider(
            value=pos_weight,
            base=10,
            min=-1,
            max=2,
            step=0.05,
            description="pos_weight",
            continuous_update=False,
        ),
        "gamma_neg": widgets.FloatSlider(
            value=gamma_neg, min=0, max=6, step=0.5, description="gamma_neg", continuous_update=False
        ),
        "gamma_pos": widgets.FloatSlider(
            value=gamma_pos, min=0, max=4, step=0.5, description="gamma_pos", continuous_update=False
        ),
        "clip": widgets.FloatSlider(
            value=clip, min=0, max=0.3, step=0.01, description="clip", continuous_update=False
        ),
    }

    def inactive(values: dict) -> dict[str, str]:
        if values["classification"] == "bce":
            return {
                name: "it is a parameter of the asymmetric loss"
                for name in ("gamma_neg", "gamma_pos", "clip")
            }
        return {
            "pos_weight": "the asymmetric loss has no positive weight (its gammas and clip rebalance instead)"
        }

    return Explorer(
        sliders,
        compute=lambda **v: bce_curves(**v),
        plot=plot_bce_curves,
        inactive=inactive,
        hint="Choose the loss, how rare the class is (<i>pos. rate</i>) and the loss's own parameters; the "
        "panels redraw the loss, its gradient and where a class of that rarity settles. Controls that do "
        "nothing under the chosen loss are greyed out.",
    )


def colv_explorer(
    embeddings: npt.ArrayLike,
    names: Sequence[str],
    co_occurring: Sequence[int] = (0, 1),
    temperature: float = 0.07,
    variant: str = "refdense",
) -> Explorer:
    """A segment feature among real prompt embeddings: where CoLV (and, beside it, BCE) moves it.

    ``embeddings`` (C, D) are the prompts' embeddings u_c, ``names`` their C names. Controls:
    ``temperature`` (0.01 to 1, log scale), ``co_occurring`` (which concepts are on at the
    segment, several may be chosen), ``variant`` (``refdense`` = the paper's, ``infonce``,
    ``supcon``). Result: :func:`refdense.viz.losses.colv_geometry`.
    """
    names = [str(n) for n in names]
    sliders = {
        "temperature": widgets.FloatLogSlider(
            value=temperature, base=10, min=-2, max=0, step=0.05, description="tau", continuous_update=False
        ),
        "co_occurring": widgets.SelectMultiple(
            options=[(n, c) for c, n in enumerate(names)],
            value=tuple(co_occurring),
            rows=len(names),
            description="on",
        ),
        "variant": widgets.Dropdown(options=list(COLV_VARIANTS), value=variant, description="variant"),
    }

    def compute(temperature: float, co_occurring: tuple[int, ...], variant: str) -> dict[str, Any]:
        return colv_geometry(embeddings, co_occurring, temperature=temperature, variant=variant, names=names)

    def remark(values: dict) -> str:
        if values["co_occurring"]:
            return ""
        return (
            "<b>No concept is on.</b> A segment with no positive gives CoLV nothing to pull towards: its loss "
            "and its forces are 0 and the feature does not move (only BCE pushes it away from every prompt). "
            "Select at least one concept."
        )

    return Explorer(
        sliders,
        compute=compute,
        plot=plot_colv_geometry,
        hint="<i>on</i> is a multi-select list of every concept: click one to select it alone, Ctrl-click "
        "(Cmd-click on a Mac) to add or remove one, Shift-click for a range. The selected concepts are the "
        "segment's positives (green); <i>tau</i> is CoLV's temperature, <i>variant</i> its form.",
        remark=remark,
    )


def evaluation_explorer(
    scores: Videos,
    labels: Videos,
    lengths: Lengths = None,
    *,
    class_names: Sequence[str] | None = None,
    tau: int = 0,
    threshold: float = 0.5,
    max_tau: int = 20,
    matrix: str = "ap",
) -> Explorer:
    """Action-conditional metrics and the pairwise matrix vs the window tau and the threshold.

    ``scores``, ``labels``, ``lengths`` as :func:`refdense.metrics.action_conditional` (probabilities
    and 0/1 labels, per-video (T_v, C) lists or padded arrays). Controls: ``tau`` (0 to ``max_tau``
    segments), ``threshold`` (0.05 to 0.95), ``matrix`` (``ap``, ``precision``, ``recall``).
    Result: :func:`refdense.viz.evaluation.evaluation_curves`.
    """
    if isinstance(max_tau, bool) or not isinstance(max_tau, int) or not 0 <= tau <= max_tau:
        raise ValueError(
            f"evaluation_explorer: expected integers 0 <= tau <= max_tau, found tau={tau!r}, max_tau={max_tau!r}"
        )
    sliders = {
        "tau": widgets.IntSlider(value=tau, min=0, max=max_tau, description="tau", continuous_update=False),
        "threshold": widgets.FloatSlider(
            value=threshold, min=0.05, max=0.95, step=0.05, description="threshold", continuous_update=False
        ),
        "matrix": widgets.Dropdown(options=list(MATRICES), value=matrix, description="matrix"),
    }
    return Explorer(
        sliders,
        compute=lambda **v: evaluation_curves(scores, labels, lengths, **v),
        plot=lambda result: plot_evaluation(result, class_names),
        hint="<i>tau</i> widens the window (in segments) in which a co-occurring action counts, "
        "<i>threshold</i> turns scores into decisions for F1, <i>matrix</i> picks what the pairwise "
        "matrix shows.",
    )
