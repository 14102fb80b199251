"""Small finished results that the notebooks load instead of recomputing: what they are, how to remake them.

Both ship with the package, in ``refdense/course/precomputed/`` (:data:`PRECOMPUTED`), so the
notebooks run in seconds and offline:

- ``text_bank-minilm-default.pt``: the prompt embeddings ``u_c`` of every class, entity and
  motion of the synthetic ``default`` preset, made by the ``minilm`` text encoder
  (all-MiniLM-L6-v2; notebook 07). Loading that encoder alone takes 10-40 s on a small CPU.
- ``demo_predictions.npz``: test-split probabilities (float16) and labels of RefDense trained
  with the demo's recipe (``configs/synthetic.yaml`` on the ``default`` preset; notebook 08), in the
  predictions format that ``refdense metrics`` reads; beside it ``demo_predictions.json``,
  how they were made (the run's config, epochs, best epoch and test table).

Remake both in a clone of the repository (after the model or the generator changed), then commit them::

    python -m refdense.course.results                     # trains RefDense as the demo does, one thread
    python -m refdense.course.results --run runs/demo/refdense   # or export a finished run instead

``--only text-bank`` or ``--only predictions`` remakes one of them; ``--epochs N`` shortens the training.
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
"""The predictions; their ``source`` record is the ``.json`` file of the same name."""
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
        raise FileNotFoundError(f"{path}: the course's MiniLM text bank is missing; "
                                f"make it with `{REMAKE} --only text-bank`")
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
class DemoPredictions:
    """Test-split predictions of a trained model, as :func:`load_demo_predictions` reads them.

    scores: per-video (T_v, C) probabilities (float32); labels: per-video (T_v, C) 0/1 (uint8);
    video_ids: one id per video; source: how they were made (model, config, epochs, best epoch,
    validation and test mAP, the command).
    """

    scores: list
    labels: list
    video_ids: list
    source: dict


def source_path(predictions: str | Path) -> Path:
    """Where the ``source`` record of a predictions file is: the same name with ``.json``."""
    return Path(predictions).with_suffix(".json")


def export_predictions(run_dir: str | Path, out: str | Path = DEMO_PREDICTIONS) -> Path:
    """Write the test predictions of a finished training run (``run_dir`` of ``refdense train`` or
    ``refdense demo``) to ``out`` with float16 scores (:func:`refdense.metrics.write_predictions`),
    and how they were made to :func:`source_path` ``(out)``. Returns ``out``."""
    from refdense.metrics import read_predictions, write_predictions
    from refdense.train.evaluate import predictions_path

    run_dir = Path(run_dir)
    needed = [predictions_path(run_dir, "testing"),
              *(run_dir / name for name in ("results.json", "metrics.jsonl", "config.yaml"))]
    for path in needed:
        if not path.is_file():
            raise FileNotFoundError(f"{path}: missing; expected a finished training run in {run_dir} "
                                    "(train one with `refdense demo` or `refdense train`)")
    predictions_file, results_file, history_file, config_file = needed
    predictions = read_predictions(predictions_file)
    history = [line for line in history_file.read_text(encoding="utf-8").splitlines() if line.strip()]
    source = {
        "run": run_dir.name,
        "config": config_file.read_text(encoding="utf-8"),
        "epochs": len(history),
        "results": json.loads(results_file.read_text(encoding="utf-8")),
        "made_by": f"{REMAKE} (export of {run_dir.name}), {time.strftime('%Y-%m-%d')}",
    }
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    write_predictions(out, [s.astype(np.float16) for s in predictions.scores], predictions.labels,
                      predictions.video_ids)
    with atomic_write(source_path(out)) as handle:
        json.dump(source, handle, indent=1)
        handle.write("\n")
    return out


def make_demo_predictions(out: str | Path = DEMO_PREDICTIONS, *, epochs: int | None = None,
                          run_dir: str | Path | None = None) -> Path:
    """Train RefDense with the demo's configuration (one CPU thread, as the demo), then export its
    test predictions to ``out``. ``epochs`` shortens the training (default: the demo's). A previous
    run in ``run_dir`` (default: ``course-demo-predictions`` under :func:`refdense.paths.runs_root`)
    is replaced."""
    import shutil

    import torch

    from refdense.train.demo import demo_configs
    from refdense.train.loop import train

    config = demo_configs(overrides=(f"optim.epochs={epochs}",) if epochs else ())["RefDense"]
    run_dir = Path(run_dir) if run_dir is not None else runs_root() / "course-demo-predictions"
    if run_dir.exists():
        shutil.rmtree(run_dir)
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        train(config, run_dir, progress=True)
    finally:
        torch.set_num_threads(before)
    return export_predictions(run_dir, out)


def load_demo_predictions(path: str | Path = DEMO_PREDICTIONS) -> DemoPredictions:
    """Read a predictions file (validated by :func:`refdense.metrics.read_predictions`) and its source record.

    Raises FileNotFoundError, with the command that makes them, when either file is missing.
    """
    from refdense.metrics import read_predictions

    path = Path(path)
    for needed in (path, source_path(path)):
        if not needed.is_file():
            raise FileNotFoundError(f"{needed}: missing; make the demo's predictions with "
                                    f"`{REMAKE} --only predictions`")
    predictions = read_predictions(path)
    source = json.loads(source_path(path).read_text(encoding="utf-8"))
    scores = [s.astype(np.float32) for s in predictions.scores]
    labels = [y.astype(np.uint8) for y in predictions.labels]
    return DemoPredictions(scores, labels, list(predictions.video_ids), source)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog=REMAKE, description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", choices=("text-bank", "predictions"), help="remake one file only")
    parser.add_argument("--run", metavar="DIR", help="export the predictions of this finished run instead of training")
    parser.add_argument("--epochs", type=int, help="train this many epochs (default: the demo's)")
    args = parser.parse_args(argv)
    if clone_root() is None:  # the files ship inside the package: never rewrite an installed copy
        parser.error(f"remake the course's results in a clone of the repository (this package is installed in "
                     f"{PRECOMPUTED.parents[2]}), then commit them")
    if args.only != "predictions":
        print(f"text bank: {make_text_bank()}", flush=True)
    if args.only != "text-bank":
        path = export_predictions(args.run) if args.run else make_demo_predictions(epochs=args.epochs)
        print(f"predictions: {path}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
