"""The architectures ``ModelConfig.arch`` can name: each detector's module registers its own.

An :class:`Architecture` says what the rest of the package needs besides the module itself: how to
build it, which feature stream it reads, the widths of the features CoLV aligns and which auxiliary
heads it can have. ``build_model``, ``ModelConfig`` (its ``arch`` choices and ``stream``), the
criterion's CoLV projections (``refdense.train.components.build_criterion``) and the composed
readout (``refdense.train.evaluate.readout_unavailable``) read it; none of them names an
architecture. Adding one is a module that defines a :class:`~refdense.models.detector.Detector`
and calls :func:`register`, imported by ``refdense/models/__init__.py`` (docs/DESIGN.md, "Models").
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Architecture:
    """One architecture of the registry.

    Attributes:
        name: the value of ``ModelConfig.arch``.
        build: ``build(cfg, *, video_dim, image_dim, num_classes, num_entities, num_motions) ->
            Detector`` (``build_model`` checks the sizes first; an architecture uses those it needs).
        stream: the feature stream a single-network architecture reads when ``cfg.inputs`` is None
            (``"video"``, ``"image"`` or ``"concat"``); None for one that reads both streams its own
            way (RefDense), whose ``cfg.inputs`` must then be None.
        colv_widths: ``colv_widths(cfg) -> {concept set: width}``: for each concept set whose
            features the model returns (``DetectionOutput.action_features``, ``entity_features``,
            ``motion_features``), their width, which CoLV projects to the text embeddings.
        auxiliary: the auxiliary heads it can have, among ``"entity"`` and ``"motion"`` (Eq. 9;
            ``ModelConfig.entity_head`` / ``motion_head`` switch them off).
        summary: one line: what it is.
    """

    name: str
    build: Callable[..., Any]  # -> Detector (the types are not imported: config.py imports this module)
    stream: str | None
    colv_widths: Callable[[Any], Mapping[str, int]]  # (ModelConfig) -> widths
    auxiliary: tuple[str, ...] = ()
    summary: str = ""


_REGISTRY: dict[str, Architecture] = {}


def register(architecture: Architecture) -> Architecture:
    """Add ``architecture`` under its name and return it; a name already taken is a ``ValueError``."""
    if architecture.name in _REGISTRY:
        raise ValueError(
            f"architecture {architecture.name!r} is already registered ({_REGISTRY[architecture.name]})"
        )
    _REGISTRY[architecture.name] = architecture
    return architecture


def unregister(name: str) -> None:
    """Remove the architecture ``name`` (a test's toy architecture, once the test is done)."""
    if name not in _REGISTRY:
        raise ValueError(f"architecture {name!r} is not registered; registered: {', '.join(_REGISTRY)}")
    del _REGISTRY[name]


def architecture(name: str) -> Architecture:
    """The architecture registered as ``name``; an unknown name is a ``ValueError`` listing the known ones."""
    if name not in _REGISTRY:
        raise ValueError(f"unknown architecture {name!r}; registered: {', '.join(map(repr, _REGISTRY))}")
    return _REGISTRY[name]


def architectures() -> tuple[str, ...]:
    """The names of the registered architectures, in the order they were registered."""
    return tuple(_REGISTRY)
