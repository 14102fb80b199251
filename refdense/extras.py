"""The optional dependencies: what the library needs only for plots, notebooks and CLIP.

``pip install refdense`` installs the library (training, evaluation, data, models); the course
stack (matplotlib, ipywidgets, JupyterLab, nbval, open_clip and the Hugging Face hub client that
fetches CLIP's weights) comes with ``pip install "refdense[course]"``. The library imports none of
it when it is imported: a module that needs a package of the extra asks :func:`require_extra` for it
where it uses it, and a missing one is an error naming the extra, not a bare
``ModuleNotFoundError``.
"""

from __future__ import annotations

import importlib
import importlib.util
from types import ModuleType

COURSE_EXTRA = 'pip install "refdense[course]"'
#: What a report says where its figures would be when matplotlib is missing.
NO_PLOTS = f"No plots: matplotlib is not installed ({COURSE_EXTRA} installs it)."
# Top-level modules of the extra's packages that the package itself imports.
EXTRA_PACKAGES = (
    "matplotlib",
    "ipywidgets",
    "IPython",
    "open_clip",
    "huggingface_hub",
    "nbformat",
    "nbclient",
)


class MissingExtraError(ModuleNotFoundError):
    """A package of the ``course`` extra is needed but not installed."""


def available(module: str) -> bool:
    """Whether ``module`` (e.g. ``"matplotlib"``) can be imported, without importing it."""
    return importlib.util.find_spec(module.split(".")[0]) is not None


def require_extra(module: str, purpose: str) -> ModuleType:
    """Import ``module`` (e.g. ``"matplotlib.pyplot"``) for ``purpose`` (e.g. ``"plots"``) or raise
    :class:`MissingExtraError` naming the package and the extra that installs it."""
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as error:
        raise missing_extra(error, purpose) from error


def missing_extra(error: ModuleNotFoundError, purpose: str) -> ModuleNotFoundError:
    """The error to raise for ``error``, raised by importing a package for ``purpose``: a
    :class:`MissingExtraError` naming the missing package and the extra, or ``error`` itself when
    the missing module is not one of the extra's packages (a broken installation says so itself)."""
    top = (error.name or "").split(".")[0]
    if top not in EXTRA_PACKAGES:
        return error
    return MissingExtraError(
        f"{purpose} needs the package {top!r}, which is not installed; it comes with the course extra: "
        f"{COURSE_EXTRA}",
        name=top,
    )
