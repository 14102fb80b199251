"""Helpers for the course notebooks: the first code cell, "check yourself" comparisons, exercises.

A notebook starts with ``course = start_notebook()`` (seeds, device, plot style, profile), checks
what it derived by hand with ``assert check("name", mine, package_value)``, and lets the learner test an
exercise with ``check_exercise(my_fn, reference_fn, case, ...)``, which prints what is wrong and
returns ``False`` instead of raising, so a half-done exercise never stops the notebook. A "predict,
then run" exercise is graded by ``check_prediction(my_prediction, found, inputs=...)``. Both show the
inputs, the expected and the found value. ``portable(text)`` writes the machine's folders in a printed
message as ``<clone>``, ``<site-packages>``, ``~`` and ``<tmp>``, so that stored outputs hold no
machine paths.
"""

from __future__ import annotations

import copy
import os
import random
import site
import sys
import sysconfig
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from refdense.paths import clone_root, data_root, runs_root

if TYPE_CHECKING:
    from matplotlib.figure import Figure

PROFILES = ("smoke", "full")
"""``smoke`` (default): synthetic data, tiny models, CPU, seconds. ``full``: real or large data, GPU."""


@dataclass(frozen=True)
class CourseSetup:
    """What :func:`start_notebook` returns to the first code cell of a notebook.

    ``profile`` is ``"smoke"`` or ``"full"``; ``device`` a ``torch.device``; ``data`` the data
    folder (:func:`refdense.paths.data_root`: ``$REFDENSE_DATA`` or ``<repo>/data``); ``runs`` where
    notebooks write training runs (:func:`refdense.paths.runs_root`: ``$REFDENSE_RUNS`` or ``<repo>/runs``);
    ``real_dataset`` the prepared real dataset named by ``$REFDENSE_REAL_DATASET`` (or None).
    """

    profile: str
    device: Any
    seed: int
    data: Path
    runs: Path
    real_dataset: Path | None

    @property
    def smoke(self) -> bool:
        """True under the default, small profile."""
        return self.profile == "smoke"


def read_profile() -> str:
    """The profile named by ``$REFDENSE_PROFILE`` (default ``"smoke"``)."""
    profile = os.environ.get("REFDENSE_PROFILE", "smoke").strip().lower() or "smoke"
    if profile not in PROFILES:
        raise ValueError(f"REFDENSE_PROFILE: expected one of {PROFILES}, found {profile!r}")
    return profile


def seed_everything(seed: int) -> None:
    """Seed python's ``random``, numpy and torch (CPU and CUDA)."""
    import torch

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def start_notebook(seed: int = 0, *, dpi: int | None = None) -> CourseSetup:
    """The first code cell of every notebook: seed, pick the device, set the plot style, read the profile.

    The device is CUDA when available, else the CPU. Figures take the course's style
    (:func:`refdense.viz.style.rc_params`) at ``dpi`` (default
    :data:`refdense.viz.style.NOTEBOOK_DPI`, which keeps the stored notebooks small). The profile
    comes from ``$REFDENSE_PROFILE``.
    """
    import matplotlib as mpl
    import torch

    from refdense.viz.style import NOTEBOOK_DPI, rc_params

    profile = read_profile()
    seed_everything(seed)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    mpl.rcParams.update(rc_params(NOTEBOOK_DPI if dpi is None else dpi))
    real = os.environ.get("REFDENSE_REAL_DATASET")
    return CourseSetup(
        profile=profile,
        device=device,
        seed=seed,
        data=data_root(),
        runs=runs_root(),
        real_dataset=Path(real) if real else None,
    )


def show(fig: Figure) -> None:
    """Display a Figure once in the notebook and release it from pyplot.

    Plot helpers return their Figure; ending a cell with the Figure would show it twice when the
    helper used pyplot (once by the inline backend, once as the cell's value). ``show`` shows it
    exactly once, whether or not pyplot knows the Figure.
    """
    import matplotlib.pyplot as plt
    from IPython.display import display

    plt.close(fig)
    display(fig)


def _as_array(value: Any) -> np.ndarray | None:
    """A numpy view of a tensor, array, number or nested list; None for anything else."""
    if hasattr(value, "detach") and hasattr(value, "cpu"):
        return value.detach().cpu().numpy()
    if isinstance(value, np.ndarray):
        return value
    if isinstance(value, (bool, int, float, np.number, np.bool_)):
        return np.asarray(value)
    if isinstance(value, (list, tuple)) and value and all(isinstance(v, (bool, int, float)) for v in value):
        return np.asarray(value)
    return None


def compare(got: Any, expected: Any, *, atol: float = 1e-6, rtol: float = 1e-5) -> tuple[str, str]:
    """Compare two values; return ``(verdict, detail)`` with verdict ``exact``, ``approximate`` or ``wrong``.

    Tensors, arrays and numbers are compared elementwise (shapes must match; ``approximate`` means
    within ``atol + rtol * |expected|``); tuples, lists and dicts item by item; anything else by
    ``==``. Never raises.
    """
    try:
        a, b = _as_array(got), _as_array(expected)
        if a is not None and b is not None:
            if a.shape != b.shape:
                return "wrong", f"shape {tuple(a.shape)}, expected {tuple(b.shape)}"
            if a.size == 0:
                return "exact", "empty"
            if a.dtype == bool or b.dtype == bool:
                a, b = a.astype(np.int64), b.astype(np.int64)
            a64, b64 = a.astype(np.float64), b.astype(np.float64)
            if np.array_equal(a64, b64, equal_nan=True):
                return "exact", ""
            diff = np.abs(a64 - b64)
            diff = np.where(np.isnan(a64) & np.isnan(b64), 0.0, diff)
            worst = float(np.nanmax(np.where(np.isnan(diff), np.inf, diff)))
            close = bool(np.all(diff <= atol + rtol * np.abs(b64)))
            return ("approximate" if close else "wrong"), f"max difference {worst:.3g}"
        if isinstance(got, dict) and isinstance(expected, dict):
            if set(got) != set(expected):
                return "wrong", f"keys {sorted(map(str, got))}, expected {sorted(map(str, expected))}"
            items = [(f"[{k!r}]", got[k], expected[k]) for k in expected]
        elif isinstance(got, (list, tuple)) and isinstance(expected, (list, tuple)):
            if len(got) != len(expected):
                return "wrong", f"length {len(got)}, expected {len(expected)}"
            items = [(f"[{i}]", g, e) for i, (g, e) in enumerate(zip(got, expected))]
        else:
            same = got == expected
            return ("exact", "") if same is True else ("wrong", f"got {got!r}, expected {expected!r}")
        verdicts = []
        for where, g, e in items:
            verdict, detail = compare(g, e, atol=atol, rtol=rtol)
            if verdict == "wrong":
                return "wrong", f"{where}: {detail}"
            verdicts.append(verdict)
        return ("exact" if all(v == "exact" for v in verdicts) else "approximate"), ""
    except Exception as error:  # a comparison must never stop the notebook
        return "wrong", f"could not compare ({type(error).__name__}: {error})"


def check(name: str, got: Any, expected: Any, *, atol: float = 1e-6, rtol: float = 1e-5) -> bool:
    """Print how ``got`` compares with ``expected`` and return True when they agree.

    Prints ``name: exact``, ``name: approximate (max difference ...)`` or ``name: WRONG (...)``.
    Use it in "check yourself" cells as ``assert check("Y_ent", mine, package)``.
    """
    verdict, detail = compare(got, expected, atol=atol, rtol=rtol)
    label = "WRONG" if verdict == "wrong" else verdict
    print(f"{name}: {label}" + (f" ({detail})" if detail else ""))
    return verdict != "wrong"


def brief(value: Any, limit: int = 160) -> str:
    """A short text of a value for messages: tensors and arrays as their shape and first values, the
    rest as ``repr`` cut to ``limit`` characters."""
    array = _as_array(value)
    if array is not None and array.ndim > 0:
        flat = np.asarray(array).reshape(-1)
        shown = np.array2string(flat[:6], precision=4, separator=", ")
        text = f"{type(value).__name__} of shape {tuple(array.shape)}, first values {shown[:-1]}"
        return text + (", ...]" if flat.size > 6 else "]")
    if isinstance(value, tuple):
        return "(" + ", ".join(brief(v, limit) for v in value) + ("," if len(value) == 1 else "") + ")"
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _call(fn: Callable, case: Any) -> Any:
    args = case if isinstance(case, tuple) else (case,)
    return fn(*copy.deepcopy(args))


def check_exercise(
    fn: Callable, reference_fn: Callable, *cases: Any, atol: float = 1e-5, rtol: float = 1e-4
) -> bool:
    """Run an exercise answer on each case, compare with the reference, print a verdict; never raises.

    ``cases`` are argument tuples (a non-tuple is a single argument); each call gets its own deep
    copy, so an answer that changes its inputs cannot spoil the reference. Returns True when every
    case agrees within ``atol``/``rtol``; otherwise prints the first case that differs: its inputs,
    the expected value (the reference's), the value found (the answer's) and why they differ.
    """
    if not cases:
        print("check_exercise: no cases given")
        return False
    for index, case in enumerate(cases, start=1):
        try:
            expected = _call(reference_fn, case)
        except Exception as error:
            print(f"case {index}: the reference failed ({type(error).__name__}: {error})")
            return False
        try:
            got = _call(fn, case)
        except NotImplementedError:
            print("not answered yet: replace the `raise NotImplementedError` with your code")
            return False
        except Exception as error:
            print(f"case {index}: your function raised {type(error).__name__}: {error}")
            return False
        shown = f"\n  inputs:   {brief(case)}\n  expected: {brief(expected)}\n  found:    {brief(got)}"
        if got is None and expected is not None:
            print(f"case {index}: your function returned None (did you forget `return`?){shown}")
            return False
        verdict, detail = compare(got, expected, atol=atol, rtol=rtol)
        if verdict == "wrong":
            print(f"case {index}: not yet: {detail}{shown}")
            return False
    print(f"all {len(cases)} cases agree with the reference")
    return True


def _same_answer(predicted: Any, found: Any, rtol: float) -> bool:
    if isinstance(predicted, str) and isinstance(found, str):
        return predicted.strip().lower() == found.strip().lower()
    if isinstance(predicted, bool) or isinstance(found, bool):
        return predicted is found
    if isinstance(predicted, (int, float)) and isinstance(found, (int, float)):
        return abs(predicted - found) <= rtol * abs(found)
    return bool(predicted == found)


def check_prediction(prediction: Any, found: Any, *, inputs: str, rtol: float = 0.0) -> bool:
    """Grade a "predict, then run" exercise; print the inputs, what was expected and what was found.

    ``found`` is what the cell measured, in the form the exercise asks for: one value, or a dict of
    named values (then ``prediction`` is a dict with the same keys; a missing or None key is not yet
    predicted). Strings agree case-insensitively, numbers within ``rtol * |found|``. ``inputs`` says
    what the measurement ran on. Returns True when every value was predicted right; never raises.
    """
    print(f"inputs: {inputs}")
    if not isinstance(found, dict):
        prediction, found = {"answer": prediction}, {"answer": found}
    elif not isinstance(prediction, dict):
        prediction = {}
    right = 0
    for key, value in found.items():
        predicted = prediction.get(key)
        if predicted is None:
            verdict = "not predicted yet (replace the None, then run again)"
        elif _same_answer(predicted, value, rtol):
            verdict, right = "right", right + 1
        else:
            verdict = "not this time"
        print(f"  {key}: your prediction {predicted!r}, found {value!r}: {verdict}")
    print(f"{right} of {len(found)} predicted right")
    return right == len(found)


def portable(text: str) -> str:
    """``text`` with this machine's folders written as placeholders: the clone's folder as
    ``<clone>``, the installed packages' folders as ``<site-packages>``, the temporary folder as
    ``<tmp>`` and the home folder as ``~`` (longest first, so a clone under the home folder stays
    ``<clone>``). For messages a notebook stores; the paths it prints stay valid on the machine that
    ran it once the placeholder is read back."""
    folders: dict[str, str] = {}
    clone = clone_root()
    if clone is not None:
        folders[str(clone)] = "<clone>"
    packages = {sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"], *site.getsitepackages()}
    for folder in packages:
        folders[folder] = "<site-packages>"
    folders.setdefault(sys.prefix, "<environment>")
    folders[tempfile.gettempdir()] = "<tmp>"
    folders[str(Path.home())] = "~"
    for folder in sorted(folders, key=len, reverse=True):
        if len(folder) > 1:
            text = text.replace(folder, folders[folder])
    return text
