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

- ``trained_*.npz`` (:data:`EVIDENCE`, :func:`load_evidence`): small arrays that show what trained
  models do, from four runs of the demo's recipe (``synthetic.yaml``, last epoch tested;
  :data:`EVIDENCE_RUNS`), each read on the first :data:`CROP` segments of its test videos; beside
  each a ``.json`` record (summary numbers, the runs' configs and test results, shapes):

  - ``attention`` (notebook 03): ``attention_trained``, ``attention_untrained`` (H, T, T): the
    entity block's weights over one test video of the ``default`` run, trained and at its initial
    weights; ``entity_labels`` (T, C_ent). Summary: the attention mass on segments that share an
    entity with the query, trained, untrained and under uniform attention.
  - ``cross-attention`` (notebook 04): runs on ``entity_gate`` 1 with and without cross-attention;
    ``cross_attention`` (H, T, T) of the fine branch (queries: motion segments, keys: entity
    segments), ``entity_labels`` (T, C_ent), ``motion_labels`` (T, C_mot), ``motion_probs_gate``
    and ``motion_probs_gate_no_cross`` (T, C_mot): the motion head's probabilities of both runs.
    Summary: both runs' test mAP and motion-head mAP, the cross-attention's mass on segments where
    an entity is present.
  - ``composed`` (notebook 05): the ``held_out`` 0.25 run; ``ap_fused``, ``ap_composed`` (K,): the
    test AP of the K held-out classes from the action head and from the composed readout;
    ``scores_fused``, ``scores_composed``, ``labels`` (T, K) on one test video. Summary:
    :func:`refdense.experiments.ablate.run_metrics`.
  - ``colv`` (notebook 07): ``entity_trained``, ``entity_untrained`` (C_ent, C_ent), ``motion_*``
    (C_mot, C_mot): mean cosine of the CoLV-projected features of the segments where a concept is on
    (row) to each prompt embedding (column), trained and untrained. Summary: diagonal minus
    off-diagonal mean.

- ``first_study/`` (:data:`FIRST_STUDY`, notebook 10): a copy of the files of the repository's
  ``results/`` that the notebook reads (the first registered study's ablation table and sweeps),
  in their layout there, so that the notebook runs without a clone; ``--only first-study``
  copies them again (``tests/test_course_results.py`` fails when they differ).

Remake them in a clone of the repository (after the model, the losses or the generator changed),
then commit them::

    python -m refdense.course.results                     # trains both runs as the demo does, one thread
    python -m refdense.course.results --run runs/demo     # or export the runs of `refdense demo`

``--only KIND`` remakes one kind (``text-bank``, ``predictions``, ``first-study`` or a kind of :data:`EVIDENCE`);
``--epochs N`` shortens the training; ``--evidence-runs DIR`` reads the evidence from runs trained
before instead of training them.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from refdense.io import atomic_write
from refdense.paths import clone_root, data_root, runs_root, shipped
from refdense.threads import torch_threads

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
    from refdense.course.checks import portable
    from refdense.data import read_info
    from refdense.synth import default_dataset
    from refdense.text import build_text_bank, load_text_encoder

    info = read_info(default_dataset(preset))
    bank = build_text_bank(load_text_encoder("minilm"), info)
    # the bank ships to other machines: its description names the encoder's folder as a placeholder
    bank.description = portable(bank.description)
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


# ----------------------------------------------------------------------------------------------
# The first registered study's results (notebook 10)
# ----------------------------------------------------------------------------------------------

FIRST_STUDY = PRECOMPUTED / "first_study"
"""A copy of the files of the repository's ``results/`` that notebook 10 reads, in the same
layout, so that it runs where only the package is installed (Colab, ``pip install``)."""
FIRST_STUDY_FILES = (
    "ablations/ablations.json",
    "ablations/ABLATIONS.md",
    "coupling/sweep.json",
    "rare_share/sweep.json",
    "text_alignment/sweep.json",
    "text_alignment-train_videos60/sweep.json",
    "h4/train_videos/sweep.json",
)
"""The ablation table and the sweeps of the study's tests
(:func:`refdense.experiments.study.load_study` reads ``FIRST_STUDY`` and ``FIRST_STUDY / "h4"``)."""


def copy_first_study(results: str | Path, out: str | Path = FIRST_STUDY) -> list[Path]:
    """Copy :data:`FIRST_STUDY_FILES` from ``results`` (the clone's ``results/``) to ``out``;
    returns the files written. Raises FileNotFoundError naming the first file that is missing,
    before anything is written."""
    results, out = Path(results), Path(out)
    for name in FIRST_STUDY_FILES:
        if not (results / name).is_file():
            raise FileNotFoundError(
                f"{results / name}: missing; the first study's results are committed in results/"
            )
    written = []
    for name in FIRST_STUDY_FILES:
        (out / name).parent.mkdir(parents=True, exist_ok=True)
        with atomic_write(out / name, "wb") as handle:
            handle.write((results / name).read_bytes())
        written.append(out / name)
    return written


# ----------------------------------------------------------------------------------------------
# Trained evidence: what trained models look at (notebooks 02, 03, 04, 07)
# ----------------------------------------------------------------------------------------------

EVIDENCE_RUNS: dict[str, tuple[tuple[str, ...], dict[str, Any]]] = {
    "default": ((), {}),
    "gate": ((), {"entity_gate": 1}),
    "gate-no-cross": (("ablations/no_cross_attention.yaml",), {"entity_gate": 1}),
    "held-out": ((), {"held_out": 0.25, "held_out_k": 0}),
}
"""Run name -> (configs added to ``synthetic.yaml``, mechanism dials of its ``default``-preset dataset)."""


def train_evidence_runs(
    runs_dir: str | Path,
    names: Sequence[str] = tuple(EVIDENCE_RUNS),
    *,
    epochs: int | None = None,
    preset: str = PRESET,
) -> Path:
    """Train the ``names`` of :data:`EVIDENCE_RUNS` (the demo's recipe ``synthetic.yaml`` on
    ``preset`` with each run's dials, testing the last epoch, one CPU thread; ``epochs`` shortens
    it) into ``runs_dir/<name>``, replacing finished runs there. Returns ``runs_dir``."""
    import shutil

    from refdense.synth import Dials, default_dataset
    from refdense.train.config import CONFIGS, load_config
    from refdense.train.loop import train

    runs_dir = Path(runs_dir)
    with torch_threads(1):
        for name in names:
            extras, dials = EVIDENCE_RUNS[name]
            dataset = default_dataset(preset, dials=Dials(**dials)) if dials else preset
            overrides = [f"data.dataset={dataset}", "run.test_checkpoint=last"]
            overrides += [f"optim.epochs={epochs}"] if epochs else []
            config = load_config(
                CONFIGS / "synthetic.yaml", *(CONFIGS / extra for extra in extras), overrides=overrides
            )
            if (runs_dir / name / "results.json").is_file():
                shutil.rmtree(runs_dir / name)
            print(f"training {name} ({dataset})", flush=True)
            train(config, runs_dir / name, progress=False)
    return runs_dir


EVIDENCE = {
    "attention": ("trained_attention.npz", ("default",)),
    "cross-attention": ("trained_cross_attention.npz", ("gate", "gate-no-cross")),
    "composed": ("trained_composed.npz", ("held-out",)),
    "colv": ("trained_colv.npz", ("default",)),
}
"""Kind of trained evidence -> (its file in :data:`PRECOMPUTED`, the :data:`EVIDENCE_RUNS` it reads)."""
CROP = 128
"""Every test video is read on its first ``CROP`` segments (the recipe's window) for the evidence."""


@dataclass
class _Loaded:
    """A run's model and criterion (trained, or the run's own initial weights) with its test videos."""

    model: Any
    criterion: Any
    info: DatasetInfo
    videos: list


def _load(run_dir: Path, trained: bool = True) -> _Loaded:
    import torch

    from refdense.data.dataset import DenseActionDataset
    from refdense.data.info import read_info
    from refdense.train.checkpoint import CONFIG, CRITERION, LATEST_FILE, MODEL, load_checkpoint, restore
    from refdense.train.components import build_criterion, build_detector, open_dataset_dir
    from refdense.train.config import from_dict

    path = run_dir / "checkpoints" / LATEST_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{path}: missing; train the run with `{REMAKE}`")
    state = load_checkpoint(path)
    config = from_dict(state[CONFIG], str(path))
    dataset_dir = open_dataset_dir(config.data.dataset)
    info = read_info(dataset_dir)
    torch.manual_seed(config.run.seed)  # the run's initial weights, as training starts
    model = build_detector(config.model, info)
    criterion = build_criterion(
        config.loss, config.model, info, dataset_dir, config.data.text_encoder, config.data.text_weights
    )
    if trained:
        restore(model, state, MODEL, path)
        restore(criterion, state, CRITERION, path)
    test = DenseActionDataset(
        dataset_dir,
        "testing",
        train=False,
        validation_fraction=config.data.validation_fraction,
        seed=config.run.seed,
    )
    return _Loaded(model.eval(), criterion.eval(), info, [test[i] for i in range(len(test))])


def _forward(loaded: _Loaded, item: dict) -> tuple[Any, dict]:
    """The model's output on the first :data:`CROP` segments of ``item`` with auxiliary heads, and
    the attention weights ``(H, T, T)`` of its entity block (``"entity"``) and of its fine branch's
    cross-attention (``"cross"``, absent without one)."""
    import torch

    from refdense.models.attention import attention_weights, split_heads

    model = loaded.model
    captured: dict = {}

    def entity_hook(module: Any, args: Any, _output: Any) -> None:
        captured["entity"] = module.attention(*args)[0][0]

    def cross_hook(module: Any, args: Any, _output: Any) -> None:
        x, context, context_mask = args
        q = split_heads(module.to_q(x), module.heads)
        k = split_heads(module.to_kv(context).chunk(2, dim=-1)[0], module.heads)
        captured["cross"] = attention_weights(q, k, context_mask)[0]

    hooks = [model.entity.blocks[0].attn.register_forward_hook(entity_hook)]
    if model.motion.fine.cross is not None:
        hooks.append(model.motion.fine.cross.attn.register_forward_hook(cross_hook))
    video, image = (torch.as_tensor(item[name][:CROP])[None] for name in ("video", "image"))
    try:
        with torch.no_grad():
            output = model(video, image, torch.ones(video.shape[:2], dtype=torch.bool), auxiliary=True)
    finally:
        for hook in hooks:
            hook.remove()
    return output, {name: weights.numpy() for name, weights in captured.items()}


def _labels(item: dict, name: str) -> np.ndarray:
    return np.asarray(item[name][:CROP], dtype=np.uint8)


def _mass_on(weights: np.ndarray, queries: np.ndarray, keys: np.ndarray) -> list[tuple[float, float]]:
    """Mean attention mass ``(H, T, T)`` of the ``queries`` rows on the ``keys`` (``(T, T)`` bool:
    key j is relevant to query i), and what uniform attention would give (the share of relevant
    keys), as a list of that one pair; empty when no segment is a query."""
    rows = queries.nonzero()[0]
    if not len(rows):
        return []
    return [(float((weights[:, rows] * keys[rows]).sum(-1).mean()), float(keys[rows].mean()))]


def _attention_evidence(runs_dir: Path) -> tuple[dict, dict]:
    arrays: dict = {}
    summary: dict = {}
    for state in ("trained", "untrained"):
        loaded = _load(runs_dir / "default", trained=state == "trained")
        masses = []
        for index, item in enumerate(loaded.videos):
            _, weights = _forward(loaded, item)
            entities = _labels(item, "entity_labels")
            shared = (entities @ entities.T) > 0  # (T, T): the two segments share an entity
            masses += _mass_on(weights["entity"], np.asarray(entities.any(1)), shared)
            if index == 0:
                arrays[f"attention_{state}"] = weights["entity"]
                arrays["entity_labels"] = entities
                summary["video"] = item["video_id"]
        mass, uniform = np.mean(masses, axis=0)
        summary[f"same_entity_mass_{state}"] = float(mass)
        summary["same_entity_uniform"] = float(uniform)
    summary["entities"] = list(loaded.info.entities)
    return arrays, summary


def _cross_attention_evidence(runs_dir: Path) -> tuple[dict, dict]:
    from refdense.metrics.ap import frame_map

    arrays: dict = {}
    summary: dict = {"motions": None}
    for name in ("gate", "gate-no-cross"):
        loaded = _load(runs_dir / name)
        key = name.replace("-", "_")
        probs, labels, masses = [], [], []
        for index, item in enumerate(loaded.videos):
            output, weights = _forward(loaded, item)
            probs.append(output.motion_logits[0].sigmoid().numpy())
            labels.append(_labels(item, "motion_labels"))
            if "cross" in weights:  # mass of segments in motion on segments where an entity is present
                entities = np.asarray(_labels(item, "entity_labels").any(1))
                keys = np.broadcast_to(entities, (len(entities), len(entities)))
                masses += _mass_on(weights["cross"], np.asarray(labels[-1].any(1)), keys)
            if index == 0:
                arrays[f"motion_probs_{key}"] = probs[0]
                if "cross" in weights:
                    arrays["cross_attention"] = weights["cross"]
                    arrays["entity_labels"] = _labels(item, "entity_labels")
                    arrays["motion_labels"] = labels[0]
                    summary["video"] = item["video_id"]
        results = json.loads((runs_dir / name / "results.json").read_text(encoding="utf-8"))
        summary[f"test_mAP_{key}"] = results["test"]["frame_map"]
        summary[f"motion_head_mAP_{key}"] = 100 * frame_map(probs, labels).map_all
        if masses:
            mass, uniform = np.mean(masses, axis=0)
            summary["entity_present_mass"], summary["entity_present_uniform"] = float(mass), float(uniform)
    summary["motions"] = list(loaded.info.motions)
    summary["entities"] = list(loaded.info.entities)
    return arrays, summary


def _composed_evidence(runs_dir: Path) -> tuple[dict, dict]:
    from refdense.data.info import read_info
    from refdense.experiments.ablate import run_metrics
    from refdense.metrics import read_predictions
    from refdense.metrics.ap import frame_map
    from refdense.train.components import open_dataset_dir
    from refdense.train.config import load_config
    from refdense.train.evaluate import predictions_path, readout_path

    run_dir = runs_dir / "held-out"
    info = read_info(open_dataset_dir(load_config(run_dir / "config.yaml").data.dataset))
    held = list(info.held_out_classes)
    fused_file = predictions_path(run_dir, "testing")
    fused, composed = read_predictions(fused_file), read_predictions(readout_path(fused_file, "composed"))
    arrays = {
        f"ap_{name}": frame_map(p.scores, p.labels).per_class[held]
        for name, p in (("fused", fused), ("composed", composed))
    }
    index = max(range(len(fused.labels)), key=lambda v: int(fused.labels[v][:, held].sum()))
    arrays["scores_fused"] = fused.scores[index][:, held]
    arrays["scores_composed"] = composed.scores[index][:, held]
    arrays["labels"] = fused.labels[index][:, held].astype(np.uint8)
    summary = run_metrics(fused_file, held_out_classes=held) | {
        "held_out_classes": [info.classes[c] for c in held],
        "video": fused.video_ids[index],
    }
    return arrays, summary


def _colv_evidence(runs_dir: Path) -> tuple[dict, dict]:
    import torch.nn.functional as F

    arrays: dict = {}
    summary: dict = {}
    for state in ("trained", "untrained"):
        loaded = _load(runs_dir / "default", trained=state == "trained")
        criterion = loaded.criterion
        sums: dict = {}
        for item in loaded.videos:
            output, _ = _forward(loaded, item)
            for kind, features in (("entity", output.entity_features), ("motion", output.motion_features)):
                f = F.normalize(criterion.projections[kind](features[0]), dim=-1)
                u = F.normalize(getattr(criterion, f"text_{kind}"), dim=-1)
                similarity = (f @ u.T).detach().numpy()  # (T, C_kind) cosine of segment to prompt
                labels = _labels(item, f"{kind}_labels").astype(np.float64)
                total, count = sums.get(kind, (0.0, 0.0))
                sums[kind] = (total + labels.T @ similarity, count + labels.sum(0)[:, None])
        for kind, (total, count) in sums.items():
            matrix = total / np.maximum(count, 1)  # (C, C): concept of the segment x prompt
            arrays[f"{kind}_{state}"] = matrix
            diagonal = np.eye(len(matrix), dtype=bool)
            summary[f"{kind}_margin_{state}"] = float(matrix[diagonal].mean() - matrix[~diagonal].mean())
    summary["entities"], summary["motions"] = list(loaded.info.entities), list(loaded.info.motions)
    return arrays, summary


_EVIDENCE_MAKERS = {
    "attention": _attention_evidence,
    "cross-attention": _cross_attention_evidence,
    "composed": _composed_evidence,
    "colv": _colv_evidence,
}


def make_evidence(kind: str, runs_dir: str | Path, out_dir: str | Path = PRECOMPUTED) -> Path:
    """Write the trained evidence ``kind`` (a key of :data:`EVIDENCE`) from the finished runs in
    ``runs_dir`` (:func:`train_evidence_runs`) to ``out_dir``: its arrays as float16 (labels uint8)
    in a compressed npz, and beside it (:func:`source_path`) a json record with the summary
    numbers, the runs' test results and how it was made. Returns the npz path."""
    if kind not in EVIDENCE:
        raise ValueError(f"kind: expected one of {', '.join(EVIDENCE)}, found {kind!r}")
    runs_dir, out = Path(runs_dir), Path(out_dir) / EVIDENCE[kind][0]
    arrays, summary = _EVIDENCE_MAKERS[kind](runs_dir)

    def portable(text: str) -> str:  # the record names the data folder, not where it was on this machine
        return text.replace(str(data_root()), "$REFDENSE_DATA")

    record = {
        "kind": kind,
        "summary": summary,
        "arrays": {name: list(np.shape(a)) for name, a in arrays.items()},
        "runs": {
            name: {
                "extras": list(EVIDENCE_RUNS[name][0]),
                "dials": EVIDENCE_RUNS[name][1],
                "config": portable((runs_dir / name / "config.yaml").read_text(encoding="utf-8")),
                "results": json.loads(
                    portable((runs_dir / name / "results.json").read_text(encoding="utf-8"))
                ),
            }
            for name in EVIDENCE[kind][1]
        },
        "made_by": f"{REMAKE} --only {kind}, {time.strftime('%Y-%m-%d')}",
    }
    stored: dict[str, Any] = {
        n: a if a.dtype == np.uint8 else np.asarray(a, dtype=np.float16) for n, a in arrays.items()
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(out, "wb") as handle:
        np.savez_compressed(handle, **stored)
    with atomic_write(source_path(out)) as handle:
        json.dump(record, handle, indent=1)
        handle.write("\n")
    return out


def load_evidence(kind: str, path: str | Path | None = None) -> tuple[dict[str, np.ndarray], dict]:
    """The arrays (float32; labels uint8) and the json record of the committed evidence ``kind``.

    Raises FileNotFoundError, with the command that makes them, when either file is missing.
    """
    if kind not in EVIDENCE:
        raise ValueError(f"kind: expected one of {', '.join(EVIDENCE)}, found {kind!r}")
    path = Path(path) if path is not None else PRECOMPUTED / EVIDENCE[kind][0]
    for needed in (path, source_path(path)):
        if not needed.is_file():
            raise FileNotFoundError(f"{needed}: missing; make it with `{REMAKE} --only {kind}`")
    with np.load(path, allow_pickle=False) as data:
        arrays = {n: data[n] if data[n].dtype == np.uint8 else data[n].astype(np.float32) for n in data.files}
    return arrays, json.loads(source_path(path).read_text(encoding="utf-8"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog=REMAKE, description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--only",
        choices=("text-bank", "predictions", "first-study", *EVIDENCE),
        help="remake one kind of file only",
    )
    parser.add_argument(
        "--run", metavar="DIR", help="export the runs of this finished `refdense demo` instead of training"
    )
    parser.add_argument(
        "--evidence-runs",
        metavar="DIR",
        help="read the trained evidence from the finished runs in DIR (as a previous call trained them) "
        "instead of training them",
    )
    parser.add_argument("--epochs", type=int, help="train this many epochs (default: the recipe's)")
    args = parser.parse_args(argv)
    repo = clone_root()
    if repo is None:  # the files ship inside the package: never rewrite an installed copy
        parser.error(
            f"remake the course's results in a clone of the repository (this package is installed in "
            f"{PRECOMPUTED.parents[2]}), then commit them"
        )
    if args.only in (None, "text-bank"):
        print(f"text bank: {make_text_bank()}", flush=True)
    if args.only in (None, "predictions"):
        for path in export_demo(args.run) if args.run else make_demo_predictions(epochs=args.epochs):
            print(f"predictions: {path}", flush=True)
    if args.only in (None, "first-study"):
        for path in copy_first_study(repo / "results"):
            print(f"first study: {path}", flush=True)
    kinds = [kind for kind in EVIDENCE if args.only in (None, kind)]
    if kinds:
        runs_dir = Path(args.evidence_runs) if args.evidence_runs else runs_root() / "course-evidence"
        if not args.evidence_runs:
            names = dict.fromkeys(name for kind in kinds for name in EVIDENCE[kind][1])
            train_evidence_runs(runs_dir, list(names), epochs=args.epochs)
        for kind in kinds:
            print(f"{kind}: {make_evidence(kind, runs_dir)}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
