"""Interactive explorers for the notebooks: ipywidgets controls wired to a pure function and a plot.

Every factory here follows one pattern:

1. a **pure function** computes a result from plain arguments (in :mod:`refdense.losses`,
   :mod:`refdense.metrics` or :mod:`refdense.viz`);
2. a **plot function** of :mod:`refdense.viz` draws that result and returns a Figure;
3. the **factory** (``bce_explorer()``, ``colv_explorer()``, ...) builds one control per argument
   and returns an :class:`Explorer`, which recomputes and redraws whenever a control changes.

An :class:`Explorer` displays itself in a notebook (``explorer`` as the last line of a cell): the
sliders in a live session, a static figure and "run this cell to get the sliders" in a stored
notebook. It exposes, for tests and for "check yourself" cells:

- ``explorer.sliders``: ``{argument name: control}`` (sliders, dropdowns);
- ``explorer.result``: the pure function's last result; ``explorer.figure``: the last Figure.

Headless use (no browser needed)::

    explorer = bce_explorer()
    explorer.sliders["pos_weight"].value = 5.0
    explorer.result["grad_positive"]      # recomputed with pos_weight=5

To add a factory: write the pure function and the plot function, then return
``Explorer({name: control, ...}, compute=pure_function, plot=plot_function)``.
"""

from __future__ import annotations

import base64
import io
from typing import Any, Callable, Mapping

import ipywidgets as widgets
import matplotlib.pyplot as plt
from IPython.display import display
from matplotlib.figure import Figure

from refdense.course.storage import RUN_TO_INTERACT
from refdense.viz.evaluation import MATRICES, evaluation_curves, plot_evaluation
from refdense.viz.losses import bce_curves, colv_curves, plot_bce_curves, plot_colv_curves


class Explorer:
    """Controls wired to ``compute(**values) -> result`` and ``plot(result) -> Figure``.

    Attributes:
        sliders: the controls, keyed by the name of the ``compute`` argument they set.
        result: the last value of ``compute``; figure: the last Figure drawn.
        widget: the container to display (controls above the plot).
    """

    def __init__(
        self,
        sliders: Mapping[str, widgets.ValueWidget],
        compute: Callable[..., Any],
        plot: Callable[[Any], Figure],
    ) -> None:
        self.sliders = dict(sliders)
        self._compute = compute
        self._plot = plot
        self.output = widgets.Output()
        self.widget = widgets.VBox([widgets.HBox(list(self.sliders.values())), self.output])
        self.result: Any = None
        self.figure: Figure | None = None
        for control in self.sliders.values():
            control.observe(self._update, names="value")
        self._update()

    def values(self) -> dict[str, Any]:
        """The current value of every control."""
        return {name: control.value for name, control in self.sliders.items()}

    def _update(self, change: Any = None) -> None:
        self.result = self._compute(**self.values())
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


def bce_explorer(pos_weight: float = 1.0, classification: str = "bce") -> Explorer:
    """BCE (or asymmetric loss) and its gradient vs the predicted probability, for y = 1 and y = 0.

    Controls: ``pos_weight`` (0.1 to 10, log scale; BCE only) and ``classification``.
    Result: :func:`refdense.viz.losses.bce_curves`.
    """
    sliders = {
        "pos_weight": widgets.FloatLogSlider(value=pos_weight, base=10, min=-1, max=1, step=0.05,
                                             description="pos_weight", continuous_update=False),
        "classification": widgets.Dropdown(options=["bce", "asymmetric"], value=classification,
                                           description="loss"),
    }
    return Explorer(sliders, compute=lambda **v: bce_curves(**v), plot=plot_bce_curves)


def colv_explorer(temperature: float = 0.07, num_positive: int = 2, num_classes: int = 8,
                  variant: str = "refdense") -> Explorer:
    """CoLV of one segment vs the temperature and the number of co-occurring concepts, and its gradient.

    Controls: ``temperature`` (0.01 to 1, log scale), ``num_positive`` (0 to ``num_classes``),
    ``variant`` (``refdense`` or ``infonce``). Result: :func:`refdense.viz.losses.colv_curves`.
    """
    sliders = {
        "temperature": widgets.FloatLogSlider(value=temperature, base=10, min=-2, max=0, step=0.05,
                                              description="tau", continuous_update=False),
        "num_positive": widgets.IntSlider(value=num_positive, min=0, max=num_classes, description="|beta|",
                                          continuous_update=False),
        "variant": widgets.Dropdown(options=["refdense", "infonce"], value=variant, description="variant"),
    }
    return Explorer(sliders, compute=lambda **v: colv_curves(num_classes=num_classes, **v), plot=plot_colv_curves)


def evaluation_explorer(scores, labels, lengths=None, *, class_names=None, tau: int = 0, threshold: float = 0.5,
                        max_tau: int = 20, matrix: str = "ap") -> Explorer:
    """Action-conditional metrics and the pairwise matrix vs the window tau and the threshold.

    ``scores``, ``labels``, ``lengths`` as :func:`refdense.metrics.action_conditional` (probabilities
    and 0/1 labels, per-video (T_v, C) lists or padded arrays). Controls: ``tau`` (0 to ``max_tau``
    segments), ``threshold`` (0.05 to 0.95), ``matrix`` (``ap``, ``precision``, ``recall``).
    Result: :func:`refdense.viz.evaluation.evaluation_curves`.
    """
    if isinstance(max_tau, bool) or not isinstance(max_tau, int) or not 0 <= tau <= max_tau:
        raise ValueError(f"evaluation_explorer: expected integers 0 <= tau <= max_tau, found tau={tau!r}, max_tau={max_tau!r}")
    sliders = {
        "tau": widgets.IntSlider(value=tau, min=0, max=max_tau, description="tau", continuous_update=False),
        "threshold": widgets.FloatSlider(value=threshold, min=0.05, max=0.95, step=0.05, description="threshold",
                                         continuous_update=False),
        "matrix": widgets.Dropdown(options=list(MATRICES), value=matrix, description="matrix"),
    }
    return Explorer(
        sliders,
        compute=lambda **v: evaluation_curves(scores, labels, lengths, **v),
        plot=lambda result: plot_evaluation(result, class_names),
    )
