"""Course support: the compare helpers, the exercise checker, the solutions, the notebook executor."""

from __future__ import annotations

import json
import math

import nbformat
import numpy as np
import pytest
import torch

from refdense.course import checks
from refdense.course.checks import check, check_exercise, check_prediction, compare, portable, start_notebook
from refdense.course.execute import clean, main, source_sha256
from refdense.course.storage import WIDGET_VIEW_MIME as WIDGET_MIME


# --- compare / check -------------------------------------------------------------------------------


def test_compare_tells_exact_approximate_and_wrong():
    x = torch.arange(6.0).reshape(2, 3)
    assert compare(x, x.clone())[0] == "exact"
    verdict, detail = compare(x + 1e-8, x)
    assert verdict == "approximate" and "max difference" in detail
    verdict, detail = compare(x + 0.1, x)
    assert verdict == "wrong" and "0.1" in detail
    assert compare(x, x.reshape(3, 2)) == ("wrong", "shape (2, 3), expected (3, 2)")
    assert compare(x.numpy(), x)[0] == "exact"  # numpy against torch
    assert compare(torch.tensor([True, False]), np.array([1, 0]))[0] == "exact"
    assert compare(np.array([np.nan, 1.0]), np.array([np.nan, 1.0]))[0] == "exact"
    assert compare(np.array([np.nan, 1.0]), np.array([0.0, 1.0]))[0] == "wrong"


def test_compare_walks_containers_and_never_raises():
    assert compare({"a": 1, "b": [1.0, 2.0]}, {"a": 1, "b": [1.0, 2.0]})[0] == "exact"
    assert compare((torch.ones(2), "x"), (torch.ones(2), "y")) == ("wrong", "[1]: got 'x', expected 'y'")
    assert compare({"a": 1}, {"b": 1})[0] == "wrong"
    assert compare([1, 2], [1, 2, 3]) == ("wrong", "shape (2,), expected (3,)")
    assert compare([1, "a"], [1, "a", 3]) == ("wrong", "length 2, expected 3")

    class Weird:
        def __eq__(self, other):
            raise RuntimeError("boom")

    verdict, detail = compare(Weird(), 1)
    assert verdict == "wrong" and "boom" in detail


def test_check_prints_a_verdict_and_returns_a_bool(capsys):
    assert check("same", torch.zeros(3), torch.zeros(3)) is True
    assert check("close", torch.zeros(3) + 1e-9, torch.zeros(3)) is True
    assert check("far", torch.zeros(3) + 1.0, torch.zeros(3), atol=0.5) is False
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "same: exact"
    assert out[1].startswith("close: approximate (max difference")
    assert out[2] == "far: WRONG (max difference 1)"


# --- check_exercise --------------------------------------------------------------------------------


def _square(x):
    return x * x


def test_check_exercise_accepts_a_right_answer(capsys):
    assert check_exercise(lambda x: x**2, _square, torch.arange(4.0), (torch.ones(2),)) is True
    assert "all 2 cases agree" in capsys.readouterr().out


@pytest.mark.parametrize(
    "answer, message",
    [
        (lambda x: x + x, "case 1: not yet: max difference"),
        (lambda x: None, "returned None"),
        (lambda x: x.reshape(2, 2), "shape (2, 2), expected (4,)"),
        (lambda x: 1 / 0, "ZeroDivisionError"),
    ],
)
def test_check_exercise_reports_a_wrong_answer_without_raising(capsys, answer, message):
    assert check_exercise(answer, _square, torch.arange(4.0)) is False
    assert message in capsys.readouterr().out


def test_check_exercise_shows_the_inputs_the_expected_and_the_found_value(capsys):
    assert check_exercise(lambda x: x + 1, _square, 3) is False
    out = capsys.readouterr().out
    assert "inputs:   3\n" in out and "expected: 9" in out and "found:    4" in out
    assert check_exercise(lambda x: x + x, _square, torch.arange(4.0)) is False
    out = capsys.readouterr().out
    assert "Tensor of shape (4,), first values [0., 1., 4., 9.]" in out  # expected
    assert "first values [0., 2., 4., 6.]" in out  # found


def test_check_prediction_grades_and_shows_what_was_found(capsys):
    found = {"strict": 0, "share": "under 1%"}
    assert check_prediction({"strict": 0, "share": "Under 1%"}, found, inputs="tiny, 40 videos") is True
    out = capsys.readouterr().out
    assert "inputs: tiny, 40 videos" in out and "2 of 2 predicted right" in out
    assert check_prediction({"strict": 3, "share": None}, found, inputs="tiny") is False
    out = capsys.readouterr().out
    assert "strict: your prediction 3, found 0: not this time" in out
    assert "share: your prediction None, found 'under 1%': not predicted yet" in out
    assert check_prediction(None, "stays near 0.61", inputs="lag task") is False
    assert "found 'stays near 0.61'" in capsys.readouterr().out
    assert check_prediction(5.1, 5, inputs="x", rtol=0.05) is True


@pytest.mark.clone
def test_portable_writes_the_machine_folders_as_placeholders(tmp_path):
    import sys
    import tempfile
    from pathlib import Path

    from refdense.paths import clone_root

    clone = clone_root()
    assert clone is not None  # the tests run from a clone
    text = f"{clone / 'runs' / 'x'} | {Path(sys.prefix) / 'lib'} | {Path(tempfile.gettempdir()) / 'y'} | {Path.home() / 'z'}"
    shown = portable(text)
    assert shown.startswith(str(Path("<clone>") / "runs" / "x"))
    for folder in (str(clone), sys.prefix, tempfile.gettempdir(), str(Path.home())):
        assert folder not in shown, (folder, shown)


def test_check_exercise_handles_a_stub_and_protects_the_inputs(capsys):
    def stub(x):
        raise NotImplementedError

    assert check_exercise(stub, _square, torch.ones(2)) is False
    assert "not answered yet" in capsys.readouterr().out

    def mutating(x):
        x.add_(1)
        return x * x

    shared = torch.ones(3)
    assert check_exercise(mutating, _square, shared) is False  # (1+1)^2 != 1
    assert torch.equal(shared, torch.ones(3)), "the checker must not let an answer change the cases"
    assert check_exercise(_square, _square) is False  # no cases is not a pass


# --- start_notebook --------------------------------------------------------------------------------


def test_start_notebook_seeds_and_reads_the_profile(monkeypatch, tmp_path):
    monkeypatch.delenv("REFDENSE_PROFILE", raising=False)
    monkeypatch.setenv("REFDENSE_REAL_DATASET", str(tmp_path))
    course = start_notebook(seed=3)
    first = torch.rand(3)
    assert course.profile == "smoke" and course.smoke and course.seed == 3
    assert course.device.type in ("cpu", "cuda")
    assert course.real_dataset == tmp_path
    start_notebook(seed=3)
    assert torch.equal(torch.rand(3), first)

    monkeypatch.setenv("REFDENSE_PROFILE", "full")
    assert start_notebook().profile == "full"
    monkeypatch.setenv("REFDENSE_PROFILE", "huge")
    with pytest.raises(ValueError, match="REFDENSE_PROFILE.*'huge'"):
        checks.read_profile()


# --- executor --------------------------------------------------------------------------------------


def _notebook(*cells) -> nbformat.NotebookNode:
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.cells = list(cells)
    return nb


def test_source_hash_covers_code_and_markdown_but_not_outputs():
    nb = _notebook(nbformat.v4.new_markdown_cell("# Title"), nbformat.v4.new_code_cell("1 + 1"))
    before = source_sha256(nb)
    nb.cells[1].outputs = [nbformat.v4.new_output("stream", text="2\n")]
    assert source_sha256(nb) == before
    nb.cells[0].source = "# Another title"
    assert source_sha256(nb) != before
    nb.cells[0].source = "# Title"
    nb.cells[0].cell_type, nb.cells[1].cell_type = "raw", "code"
    assert source_sha256(nb) != before


def test_clean_strips_widget_state_and_numbers_the_cells():
    widget = {"model_id": "abc", "version_major": 2, "version_minor": 0}
    nb = _notebook(
        nbformat.v4.new_code_cell("w", execution_count=7, outputs=[
            nbformat.v4.new_output("display_data", data={WIDGET_MIME: widget, "text/plain": "IntSlider(value=3)"}),
            nbformat.v4.new_output("display_data", data={WIDGET_MIME: widget}),
        ]),
        nbformat.v4.new_markdown_cell("text"),
        nbformat.v4.new_code_cell("2", execution_count=9, outputs=[
            nbformat.v4.new_output("execute_result", data={"text/plain": "2"}, execution_count=9),
        ]),
    )
    nb.metadata["widgets"] = {"application/vnd.jupyter.widget-state+json": {"state": {}}}
    clean(nb)
    assert "widgets" not in nb.metadata
    assert [c.execution_count for c in nb.cells if c.cell_type == "code"] == [1, 2]
    assert nb.cells[0].outputs == [nbformat.v4.new_output("display_data", data={"text/plain": "IntSlider(value=3)"})]
    assert nb.cells[2].outputs[0]["execution_count"] == 2
    assert nb.metadata["refdense"]["source_sha256"] == source_sha256(nb)
    nbformat.validate(nb)


def test_execute_runs_in_place_cleanly_and_leaves_a_failing_notebook_alone(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("MPLBACKEND", "Agg")  # as under `make`: the executor must still store images
    monkeypatch.delenv("REFDENSE_PROFILE", raising=False)
    (tmp_path / "here.txt").write_text("cwd")
    good = _notebook(
        nbformat.v4.new_markdown_cell("# A tiny notebook"),
        nbformat.v4.new_code_cell("import os\nprint(open('here.txt').read(), os.environ['REFDENSE_PROFILE'])"),
        nbformat.v4.new_code_cell(
            "import matplotlib.pyplot as plt\nfig, ax = plt.subplots(figsize=(2, 1))\nax.plot([0, 1])\n"
            "from refdense.course.checks import show\nshow(fig)"
        ),
        nbformat.v4.new_code_cell("import ipywidgets\nipywidgets.IntSlider(value=3)"),
    )
    bad = _notebook(nbformat.v4.new_code_cell("raise RuntimeError('broken on purpose')"))
    nbformat.write(good, tmp_path / "01_good.ipynb")
    nbformat.write(bad, tmp_path / "02_bad.ipynb")
    bad_bytes = (tmp_path / "02_bad.ipynb").read_bytes()

    assert main([str(tmp_path), "--timeout", "120"]) == 1
    out, err = capsys.readouterr()
    assert "01_good.ipynb:" in out and "1 of 2 notebooks executed" in out
    assert "02_bad.ipynb: FAILED" in err and "broken on purpose" in err
    assert (tmp_path / "02_bad.ipynb").read_bytes() == bad_bytes
    assert not list(tmp_path.glob("*.tmp-*")), "no temporary file may survive"

    nb = nbformat.read(tmp_path / "01_good.ipynb", as_version=4)
    nbformat.validate(nb)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert [c.execution_count for c in code] == [1, 2, 3]
    assert code[0].outputs[0]["text"] == "cwd smoke\n"
    figures = [o for o in code[1].outputs if "image/png" in o.get("data", {})]
    assert len(figures) == 1, "show() displays the figure exactly once, as an image"
    widget_outputs = code[2].outputs
    assert widget_outputs and all(WIDGET_MIME not in o.get("data", {}) for o in widget_outputs)
    assert "IntSlider" in widget_outputs[0]["data"]["text/plain"]
    assert "widgets" not in nb.metadata
    assert nb.metadata["refdense"]["source_sha256"] == source_sha256(nb)
    assert "execution" not in json.dumps([c.metadata for c in nb.cells])


def test_execute_rejects_what_is_not_a_notebook(tmp_path, capsys):
    (tmp_path / "notes.txt").write_text("x")
    assert main([str(tmp_path / "notes.txt")]) == 2
    err = capsys.readouterr().err
    assert all(piece in err for piece in (f"{tmp_path / 'notes.txt'}: ", "expected a notebook (.ipynb)")), err
    assert main([str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert all(piece in err for piece in ("no notebooks", str(tmp_path))), err


# --- solutions: the checker says True for each solution and False (without raising) for a wrong answer


def _solution_cases():
    """(solution, reference, wrong answer, cases) for every exercise, with the notebooks' references."""
    from refdense.course import solutions
    from refdense.data import dense_labels
    from refdense.models import CrossAttention, ModelConfig, build_model, position_bias
    from refdense.models.blocks import Branch

    g = torch.Generator().manual_seed(0)
    randn = lambda *shape: torch.randn(*shape, generator=g)  # noqa: E731

    def measured_reach(blocks):  # notebook 03's reference: attention off, the farthest output an input moves
        cfg = ModelConfig(dim=8, heads=1, head_dim=8, entity_blocks=blocks, max_len=64, local_hidden=16)
        branch = Branch(6, cfg, stride=1, blocks=blocks).double().eval()  # float64: tiny effects stay visible
        with torch.no_grad():
            for block in branch.blocks:
                block.attn.to_out.weight.zero_()
                block.attn.to_out.bias.zero_()
            inputs, everywhere = randn(1, 41, 6).double(), torch.ones(1, 41, dtype=torch.bool)
            moved = inputs.clone()
            moved[0, 20] += 1.0
            changed = (branch(moved, everywhere) != branch(inputs, everywhere)).any(-1)[0].nonzero().flatten()
        return int((changed - 20).abs().max())

    def ramp_by_softmax(slope, distances, length=401):
        # notebook 01: the ramp table in the package's relative bias, softmax of the middle query's row
        centre = length // 2
        table = -slope * torch.arange(-(length - 1), length, dtype=torch.float64).abs()[:, None]  # (2L - 1, 1)
        bias = position_bias(torch.ones(1, 1, length, 1, dtype=torch.float64), table, "relative")[0, 0]
        return bias[centre].softmax(0)[centre - distances]

    def cross_count(T, strides, blocks, placement):
        cfg = ModelConfig(dim=8, heads=1, head_dim=8, blocks=blocks, strides=strides, max_len=256, local_hidden=8,
                          cross_attention_placement=placement)
        net = build_model(cfg, video_dim=4, image_dim=4, num_classes=2, num_entities=2, num_motions=2).eval()
        scores = []
        for m in net.modules():
            if isinstance(m, CrossAttention):
                m.register_forward_hook(lambda m, a, o: scores.append(a[0].shape[1] * a[1].shape[1]))
        with torch.no_grad():
            net(torch.zeros(1, T, 4), torch.zeros(1, T, 4))
        return sum(scores)

    def and_weight_by_bisection(p):  # notebook 05's reference
        low, high = 0.0, 100.0
        for _ in range(100):
            w = (low + high) / 2
            both = torch.sigmoid(torch.tensor(0.5 * w, dtype=torch.float64))
            one = torch.sigmoid(torch.tensor(-0.5 * w, dtype=torch.float64))
            low, high = (low, w) if both >= p and one <= 1 - p else (w, high)
        return high

    def counted_on_a_grid(num_entities, num_motions):  # notebook 02's reference
        grid_ent = np.repeat(np.eye(num_entities), num_motions, axis=0)
        grid_mot = np.tile(np.eye(num_motions), (num_entities, 1))
        shared = (grid_ent @ grid_ent.T + grid_mot @ grid_mot.T) > 0
        return int(np.triu(shared, k=1).sum())

    return {
        "strict_segment_count": (
            solutions.strict_segment_count,
            lambda s, e, d, n: int(dense_labels([(0, s, e)], d, n, 1, boundary="strict")[0].sum()),
            lambda s, e, d, n: round((e - s) * n / d),  # the duration in segment periods
            [(1.0, 2.0, 4.0, 8), (0.0, 4.0, 4.0, 8), (1.1, 1.3, 4.0, 8), (1.4, 1.6, 4.0, 8)]
            + [tuple(sorted(np.random.default_rng(seed).uniform(0, 30.0, 2))) + (30.0, 11 + seed) for seed in range(40)],
        ),
        "grid_ambiguous_pairs": (
            solutions.grid_ambiguous_pairs,
            counted_on_a_grid,
            lambda e, m: e * m * (m - 1) + m * e * (e - 1),  # ordered pairs: each counted twice
            [(4, 4), (10, 10), (3, 7), (1, 5), (38, 38)],
        ),
        "ramp_attention": (
            solutions.ramp_attention,
            ramp_by_softmax,
            lambda slope, r: torch.exp(-slope * r.abs().double()),  # not normalised
            [(0.5, torch.arange(-5, 6)), (1.0, torch.tensor([0, 1, -1, 7])), (0.1, torch.arange(-20, 21))],
        ),
        "reach_without_attention": (
            solutions.reach_without_attention,
            measured_reach,
            lambda blocks: 1 + 2 * blocks,  # counts each block's convolution twice
            [1, 2, 3],
        ),
        "cross_attention_scores": (
            solutions.cross_attention_scores,
            cross_count,
            lambda T, strides, blocks, placement: blocks * T * (T + sum(-(-T // s) for s in strides)),  # per block
            [(64, [2, 4, 8], 1, "branch"), (100, [2, 4, 8], 3, "block"), (37, [2], 2, "branch")],
        ),
        "and_weight": (
            solutions.and_weight,
            and_weight_by_bisection,
            lambda p: math.log(p / (1 - p)),  # forgets that each part gives only half of the margin
            [0.9, 0.95, 0.99, 0.6],
        ),
    }


SOLUTION_NAMES = [
    "strict_segment_count", "grid_ambiguous_pairs", "ramp_attention", "reach_without_attention",
    "cross_attention_scores", "and_weight",
]


@pytest.mark.parametrize("name", SOLUTION_NAMES)
def test_each_solution_passes_its_checker_and_a_wrong_answer_does_not(name, capsys):
    solution, reference, wrong, cases = _solution_cases()[name]
    assert check_exercise(solution, reference, *cases) is True, capsys.readouterr().out
    assert check_exercise(wrong, reference, *cases) is False
    assert "case" in capsys.readouterr().out


def test_every_solution_is_tested():
    """Each solution is checked here (SOLUTION_NAMES) or by a ``check_exercise(solutions.NAME, ...)`` in another test."""
    import re
    from pathlib import Path

    from refdense.course import solutions

    public = {name for name, value in vars(solutions).items() if callable(value) and not name.startswith("_")
              and getattr(value, "__module__", "") == solutions.__name__}
    tested = set(SOLUTION_NAMES)
    for path in Path(__file__).parent.glob("test_*.py"):
        tested.update(re.findall(r"check_exercise\(\s*solutions\.(\w+)", path.read_text(encoding="utf-8")))
    assert public <= tested, f"solutions without a test: {sorted(public - tested)}"
    assert set(SOLUTION_NAMES) <= public
