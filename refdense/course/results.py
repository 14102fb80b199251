"""Small finished results that the notebooks load instead of recomputing: what they are, how to remake them.

They ship with the package, in ``refdense/course/precomputed/`` (:data:`PRECOMPUTED`), so the
notebooks run in seconds and offline:

- ``text_bank-minilm-default.pt``: the prompt embeddings ``u_c`` of every class, entity and
  motion of the synthetic ``default`` preset, made by the ``minilm`` text encoder
  (all-MiniLM-L6-v2; notebook 07). Loading that encoder alone takes 10-40 s on a small CPU.
- ``demo_predictions.npz`` and ``demo_predictions-pat.npz``: test-split probabilities (float16)
  and labels of the two runs of ``refdense demo`` (RefDense, and PAT on I3D+CLIP concatenated, on
  the ``default`` preset; notebooks 08 and 09), in the predictions format that ``refdense metrics``
  reads; beside each a ``.json`` file saying how they were made (the run's config, its history of
  one record per epoch, the best epoch and the test table).

Remake them in a clone of the repository (after the model, the losses or the generator changed),
then commit them::

    python -m refdense.course.results                     # trains both runs as the demo does, one thread
    python -m refdense.course.results --run runs/demo     # or export the runs of `refdense demo`

``--only text-bank`` or ``--only predictions`` remakes one kind; ``--epochs N`` shortens the training.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from refdense.io import atomic_write
from refdense.paths import clone_root, runs_root, shipped

if TYPE_CHECKING:
    from refdense.data import DatasetInfo
    from refdense.text import TextBank

PRECOMPUTED = shipped("course", "precomputed")
TEXT_BANK = PRECOMPUTED / "text_bank-minilm-default.pt"
DEMO_PREDICTIONS = PRECOMPUTED / "demo_predictions.npz"
"""RefDense's predictions; their ``source`` record is the ``.json`` file of the same name."""
DEMO_PAT_PREDICTIONS = PRECOMPUTED / "demo_predictions-pat.npz"
"""The PAT baseline's predictions (PAT on I3D+CLIP concatenated, the demo's baseline)."""
DEMO_EXPORTS = {"refdense": DEMO_PREDICTIONS, "pat": DEMO_PAT_PREDICTIONS}
"""Run folder of ``refdense demo`` (``runs/demo/<name>``) -> the committed file of its predictions."""
PRESET = "default"
REMAKE = "python -m refdense.course.results"


# ----------------------------------------------------------------------------------------------
# The text bank
# ----------------------------------------------------------------------------------------------


def make_text_bank(out: str | Path = TEXT_BANK, preset: str = PRESET) -> Path:
    """Embed every prompt of the synthetic ``preset`` with the ``minilm`` encoder and save the bank to ``out``."""
    from refdense.data import read_info
    from refdense.synth import default_dataset
    from refdense.text import build_text_bank, load_text_encoder

    info = read_info(default_dataset(preset))
    bank = build_text_bank(load_text_encoder("minilm"), info)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    bank.save(out)
    return out


def load_text_bank(info: DatasetInfo, path: str | Path = TEXT_BANK) -> TextBank:
    """The committed MiniLM text bank, checked against ``info`` (a ``DatasetInfo``: its class,
    entity and motion names must be the bank's). Raises ValueError naming the difference and the
    command that remakes the bank."""
    from refdense.text import PROMPT_TEMPLATE, TextBank, concept_names

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"{path}: the course's MiniLM text bank is missing; make it with `{REMAKE} --only text-bank`"
        )
    bank = TextBank.load(path)
    try:
        bank.check("minilm", concept_names(info), PROMPT_TEMPLATE, str(path))
    except ValueError as error:
        raise ValueError(f"{error}; remake the bank with `{REMAKE} --only text-bank`") from error
    return bank


# ----------------------------------------------------------------------------------------------
# The demo's predictions
# ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TrainedPredictions:
    """Test-split predictions of a trained model, as :func:`load_demo_predictions` and :func:`load_run` read them.

    scores: per-video (T_v, C) probabilities (float32); labels: per-video (T_v, C) 0/1 (uint8);
    video_ids: one id per video; source: how they were made (run, config, epochs, history: one
    record per epoch as in ``metrics.jsonl``, results: best epoch and test table, the command).
    """

    scores: list
    labels: list
    video_ids: list
    source: dict


def source_path(predictions: str | Path) -> Path:
    """Where the ``source`` record of a predictions file is: the same name with ``.json``."""
    return Path(predictions).with_suffix(".json")


def load_run(run_dir: str | Path) -> TrainedPredictions:
    """The test predictions of a finished training run (``run_dir`` of ``refdense train`` or
    ``refdense demo``) and its ``source`` record (config, history, results), as
    :func:`load_demo_predictions` gives them for a committed file.

    Raises FileNotFoundError naming the first file of the run that is missing.
    """
    from refdense.metrics import read_predictions
    from refdense.train.evaluate import predictions_path

    run_dir = Path(run_dir)
    needed = [
        predictions_path(run_dir, "testing"),
        *(run_dir / name for name in ("results.json", "metrics.jsonl", "config.yaml")),
    ]
    for path in needed:
        if not path.is_file():
            raise FileNotFoundError(
                f"{path}: missing; expected a finished training run in {run_dir} "
                "(train one with `refdense demo` or `refdense train`)"
            )
    predictions_file, results_file, history_file, config_file = needed
    predictions = read_predictions(predictions_file)
    history = [
        json.loads(line) for line in history_file.read_text(encoding="utf-8").splitlines() if line.strip()
    ]
    source = {
        "run": run_dir.name,
        "config": config_file.read_text(encoding="utf-8"),
        "epochs": len(history),
        "history": history,
        "results": json.loads(results_file.read_text(encoding="utf-8")),
    }
    return TrainedPredictions(
        [s.astype(np.float32) for s in predictions.scores],
        [y.astype(np.uint8) for y in predictions.labels],
        list(predictions.video_ids),
        source,
    )


def export_predictions(run_dir: str | Path, out: str | Path = DEMO_PREDICTIONS) -> Path:
    """Write the test predictions of a finished training run (:func:`load_run`) to ``out`` with
    float16 scores (:func:`refdense.metrics.write_predictions`), and how they were made to
    :func:`source_path` ``(out)``. Returns ``out``."""
    from refdense.metrics import write_predictions

    run = load_run(run_dir)
    source = run.source | {
        "made_by": f"{REMAKE} (export of {run.source['run']}), {time.strftime('%Y-%m-%d')}"
    }
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    write_predictions(out, [s.astype(np.float16) for s in run.scores], run.labels, run.video_ids)
    with atomic_write(source_path(out)) as handle:
        json.dump(source, handle, indent=1)
        handle.write("\n")
    return out


def export_demo(demo_dir: str | Path) -> list[Path]:
    """Export the runs of a finished ``refdense demo`` in ``demo_dir`` (its ``refdense`` and ``pat``
    folders) to :data:`DEMO_EXPORTS`; returns the files written."""
    return [export_predictions(Path(demo_dir) / name, out) for name, out in DEMO_EXPORTS.items()]


def make_demo_predictions(*, epochs: int | None = None, demo_dir: str | Path | None = None) -> list[Path]:
    """Train RefDense and PAT as ``refdense demo`` does (one CPU thread) into ``demo_dir`` (default:
    ``course-demo-predictions`` under :func:`refdense.paths.runs_root`), replacing runs there, then
    export both runs' test predictions (:func:`export_demo`). ``epochs`` shortens the training
    (default: the demo's)."""
    from refdense.experiments.demo import demo

    demo_dir = Path(demo_dir) if demo_dir is not None else runs_root() / "course-demo-predictions"
    demo(demo_dir, overrides=(f"optim.epochs={epochs}",) if epochs else (), threads=1, progress=True)
    return export_demo(demo_dir)


def load_demo_predictions(path: str | Path = DEMO_PREDICTIONS) -> TrainedPredictions:
    """Read a predictions file (validated by :func:`refdense.metrics.read_predictions`) and its source record.

    Raises FileNotFoundError, with the command that makes them, when either file is missing.
    """
    from refdense.metrics import read_predictions

    path = Path(path)
    for needed in (path, source_path(path)):
        if not needed.is_file():
            raise FileNotFoundError(
                f"{needed}: missing; make the demo's predictions with `{REMAKE} --only predictions`"
            )
    predictions = read_predictions(path)
    source = json.loads(source_path(path).read_text(encoding="utf-8"))
    scores = [s.astype(np.float32) for s in predictions.scores]
    labels = [y.astype(np.uint8) for y in predictions.labels]
    return TrainedPredictions(scores, labels, list(predictions.video_ids), source)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog=REMAKE, description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", choices=("text-bank", "predictions"), help="remake one file only")
    parser.add_argument(
        "--run", metavar="DIR", help="export the runs of this finished `refdense demo` instead of training"
    )
    parser.add_argument("--epochs", type=int, help="train this many epochs (default: the demo's)")
    args = parser.parse_args(argv)
    if clone_root() is None:  # the files ship inside the package: never rewrite an installed copy
        parser.error(
            f"remake the course's results in a clone of the repository (this package is installed in "
            f"{PRECOMPUTED.parents[2]}), then commit them"
        )
    if args.only != "predictions":
        print(f"text bank: {make_text_bank()}", flush=True)
    if args.only != "text-bank":
        for path in export_demo(args.run) if args.run else make_demo_predictions(epochs=args.epochs):
            print(f"predictions: {path}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
