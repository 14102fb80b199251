"""Loss and gradient curves for the BCE and CoLV explorers of the notebooks.

The ``*_curves`` functions are pure: they evaluate the package's own losses (:mod:`refdense.losses`)
on small synthetic inputs and return numpy arrays, so what a notebook plots is what training
computes. The ``plot_*`` functions draw those arrays and return the Figure.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.figure import Figure

from refdense.losses import (
    ASL_CLIP,
    ASL_GAMMA_NEG,
    ASL_GAMMA_POS,
    asymmetric_loss,
    colv_loss_from_similarities,
    masked_bce,
)


def bce_curves(
    probabilities: np.ndarray | None = None,
    *,
    pos_weight: float = 1.0,
    classification: str = "bce",
    gamma_neg: float = ASL_GAMMA_NEG,
    gamma_pos: float = ASL_GAMMA_POS,
    clip: float = ASL_CLIP,
) -> dict[str, np.ndarray]:
    """Per-entry classification loss and its gradient w.r.t. the logit, for y = 1 and y = 0.

    Args:
        probabilities: predicted probabilities p in (0, 1) (default: 199 points from 0.005 to 0.995).
        pos_weight: weight of the positive term (``classification="bce"`` only).
        classification: ``"bce"`` (:func:`~refdense.losses.masked_bce`) or ``"asymmetric"``
            (:func:`~refdense.losses.asymmetric_loss` with ``gamma_neg``, ``gamma_pos``, ``clip``).

    Returns:
        ``{"probability", "loss_positive", "grad_positive", "loss_negative", "grad_negative"}``,
        arrays of the same length; ``grad_*`` is d loss / d logit.
    """
    p = np.linspace(0.005, 0.995, 199) if probabilities is None else np.asarray(probabilities, dtype=np.float64)
    if p.ndim != 1 or p.size == 0 or np.any((p <= 0) | (p >= 1)):
        raise ValueError(f"bce_curves: expected a 1-d array of probabilities in (0, 1), found {p!r}")
    logits = torch.logit(torch.as_tensor(p)).reshape(1, -1, 1)
    mask = torch.ones(1, p.size, dtype=torch.bool)
    out = {"probability": p}
    for name, target in (("positive", 1.0), ("negative", 0.0)):
        x = logits.clone().requires_grad_(True)
        y = torch.full_like(x, target)
        if classification == "bce":
            loss = masked_bce(x, y, mask, pos_weight=pos_weight, reduction="none")
        elif classification == "asymmetric":
            loss = asymmetric_loss(x, y, mask, gamma_neg=gamma_neg, gamma_pos=gamma_pos, clip=clip, reduction="none")
        else:
            raise ValueError(f"bce_curves: classification: expected 'bce' or 'asymmetric', found {classification!r}")
        (grad,) = torch.autograd.grad(loss.sum(), x)
        out[f"loss_{name}"] = loss.detach().reshape(-1).numpy()
        out[f"grad_{name}"] = grad.reshape(-1).numpy()
    return out


def plot_bce_curves(curves: dict[str, np.ndarray], fig: Figure | None = None, title: str | None = None) -> Figure:
    """Two panels: loss and d loss / d logit against the predicted probability, for y = 1 and y = 0."""
    if fig is None:
        fig = plt.figure(figsize=(9, 3.4), layout="constrained")
    loss_ax, grad_ax = fig.subplots(1, 2)
    p = curves["probability"]
    for name, label, color in (("positive", "y = 1", "tab:green"), ("negative", "y = 0", "tab:red")):
        loss_ax.plot(p, curves[f"loss_{name}"], color=color, label=label)
        grad_ax.plot(p, curves[f"grad_{name}"], color=color, label=label)
    loss_ax.set(xlabel="predicted probability p", ylabel="loss", title="loss")
    grad_ax.axhline(0, color="0.6", lw=0.8)
    grad_ax.set(xlabel="predicted probability p", ylabel="d loss / d logit", title="gradient")
    loss_ax.legend()
    if title:
        fig.suptitle(title)
    return fig


def colv_curves(
    temperature: float = 0.07,
    num_positive: int = 2,
    *,
    num_classes: int = 8,
    variant: str = "refdense",
    seed: int = 0,
    temperatures: np.ndarray | None = None,
) -> dict[str, np.ndarray]:
    """CoLV of one segment against the temperature and the number of co-occurring concepts.

    The segment has fixed cosine similarities to ``num_classes`` prompts, drawn uniformly in
    [-0.2, 0.5] with ``seed``; its first ``num_positive`` classes are the co-occurring ones (beta).
    Everything is computed with :func:`~refdense.losses.colv_loss_from_similarities`.

    Returns:
        ``temperatures`` (N,) and ``loss_vs_temperature`` (N,) for ``num_positive``;
        ``num_positives`` (0..C) and ``loss_vs_positives`` at ``temperature``;
        ``similarities`` (C,), ``positive`` (C,) bool, ``grad`` (C,): d loss / d s_c at
        (``temperature``, ``num_positive``); ``loss``: that loss.
    """
    if not 0 <= num_positive <= num_classes:
        raise ValueError(f"colv_curves: num_positive: expected 0..{num_classes}, found {num_positive}")
    taus = np.geomspace(0.01, 1.0, 60) if temperatures is None else np.asarray(temperatures, dtype=np.float64)
    generator = torch.Generator().manual_seed(seed)
    similarities = (torch.rand(num_classes, generator=generator, dtype=torch.float64) * 0.7 - 0.2)
    mask = torch.ones(1, 1, dtype=torch.bool)

    def labels_for(k: int) -> torch.Tensor:
        labels = torch.zeros(1, 1, num_classes, dtype=torch.float64)
        labels[..., :k] = 1
        return labels

    def loss_at(s: torch.Tensor, tau: float, k: int) -> torch.Tensor:
        return colv_loss_from_similarities(s.reshape(1, 1, -1), labels_for(k), mask, tau, variant=variant)

    s = similarities.clone().requires_grad_(True)
    loss = loss_at(s, temperature, num_positive)
    (grad,) = torch.autograd.grad(loss, s)
    return {
        "temperatures": taus,
        "loss_vs_temperature": np.array([loss_at(similarities, float(t), num_positive).item() for t in taus]),
        "num_positives": np.arange(num_classes + 1),
        "loss_vs_positives": np.array([loss_at(similarities, temperature, k).item() for k in range(num_classes + 1)]),
        "similarities": similarities.numpy(),
        "positive": labels_for(num_positive).reshape(-1).bool().numpy(),
        "grad": grad.numpy(),
        "loss": np.array(loss.item()),
        "temperature": np.array(temperature),
        "num_positive": np.array(num_positive),
    }


def plot_colv_curves(curves: dict[str, np.ndarray], fig: Figure | None = None, title: str | None = None) -> Figure:
    """Three panels: loss vs temperature, loss vs number of co-occurring concepts, per-class gradient."""
    if fig is None:
        fig = plt.figure(figsize=(12, 3.4), layout="constrained")
    tau_ax, k_ax, grad_ax = fig.subplots(1, 3)
    tau, k = float(curves["temperature"]), int(curves["num_positive"])
    tau_ax.plot(curves["temperatures"], curves["loss_vs_temperature"], color="tab:blue")
    tau_ax.plot([tau], [float(curves["loss"])], "o", color="black")
    tau_ax.set(xscale="log", xlabel="temperature tau", ylabel="CoLV", title=f"{k} co-occurring concepts")
    k_ax.plot(curves["num_positives"], curves["loss_vs_positives"], "o-", color="tab:blue")
    k_ax.plot([k], [float(curves["loss"])], "o", color="black")
    k_ax.set(xlabel="number of co-occurring concepts |beta|", ylabel="CoLV", title=f"tau = {tau:.3g}")
    classes = np.arange(len(curves["grad"]))
    colors = np.where(curves["positive"], "tab:green", "tab:red")
    grad_ax.bar(classes, curves["grad"], color=colors)
    grad_ax.axhline(0, color="0.6", lw=0.8)
    grad_ax.set(xlabel="class c (green: in beta)", ylabel="d CoLV / d s_c", title="gradient per class", xticks=classes)
    if title:
        fig.suptitle(title)
    return fig
