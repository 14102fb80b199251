"""Loss and gradient pictures for the BCE and CoLV explorers of the notebooks.

The pure functions (:func:`bce_curves`, :func:`colv_geometry`) evaluate the package's own losses
(:mod:`refdense.losses`) with autograd and return numpy arrays, so what a notebook plots is what
training computes. The ``plot_*`` functions draw those arrays and return the Figure.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import numpy.typing as npt
import torch
import torch.nn.functional as F
from matplotlib.artist import Artist
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.text import Annotation
from matplotlib.transforms import Bbox

from refdense.losses import (
    ASL_CLIP,
    ASL_GAMMA_NEG,
    ASL_GAMMA_POS,
    COLV_VARIANTS,
    asymmetric_loss,
    colv_loss_from_similarities,
    masked_bce,
)
from refdense.viz import figure_of
from refdense.viz.style import (
    FAINT_GREY,
    FONT_SIZES,
    HIGHLIGHT_COLOUR,
    INK,
    LOSS_COLOURS,
    MUTED_GREY,
    OUTCOME_COLOURS,
    REFERENCE_GREY,
    figure_size,
)


def bce_curves(
    probabilities: np.ndarray | None = None,
    *,
    positive_rate: float = 0.05,
    pos_weight: float = 1.0,
    classification: str = "bce",
    gamma_neg: float = ASL_GAMMA_NEG,
    gamma_pos: float = ASL_GAMMA_POS,
    clip: float = ASL_CLIP,
) -> dict:
    """Per-entry classification loss and its gradient w.r.t. the logit, for y = 1 and y = 0, and
    where a class with ``positive_rate`` settles.

    A class whose segments are positive with probability pi, predicted with the same probability p
    everywhere, receives on average ``pi * grad_positive(p) + (1 - pi) * grad_negative(p)`` per
    segment: the positives pull p up, the negatives push it down, and p settles where the two
    balance (``equilibrium``). Under plain BCE that is p = pi: a rare class is pushed to a small
    probability, below a 0.5 threshold.

    Args:
        probabilities: predicted probabilities p in (0, 1) (default: 399 points from 0.0025 to 0.9975).
        positive_rate: pi in (0, 1), the share of positive segments of the class.
        pos_weight: weight of the positive term (``classification="bce"`` only).
        classification: ``"bce"`` (:func:`~refdense.losses.masked_bce`) or ``"asymmetric"``
            (:func:`~refdense.losses.asymmetric_loss` with ``gamma_neg``, ``gamma_pos``, ``clip``).

    Returns:
        ``{"probability", "loss_positive", "grad_positive", "loss_negative", "grad_negative",
        "grad_expected"}`` arrays of the same length (``grad_*`` is d loss / d logit;
        ``grad_expected`` the average over the class's segments), and the floats
        ``"positive_rate"`` and ``"equilibrium"`` (the p where ``grad_expected`` crosses zero,
        interpolated; NaN if it does not cross on the grid), and ``"setting"`` (the loss and its
        parameters, in words).
    """
    p = (
        np.linspace(0.0025, 0.9975, 399)
        if probabilities is None
        else np.asarray(probabilities, dtype=np.float64)
    )
    if p.ndim != 1 or p.size == 0 or np.any((p <= 0) | (p >= 1)):
        raise ValueError(f"bce_curves: expected a 1-d array of probabilities in (0, 1), found {p!r}")
    if not 0 < positive_rate < 1:
        raise ValueError(f"bce_curves: positive_rate: expected a share in (0, 1), found {positive_rate!r}")
    logits = torch.logit(torch.as_tensor(p)).reshape(1, -1, 1)
    mask = torch.ones(1, p.size, dtype=torch.bool)
    out: dict[str, Any] = {"probability": p}
    for name, target in (("positive", 1.0), ("negative", 0.0)):
        x = logits.clone().requires_grad_(True)
        y = torch.full_like(x, target)
        if classification == "bce":
            loss = masked_bce(x, y, mask, pos_weight=pos_weight, reduction="none")
        elif classification == "asymmetric":
            loss = asymmetric_loss(
                x, y, mask, gamma_neg=gamma_neg, gamma_pos=gamma_pos, clip=clip, reduction="none"
            )
        else:
            raise ValueError(
                f"bce_curves: classification: expected 'bce' or 'asymmetric', found {classification!r}"
            )
        (grad,) = torch.autograd.grad(loss.sum(), x)
        out[f"loss_{name}"] = loss.detach().reshape(-1).numpy()
        out[f"grad_{name}"] = grad.reshape(-1).numpy()
    expected = positive_rate * out["grad_positive"] + (1 - positive_rate) * out["grad_negative"]
    out["grad_expected"] = expected
    out["positive_rate"] = float(positive_rate)
    out["setting"] = (
        f"BCE, pos_weight = {pos_weight:.3g}"
        if classification == "bce"
        else f"asymmetric loss, gamma_neg = {gamma_neg:.3g}, gamma_pos = {gamma_pos:.3g}, clip = {clip:.3g}"
    )
    crossing = np.flatnonzero((expected[:-1] < 0) & (expected[1:] >= 0))
    if crossing.size:
        k = crossing[0]
        out["equilibrium"] = float(p[k] + (p[k + 1] - p[k]) * -expected[k] / (expected[k + 1] - expected[k]))
    else:
        out["equilibrium"] = float("nan")
    return out


def plot_bce_curves(curves: dict, fig: Figure | None = None, title: str | None = None) -> Figure:
    """Three panels against the predicted probability p: the loss of one entry, its gradient, and
    the average gradient of a class with the given positive rate (where it settles is marked)."""
    if fig is None:
        fig = plt.figure(figsize=figure_size("wide"), layout="constrained")
    loss_ax, grad_ax, rate_ax = fig.subplots(1, 3)
    p = curves["probability"]
    for name, label in (("positive", "y = 1"), ("negative", "y = 0")):
        loss_ax.plot(p, curves[f"loss_{name}"], color=OUTCOME_COLOURS[name], label=label)
        grad_ax.plot(p, curves[f"grad_{name}"], color=OUTCOME_COLOURS[name], label=label)
    loss_ax.set(xlabel="predicted probability p", ylabel="loss of one entry", title="loss")
    loss_ax.legend()
    grad_ax.axhline(0, color=REFERENCE_GREY, lw=0.8)
    grad_ax.set(xlabel="predicted probability p", ylabel="d loss / d logit", title="gradient of one entry")
    rate = curves["positive_rate"]
    rate_ax.plot(
        p,
        rate * curves["grad_positive"],
        color=OUTCOME_COLOURS["positive"],
        lw=1,
        label=f"positives (x {rate:.3g})",
    )
    rate_ax.plot(
        p,
        (1 - rate) * curves["grad_negative"],
        color=OUTCOME_COLOURS["negative"],
        lw=1,
        label=f"negatives (x {1 - rate:.3g})",
    )
    rate_ax.plot(p, curves["grad_expected"], color=INK, lw=2, label="sum")
    rate_ax.axhline(0, color=REFERENCE_GREY, lw=0.8)
    pull = max(float(-curves["grad_expected"].min()), 1e-3)  # the strongest average pull up
    limit = 2.5 * pull
    rate_ax.set(
        xscale="log",
        xlabel="predicted probability p (log)",
        ylabel="average d loss / d logit",
        ylim=(-limit, limit),
        title=f"a class with {100 * rate:.3g}% positives\n(near p = 0)",
    )
    legend = rate_ax.legend(loc="lower right")
    fig.suptitle(title or curves["setting"])
    settle = curves["equilibrium"]
    if np.isfinite(settle):  # last: the figure is complete, so its layout is final
        rate_ax.axvline(settle, color=HIGHLIGHT_COLOUR, ls="--", lw=1)
        style = {"color": HIGHLIGHT_COLOUR, "fontsize": FONT_SIZES["small"]}
        where = [(settle, 0.7 * limit)]  # beside the line, clear of the curves and the legend
        text = [f"settles at\np = {settle:.3f}"]
        place_labels(rate_ax, where, text, [style], avoid=[*rate_ax.get_lines(), legend])
    return fig


def _colv_and_bce(
    unit_prompts: torch.Tensor, labels: torch.Tensor, start: torch.Tensor, temperature: float, variant: str
) -> tuple[Callable[[torch.Tensor], torch.Tensor], dict[str, Callable[[torch.Tensor], torch.Tensor]]]:
    """The similarities ``s(f)`` (C,) of a segment feature f (D,) and two losses of them: CoLV of the
    segment, and BCE of a stand-in head with logits ``z_c = (s_c - s_c(start)) / tau``, undecided
    (p = 0.5 for every class) at the start."""
    mask = torch.ones(1, 1, dtype=torch.bool)

    def similarities(f: torch.Tensor) -> torch.Tensor:
        return unit_prompts @ F.normalize(f, dim=0)

    offset = similarities(start).detach()

    def colv(s: torch.Tensor) -> torch.Tensor:
        return colv_loss_from_similarities(
            s.reshape(1, 1, -1), labels.reshape(1, 1, -1), mask, temperature, variant=variant
        )

    def bce(s: torch.Tensor) -> torch.Tensor:
        return masked_bce(((s - offset) / temperature).reshape(1, 1, -1), labels.reshape(1, 1, -1), mask)

    return similarities, {"colv": colv, "bce": bce}


def colv_lower_bound(variant: str, num_positive: int, num_negative: int, temperature: float) -> float:
    """The smallest value one segment's CoLV can take with unit vectors (similarities in [-1, 1]).

    ``refdense``: ``-2/tau + log |negatives|`` (positives at +1, negatives at -1): below zero, and
    the pull on the positives never fades on the way there; ``infonce``: 0 (a -log of a
    probability); ``supcon``: ``log |beta|`` (the positives share the softmax). 0 for a segment
    without positive or negative (its loss is 0).
    """
    if variant not in COLV_VARIANTS:
        raise ValueError(f"colv_lower_bound: variant: expected one of {COLV_VARIANTS}, found {variant!r}")
    if num_positive == 0 or num_negative == 0:
        return 0.0
    return {
        "refdense": -2.0 / temperature + float(np.log(num_negative)),
        "infonce": 0.0,
        "supcon": float(np.log(num_positive)),
    }[variant]


def colv_geometry(
    embeddings: npt.ArrayLike,
    positives: Sequence[int],
    *,
    temperature: float = 0.07,
    variant: str = "refdense",
    names: Sequence[str] | None = None,
    feature: npt.ArrayLike | None = None,
    steps: int = 20,
    step_size: float = 0.3,
) -> dict[str, Any]:
    """One segment feature f on the unit sphere among the prompt embeddings, and where CoLV moves it.

    CoLV of one segment is a function of the feature f through the similarities
    ``s_c = u_c . f / |f|``; its gradient ``-dL/df = -sum_c (dL/ds_c) u_c`` (projected on the
    sphere's tangent by the normalisation) is the direction training moves f. Beside it, BCE of a
    stand-in head on the same similarities, with logits ``z_c = (s_c - s_c(start)) / tau`` (undecided,
    p = 0.5 for every class, at the start). Both are followed by
    gradient descent on the sphere from the same start, ``f <- normalise(f - step_size * tau * dL/df)``.

    Args:
        embeddings: (C, D) prompt embeddings u_c (normalised here).
        positives: indices of the concepts on at the segment (beta); the others are its negatives.
        temperature: tau > 0. variant: ``"refdense"``, ``"infonce"`` or ``"supcon"``.
        names: C concept names (default: indices). feature: (D,) start (default: the normalised mean
            of the unit prompts, a segment equally close to every concept).
        steps: descent steps; step_size: in units of tau (the gradients scale as 1/tau).

    Returns:
        ``"names"``, ``"positive"`` (C,) bool, ``"temperature"``, ``"variant"``;
        ``"similarity"`` (C,) at the start; ``"force_colv"``, ``"force_bce"`` (C,): ``-dL/ds_c`` at
        the start (> 0: pulled towards u_c, < 0: pushed away); ``"view_prompts"`` (C, 2),
        ``"view_start"`` (2,), ``"arrow_colv"``, ``"arrow_bce"`` (2,) (``-dL/df`` at the start) and
        ``"path_colv"``, ``"path_bce"`` (steps + 1, 2): everything seen in the plane of the two main
        directions of the (centred) unit prompts; ``"loss_colv"``, ``"loss_bce"``,
        ``"pull_colv"``, ``"pull_bce"`` (steps + 1,): the loss and the mean pull ``-dL/ds_e`` on the
        positives along each path; ``"end_similarity_colv"``, ``"end_similarity_bce"`` (C,): the
        similarities where each descent ends; ``"lower_bound"``: :func:`colv_lower_bound`.
    """
    u = torch.as_tensor(np.asarray(embeddings), dtype=torch.float64)
    if u.dim() != 2 or u.shape[0] < 2:
        raise ValueError(
            f"colv_geometry: embeddings: expected a (C, D) array with C >= 2, found shape {tuple(u.shape)}"
        )
    num_classes = u.shape[0]
    names = [str(c) for c in range(num_classes)] if names is None else [str(n) for n in names]
    if len(names) != num_classes:
        raise ValueError(f"colv_geometry: names: expected {num_classes} names, found {len(names)}")
    beta = sorted({int(c) for c in positives})
    if any(not 0 <= c < num_classes for c in beta):
        raise ValueError(
            f"colv_geometry: positives: expected indices in [0, {num_classes}), found {list(positives)}"
        )
    if variant not in COLV_VARIANTS:
        raise ValueError(f"colv_geometry: variant: expected one of {COLV_VARIANTS}, found {variant!r}")
    if not temperature > 0:
        raise ValueError(f"colv_geometry: temperature: expected a value > 0, found {temperature!r}")
    unit = F.normalize(u, dim=1)
    labels = torch.zeros(num_classes, dtype=torch.float64)
    labels[beta] = 1.0
    start = unit.mean(0) if feature is None else torch.as_tensor(np.asarray(feature), dtype=torch.float64)
    if start.shape != (u.shape[1],):
        raise ValueError(
            f"colv_geometry: feature: expected shape ({u.shape[1]},), found {tuple(start.shape)}"
        )
    start = F.normalize(start, dim=0)
    similarities, losses = _colv_and_bce(unit, labels, start, temperature, variant)
    _, _, directions = torch.linalg.svd(unit - unit.mean(0), full_matrices=False)
    plane = directions[:2].T  # (D, 2)
    result: dict[str, Any] = {
        "names": names,
        "positive": labels.bool().numpy(),
        "temperature": float(temperature),
        "variant": variant,
        "similarity": similarities(start).numpy(),
        "view_prompts": (unit @ plane).numpy(),
        "view_start": (start @ plane).numpy(),
        "lower_bound": colv_lower_bound(variant, len(beta), num_classes - len(beta), temperature),
    }
    positive = labels.bool()
    for name, loss_of in losses.items():
        f = start.clone()
        path, values, pulls = [f @ plane], [], []
        for step in range(steps + 1):
            f = f.detach().requires_grad_(True)
            s = similarities(f)
            s.retain_grad()
            loss = loss_of(s)
            loss.backward()
            assert s.grad is not None and f.grad is not None, "backward fills the retained gradients"
            force, grad = -s.grad.detach(), f.grad.detach()
            values.append(float(loss.detach()))
            pulls.append(float(force[positive].mean()) if positive.any() else 0.0)
            if step == 0:
                result[f"force_{name}"] = force.numpy()
                result[f"arrow_{name}"] = (-grad @ plane).numpy()
            if step < steps:
                f = F.normalize(f.detach() - step_size * temperature * grad, dim=0)
                path.append(f @ plane)
        result[f"path_{name}"] = torch.stack(path).numpy()
        result[f"end_similarity_{name}"] = similarities(f.detach()).numpy()
        result[f"loss_{name}"] = np.array(values)
        result[f"pull_{name}"] = np.array(pulls)
    return result


_COLV_TITLES = {
    "refdense": "CoLV, paper (negatives-only denominator)",
    "infonce": "CoLV, InfoNCE",
    "supcon": "CoLV, supervised-contrastive (positives compete)",
}


_DIRECTIONS = np.deg2rad([0, 180, 45, 135, -45, -135, 90, -90])
"""Where a label may sit around its point, in order of preference: beside it (right, left), above it to
either side, below it to either side, right above, right below."""

_RADII = (0.0, 6.0, 14.0, 24.0, 36.0, 50.0, 68.0, 90.0, 120.0)
"""How far beyond its point's clearance a label may move (points), ring after ring."""


def place_labels(
    ax: Axes,
    points: npt.ArrayLike,
    texts: Sequence[str],
    styles: Sequence[dict[str, Any]],
    *,
    clearance: float = 4.0,
    avoid: Sequence[Artist] = (),
) -> list[Annotation]:
    """Write ``texts[k]`` next to ``points[k]`` (data coordinates of ``ax``) so that no two labels
    overlap, none covers a point or an artist of ``avoid`` and each stays inside ``ax``.

    ``styles[k]``: the label's Text properties (colour, weight, size); ``clearance``: the radius, in
    points, kept free around every point (its marker); ``avoid``: what the labels keep clear of: a
    line (a Line2D drawn with a line style) along its path, anything else (markers, a legend with a
    fixed ``loc``, an arrow) over its box. Call it last: every box is measured with the figure's
    renderer (``get_window_extent``) once the layout has placed ``ax``. A label is tried on rings of
    growing distance around its point (:data:`_DIRECTIONS`, :data:`_RADII`) and takes the first free
    spot; one beyond the first ring is tied to its point by a thin line. Where no spot is free (more
    text than the axes hold), it takes the spot that covers least. Returns the labels, in the order of
    ``texts``.
    """
    fig = figure_of(ax)
    fig.draw_without_rendering()  # the layout places the axes (and applies their aspect) before anything is measured
    frame, pixels = ax.get_window_extent(), fig.dpi / 72
    xy = np.atleast_2d(np.asarray(points, dtype=float))
    margin = clearance * pixels
    taken = [
        Bbox.from_extents(x - margin, y - margin, x + margin, y + margin)
        for x, y in ax.transData.transform(xy)
    ]
    lines = [a for a in avoid if isinstance(a, Line2D) and a.get_linestyle() not in ("None", "", " ")]
    taken += [artist.get_window_extent() for artist in avoid if artist not in lines]  # markers, a legend
    paths = [line.get_transform().transform_path(line.get_path()) for line in lines]

    def cost(box: Bbox) -> float:
        """What ``box`` covers: its area outside the axes (which weighs most), what is taken, and the
        lines through it (each as if it covered the box)."""
        area = box.width * box.height
        inside = Bbox.intersection(box, frame)
        overlaps = [overlap for other in taken if (overlap := Bbox.intersection(box, other)) is not None]
        crossed = sum(path.intersects_bbox(box, filled=False) for path in paths)
        outside = area - (inside.width * inside.height if inside is not None else 0.0)
        return 1e3 * outside + sum(overlap.width * overlap.height for overlap in overlaps) + crossed * area

    labels = []
    for (x, y), text, style in zip(xy, texts, styles):
        trial = ax.annotate(text, (x, y), xytext=(0, 0), textcoords="offset points", **style)
        best: tuple[float, float, Bbox, tuple[float, float], str, str] | None = None
        for radius in _RADII:
            for angle in _DIRECTIONS:
                dx, dy = float(np.cos(angle)), float(np.sin(angle))
                offset = ((clearance + radius) * dx, (clearance + radius) * dy)
                ha = "left" if dx > 0.3 else "right" if dx < -0.3 else "center"
                va = "bottom" if dy > 0.3 else "top" if dy < -0.3 else "center"
                trial.xyann = offset
                trial.set(horizontalalignment=ha, verticalalignment=va)
                box = trial.get_window_extent()
                covered = cost(box)
                if best is None or covered < best[0]:
                    best = (covered, radius, box, offset, ha, va)
            if best is not None and best[0] == 0:
                break
        assert best is not None, "every label tries at least one spot"
        trial.remove()
        _, radius, box, offset, ha, va = best
        line = {
            "arrowstyle": "-",
            "color": style.get("color", INK),
            "lw": 0.5,
            "shrinkA": 1,
            "shrinkB": clearance,
        }
        away = radius > _RADII[0]  # away from its point: a thin line says whose label it is
        arrow = line if away else None
        labels.append(
            ax.annotate(
                text, (x, y), offset, textcoords="offset points", ha=ha, va=va, arrowprops=arrow, **style
            )
        )
        taken.append(box.padded(pixels))  # the next label keeps a pixel away
    return labels


def plot_colv_geometry(geometry: dict, fig: Figure | None = None, title: str | None = None) -> Figure:
    """Four panels from :func:`colv_geometry`: the sphere seen in a plane (prompts, the segment
    feature, ``-dL/df`` of CoLV and BCE and where descent takes f), the force on each prompt, the
    loss along the way (with CoLV's lower bound) and the pull on the positives along the way."""
    if fig is None:
        fig = plt.figure(figsize=figure_size("wide", height=7.6), layout="constrained")
    (view_ax, force_ax), (loss_ax, pull_ax) = fig.subplots(2, 2, gridspec_kw={"width_ratios": [1, 1.25]})
    names, positive = geometry["names"], geometry["positive"]
    tau, variant = geometry["temperature"], geometry["variant"]
    colv_label, colours = _COLV_TITLES[variant], LOSS_COLOURS

    points = geometry["view_prompts"]
    start = geometry["view_start"]
    arrows = np.stack([geometry["arrow_colv"], geometry["arrow_bce"]])
    seen = np.concatenate([points, geometry["path_colv"], geometry["path_bce"], start[None]])
    centre, half = (seen.max(0) + seen.min(0)) / 2, 0.6 * float((seen.max(0) - seen.min(0)).max()) + 0.05
    scale = 0.4 * half / max(float(np.abs(arrows).max()), 1e-12)
    angle = np.linspace(0, 2 * np.pi, 400)
    view_ax.plot(np.cos(angle), np.sin(angle), color=FAINT_GREY, lw=1)  # the sphere's outline, where in view
    view_ax.scatter(
        points[:, 0],
        points[:, 1],
        s=40,
        zorder=3,
        c=np.where(positive, OUTCOME_COLOURS["positive"], OUTCOME_COLOURS["undecided"]),
        edgecolors=INK,
        linewidths=0.5,
    )
    marks = []  # the paths, markers and arrows the concepts' labels keep clear of
    for name in ("colv", "bce"):
        path = geometry[f"path_{name}"]
        marks += view_ax.plot(path[:, 0], path[:, 1], ":", color=colours[name], lw=1.5)
        marks += view_ax.plot(
            *path[-1],
            "*",
            color=colours[name],
            ms=12,
            zorder=4,
            label=f"{'CoLV' if name == 'colv' else 'BCE'}: where descent ends",
        )
        arrow = view_ax.annotate(
            "",
            xy=start + scale * geometry[f"arrow_{name}"],
            xytext=start,
            arrowprops=dict(arrowstyle="-|>", color=colours[name], lw=2),
        )
        marks.append(arrow)
    marks += view_ax.plot(*start, "o", color=INK, ms=7, zorder=4, label="segment feature f (start)")
    view_ax.set(
        aspect="equal",
        xlim=(centre[0] - half, centre[0] + half),
        ylim=(centre[1] - half, centre[1] + half),
        title="the unit sphere seen in the plane of the prompts\n(arrows: -dL/df at the start, same scale)",
    )
    view_ax.tick_params(labelsize=FONT_SIZES["small"])
    legend = view_ax.legend(loc="lower left")

    index = np.arange(len(names))
    force_ax.bar(index - 0.2, geometry["force_colv"], width=0.4, color=colours["colv"], label="CoLV")
    force_ax.bar(
        index + 0.2, geometry["force_bce"], width=0.4, color=colours["bce"], label="BCE (stand-in head)"
    )
    force_ax.axhline(0, color=REFERENCE_GREY, lw=0.8)
    force_ax.set_xticks(index, names, rotation=90, fontsize=FONT_SIZES["small"])
    for tick, on in zip(force_ax.get_xticklabels(), positive):
        tick.set_color(OUTCOME_COLOURS["positive"] if on else MUTED_GREY)
    force_ax.set(
        ylabel="-dL/ds_c  (> 0: pulled towards u_c)", title="force on each prompt at the start (green: on)"
    )
    force_ax.legend()

    steps = np.arange(len(geometry["loss_colv"]))
    loss_ax.plot(steps, geometry["loss_colv"], color=colours["colv"], label="CoLV")
    loss_ax.plot(steps, geometry["loss_bce"], color=colours["bce"], label="BCE")
    loss_ax.axhline(
        geometry["lower_bound"],
        color=colours["colv"],
        ls="--",
        lw=1,
        label=f"CoLV's lower bound {geometry['lower_bound']:.2f}",
    )
    loss_ax.set(xlabel="descent step", ylabel="loss of the segment", title="loss along the descent")
    loss_ax.legend()

    pull_ax.plot(steps, geometry["pull_colv"], color=colours["colv"], label="CoLV")
    pull_ax.plot(steps, geometry["pull_bce"], color=colours["bce"], label="BCE")
    pull_ax.axhline(0, color=REFERENCE_GREY, lw=0.8)
    pull_ax.set(
        xlabel="descent step",
        ylabel="mean -dL/ds_e over the positives",
        title="pull on the co-occurring concepts\nalong the descent",
    )
    pull_ax.legend()
    fig.suptitle(
        title or f"{colv_label}, tau = {tau:.3g}, {int(positive.sum())} co-occurring of {len(names)}"
    )
    styles = [
        {
            "fontsize": FONT_SIZES["small"],
            "color": OUTCOME_COLOURS["positive"] if on else MUTED_GREY,
            "fontweight": "bold" if on else "normal",
        }
        for on in positive
    ]
    first = np.argsort(~positive, kind="stable")  # the co-occurring concepts take the nearest spots
    place_labels(  # last: the figure is complete, so its layout is final
        view_ax, points[first], [names[c] for c in first], [styles[c] for c in first], avoid=[*marks, legend]
    )
    return fig
