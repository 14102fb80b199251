"""bench/gpu_check.py, the prepared GPU check: its arithmetic, its summary and its driver (the cheap
parts of ``--smoke``), so that the script still runs when a session is lent a GPU."""

import importlib.util
import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def gpu_check():
    spec = importlib.util.spec_from_file_location("gpu_check", ROOT / "bench" / "gpu_check.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_bf16_peaks_by_device_name(gpu_check):
    assert gpu_check.bf16_peak_tflops("NVIDIA H100 80GB HBM3") == pytest.approx(989.4)
    assert gpu_check.bf16_peak_tflops("NVIDIA H100 PCIe") == pytest.approx(756.0)
    assert gpu_check.bf16_peak_tflops("NVIDIA H200") == pytest.approx(989.4)
    assert gpu_check.bf16_peak_tflops("cpu") is None


def test_achieved_tflops_counts_two_flops_per_mac_and_three_passes(gpu_check):
    # 10 GMACs per window, batch 5, 4 steps/s: 2 * 10e9 * 5 * 3 * 4 = 1.2e12 FLOP/s
    assert gpu_check.achieved_tflops(10.0, 5, 4.0) == pytest.approx(1.2)


def test_extrapolation_keeps_the_first_epoch_and_repeats_the_later_ones(gpu_check):
    history = [{"seconds": 30.0}, {"seconds": 10.0}, {"seconds": 12.0}]
    assert gpu_check.extrapolate(history, epochs=25) == pytest.approx(30.0 + 24 * 11.0)
    assert gpu_check.extrapolate(history[:1]) is None  # one epoch: warm-up only, nothing to repeat


def test_speed_figures_from_a_gpu_train_record(gpu_check):
    run = {"device": "NVIDIA H100 80GB HBM3", "gmacs_per_window": 10.0, "batch_size": 5, "test_eval_seconds": 4.0,
           "history": [{"epoch": 1, "steps": 100, "train_seconds": 50.0, "seconds": 60.0},
                       {"epoch": 2, "steps": 100, "train_seconds": 25.0, "seconds": 30.0}]}
    figures = gpu_check.speed_figures(run)
    assert figures["steps_per_second"] == pytest.approx(4.0)  # the steady (last) epoch
    assert figures["tflops"] == pytest.approx(1.2)
    assert figures["share_of_bf16_peak"] == pytest.approx(1.2 / 989.4)
    assert figures["recipe_seconds_extrapolated"] == pytest.approx(60.0 + 24 * 30.0)
    assert figures["test_eval_seconds"] == 4.0
    # stopped before its first epoch ended: what was known before training, nothing derived from steps
    assert gpu_check.speed_figures({**run, "history": []}) == {
        "epochs_done": 0, "recipe_seconds_extrapolated": None, "gmacs_per_window": 10.0, "test_eval_seconds": 4.0}


def test_summary_writes_json_and_a_markdown_row_per_part_and_check(gpu_check, tmp_path):
    report = {"smoke": True, "started": "2026-01-01 00:00:00 UTC", "budget": 100.0, "seconds": 12.0, "parts": {
        "environment": {"status": "ok", "seconds": 1.0, "note": "", "result": {"torch": "2.11.0"}},
        "correctness": {"status": "failed", "seconds": 5.0, "note": "", "result": {
            "padding_invariance": {"status": "failed", "max_abs_error": 0.5}}},
        "speed": {"status": "timeout", "seconds": 9.0, "note": "stopped at its limit of 9 s"}}}
    json_path, md_path = gpu_check.write_summary(tmp_path, report)
    assert json.loads(json_path.read_text()) == report
    text = md_path.read_text()
    assert "| torch | 2.11.0 |" in text
    assert "| correctness: padding_invariance | failed | | max_abs_error 0.5 |" in text
    assert "| speed | timeout | 9.0 |  — stopped at its limit of 9 s |" in text
    assert sorted(p.name for p in tmp_path.iterdir()) == ["summary.json", "summary.md"]  # no temporary left


@pytest.mark.slow
def test_a_part_over_its_limit_is_recorded_and_the_next_part_still_runs(gpu_check, tmp_path, monkeypatch):
    """The driver end to end on the two cheapest parts; the first is given too little time."""
    monkeypatch.setitem(gpu_check.SMOKE_SECONDS, "environment", 0.05)
    monkeypatch.delenv("OUT", raising=False)
    code = gpu_check.main(["--smoke", "--out", str(tmp_path / "out"), "--work", str(tmp_path / "work"),
                           "--only", "environment", "jobs"])
    report = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert report["parts"]["environment"]["status"] == "timeout"
    jobs = report["parts"]["jobs"]
    assert jobs["status"] == "ok", jobs  # one run at a time, then two at once: the same numbers
    assert jobs["result"]["runs"] == 4 and jobs["result"]["largest_map_difference"] < 1e-6
    assert code == 1  # a part that did not finish fails the check
    assert (tmp_path / "out" / "log.txt").read_text().count("=====") == 4  # both parts' output is logged
