"""Small finished results that the notebooks load instead of recomputing: what they are, how to remake them.

Both files live in ``results/`` and are committed, so the notebooks run in seconds and offline:

- ``results/text_bank-minilm-default.pt``: the prompt embeddings ``u_c`` of every class, entity and
  motion of the synthetic ``default`` preset, made by the ``minilm`` text encoder
  (all-MiniLM-L6-v2; notebook 07). Loading that encoder alone takes 10-40 s on a small CPU.
- ``results/demo_predictions.npz``: test-split probabilities of RefDense trained with the demo's
  recipe (``configs/synthetic.yaml`` on the ``default`` preset; notebook 08), with the labels, in
  the predictions format that ``refdense metrics`` reads, plus a ``source`` record of how they were
  made (epochs, best epoch, validation and test mAP).

Remake both (after the model or the generator changed)::

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

import numpy as np

from refdense.io import atomic_write
from refdense.paths import REPO_ROOT

RESULTS_DIR = REPO_ROOT / "results"
TEXT_BANK = RESULTS_DIR / "text_bank-minilm-default.pt"
DEMO_PREDICTIONS = RESULTS_DIR / "demo_predictions.npz"
PRESET = "default"
REMAKE = "python -m refdense.course.results"


# ----------------------------------------------------------------------------------------------
# The text bank
# ----------------------------------------------------------------------------------------------


def make_text_bank(out: str | Path = TEXT_BANK, preset: str = PRESET) -> Path:
    """Embed every prompt of the synthetic ``preset`` with the ``minilm`` encoder and save the bank to ``out``."""
    from refdense.data import default_dataset, read_info
    from refdense.text import build_text_bank, load_text_encoder

    info = read_info(default_dataset(preset))
    bank = build_text_bank(load_text_encoder("minilm"), info)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    bank.save(out)
    return out


def load_text_bank(info, path: str | Path = TEXT_BANK):
    """The committed MiniLM text bank, checked against ``info`` (a ``DatasetInfo``: its class,
    entity and motion names must be the bank's). Raises ValueError naming the difference and the
    command that remakes the bank."""
    from refdense.text import PROMPT_TEMPLATE, TextBank, concept_names

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: the course's MiniLM text bank is missing; make it with `{REMAKE} --only text-bank`")
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


def export_predictions(run_dir: str | Path, out: str | Path = DEMO_PREDICTIONS) -> Path:
    """Write the test predictions of a finished training run (``run_dir`` of ``refdense train`` or
    ``refdense demo``) to ``out``, compactly: padded ``(V, T, C)`` float16 scores, uint8 labels and
    ``lengths`` (no pickled objects), and a JSON ``source`` record. Returns ``out``."""
    from refdense.metrics import read_predictions

    run_dir = Path(run_dir)
    predictions_file, results_file = run_dir / "predictions-test.npz", run_dir / "results.json"
    for path in (predictions_file, results_file):
        if not path.is_file():
            raise FileNotFoundError(f"{path}: missing; expected a finished training run in {run_dir} "
                                    "(train one with `refdense demo` or `refdense train`)")
    predictions = read_predictions(predictions_file)
    results = json.loads(results_file.read_text(encoding="utf-8"))
    history = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text(encoding="utf-8").splitlines() if line]
    config_text = (run_dir / "config.yaml").read_text(encoding="utf-8")
    lengths = np.array([len(s) for s in predictions.scores], dtype=np.int64)
    shape = (len(lengths), int(lengths.max()), predictions.scores[0].shape[1])
    scores, labels = np.zeros(shape, dtype=np.float16), np.zeros(shape, dtype=np.uint8)
    for v, (s, y) in enumerate(zip(predictions.scores, predictions.labels)):
        scores[v, : len(s)], labels[v, : len(y)] = s, y
    source = {
        "run": run_dir.name,
        "config": config_text,
        "epochs": len(history),
        "results": results,
        "made_by": f"{REMAKE} (export of {run_dir.name}), {time.strftime('%Y-%m-%d')}",
    }
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(out, "wb") as handle:
        np.savez_compressed(handle, scores=scores, labels=labels, lengths=lengths,
                            video_ids=np.array(predictions.video_ids, dtype=str), source=np.array(json.dumps(source)))
    return out


def make_demo_predictions(out: str | Path = DEMO_PREDICTIONS, *, epochs: int | None = None,
                          run_dir: str | Path = REPO_ROOT / "runs" / "course-demo-predictions") -> Path:
    """Train RefDense with the demo's configuration (one CPU thread, as the demo), then export its
    test predictions to ``out``. ``epochs`` shortens the training (default: the demo's). A previous
    run in ``run_dir`` is replaced."""
    import shutil

    import torch

    from refdense.train.demo import demo_configs
    from refdense.train.loop import train

    config = demo_configs(overrides=(f"optim.epochs={epochs}",) if epochs else ())["RefDense"]
    run_dir = Path(run_dir)
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
    """Read the committed predictions file (validated by :func:`refdense.metrics.read_predictions`).

    Raises FileNotFoundError, with the command that makes it, when the file is missing.
    """
    from refdense.metrics import read_predictions

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: the demo's predictions are missing; make them with `{REMAKE} --only predictions`")
    predictions = read_predictions(path)
    with np.load(path, allow_pickle=False) as data:
        if "source" not in data.files:
            raise ValueError(f"{path}: expected a 'source' record (made by `{REMAKE}`), found arrays {sorted(data.files)}")
        source = json.loads(str(data["source"]))
    scores = [s.astype(np.float32) for s in predictions.scores]
    labels = [y.astype(np.uint8) for y in predictions.labels]
    return DemoPredictions(scores, labels, list(predictions.video_ids), source)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog=REMAKE, description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", choices=("text-bank", "predictions"), help="remake one file only")
    parser.add_argument("--run", metavar="DIR", help="export the predictions of this finished run instead of training")
    parser.add_argument("--epochs", type=int, help="train this many epochs (default: the demo's)")
    args = parser.parse_args(argv)
    if args.only != "predictions":
        print(f"text bank: {make_text_bank()}", flush=True)
    if args.only != "text-bank":
        path = export_predictions(args.run) if args.run else make_demo_predictions(epochs=args.epochs)
        print(f"predictions: {path}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
