"""The demo (RefDense vs PAT, REPORT.md) and the ablation runner, shrunk to the tiny preset."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
import torch

from refdense.metrics import paper_table, read_predictions
from refdense.experiments.ablate import ABLATIONS, VARIANTS, ablate
from refdense.experiments.demo import demo

SMALL = ("data.window=16", "data.validation_fraction=0.125", "data.text_encoder=random", "model.dim=16",
         "model.heads=2", "model.head_dim=8", "model.strides=[2, 4]", "model.max_len=16", "model.local_hidden=32",
         "optim.batch_size=4", "optim.lr=3e-3", "run.device=cpu")


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def dataset(writable_tiny_dataset):
    return writable_tiny_dataset


@pytest.mark.course
def test_demo_writes_a_report_comparing_both_models_from_their_predictions(dataset, tmp_path):
    report = demo(tmp_path / "demo", overrides=(f"data.dataset={dataset}", "optim.epochs=1", *SMALL), progress=False)
    text = report.read_text()
    rows = {}
    for name, folder in (("RefDense", "refdense"), ("PAT (I3D+CLIP concat)", "pat")):
        row = next(line for line in text.splitlines() if line.startswith(f"| {name} "))
        rows[name] = [float(cell) for cell in row.strip("|").split("|")[1:]]
        saved = read_predictions(tmp_path / "demo" / folder / "predictions-test.npz")
        table = paper_table(saved.scores, saved.labels)
        assert rows[name][0] == pytest.approx(100 * table.frame_map.map_all, abs=0.006)
        assert rows[name][2] == pytest.approx(100 * table.conditional[0].mAP_ac, abs=0.006)
    assert "synthetic-data numbers" in text
    assert re.search(r"\*\*RefDense\*\*: Test numbers from `best.pt`, epoch 1 of 1", text)
    figures = re.findall(r"\]\((figures/[^)]+\.png)\)", text)
    assert len(figures) == 5 and all((tmp_path / "demo" / f).is_file() for f in figures)
    pat_config = (tmp_path / "demo" / "pat" / "config.yaml").read_text()
    assert "arch: pat" in pat_config and "inputs: concat" in pat_config
    assert "loss: asymmetric loss on the coarse head + 0.1 x the fine head (PAT's recipe), no CoLV." in text
    assert "loss: BCE on actions + entity + motion, CoLV on entity, motion" in text


def test_ablation_files_are_the_listed_variants():
    assert sorted(p.stem for p in ABLATIONS.glob("*.yaml")) == sorted(v.name for v in VARIANTS)


@pytest.mark.slow
def test_ablate_reports_mean_and_spread_over_seeds(dataset, tmp_path):
    report = ablate(str(dataset), tmp_path / "ablations", seeds=(0, 1), epochs=1, variants=("full", "pat"),
                    overrides=SMALL, progress=False)
    text = report.read_text()
    values = json.loads((tmp_path / "ablations" / "ablations.json").read_text())["runs"]
    assert set(values) == {"full", "pat"} and all(len(runs) == 2 for runs in values.values())
    full_map = [run["mAP"] for run in values["full"]]
    assert full_map[0] != full_map[1]  # the seeds differ
    row = next(line for line in text.splitlines() if "RefDense (full)" in line)
    assert f"{np.mean(full_map):.2f} ± {np.std(full_map, ddof=1):.2f}" in row
    pat_row = next(line for line in text.splitlines() if "PAT (I3D+CLIP concat)" in line)
    pat_map = [run["mAP"] for run in values["pat"]]
    assert f"({np.mean(pat_map) - np.mean(full_map):+.2f})" in pat_row
    # a second call reuses the finished runs
    stamp = (tmp_path / "ablations" / "full" / "seed0" / "checkpoints" / "latest.pt").stat().st_mtime_ns
    ablate(str(dataset), tmp_path / "ablations", seeds=(0, 1), epochs=1, variants=("full", "pat"),
           overrides=SMALL, progress=False)
    assert (tmp_path / "ablations" / "full" / "seed0" / "checkpoints" / "latest.pt").stat().st_mtime_ns == stamp
    with pytest.raises(ValueError, match=r"unknown ablation\(s\) \['fancy'\]"):
        ablate(str(dataset), tmp_path / "x", variants=("fancy",))
