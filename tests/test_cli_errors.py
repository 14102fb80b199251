"""The command line reports user errors in one place (``refdense.cli.main``): status 2, one line
naming the command, the key, file or value, no traceback; a bug still raises."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import refdense.cli.metrics
from refdense.cli import COMMANDS, CommandError, main
from refdense.extras import MissingExtraError
from refdense.schema import ConfigError

CLI = Path(refdense.cli.__file__).parent


def conversions(path: Path) -> list[int]:
    """Lines of ``except ...: raise CommandError(str(error))``: a module converting errors itself."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ExceptHandler):
            for statement in node.body:
                if isinstance(statement, ast.Raise) and "CommandError(str(" in ast.unparse(statement):
                    found.append(statement.lineno)
    return found


@pytest.mark.parametrize("name", COMMANDS)
def test_no_command_converts_user_errors_itself(name):
    assert conversions(CLI / f"{name}.py") == []


def test_the_check_finds_a_conversion(tmp_path):
    module = tmp_path / "command.py"
    module.write_text("try:\n    f()\nexcept ValueError as error:\n    raise CommandError(str(error)) from None\n")
    assert conversions(module) == [4]


@pytest.mark.parametrize(
    "error, shown",
    [
        (CommandError("--out: give a folder"), "--out: give a folder"),
        (ConfigError("run.yaml: optim.lr must be a number > 0, found -1"), "optim.lr"),
        (FileNotFoundError(2, "No such file or directory", "missing.npz"), "missing.npz: No such file"),
        (FileExistsError("runs/a exists; give --overwrite"), "runs/a"),
        (MissingExtraError("plots need the package 'matplotlib'"), "'matplotlib'"),
    ],
)
def test_main_reports_a_user_error_as_the_error_exit(error, shown, monkeypatch, capsys):
    def run(args):
        raise error

    monkeypatch.setattr(refdense.cli.metrics, "run", run)
    assert main(["metrics", "predictions.npz"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("refdense metrics: error: ") and shown in err and "Traceback" not in err


def test_a_bug_is_not_taken_for_a_user_error(monkeypatch):
    def run(args):
        raise KeyError("video")

    monkeypatch.setattr(refdense.cli.metrics, "run", run)
    with pytest.raises(KeyError, match="video"):
        main(["metrics", "predictions.npz"])


def test_a_diverged_run_is_a_user_error(monkeypatch, capsys):
    from refdense.train.result import NonFiniteLossError

    def run(args):
        raise NonFiniteLossError("epoch 3: the loss is nan; lower optim.lr")

    monkeypatch.setattr(refdense.cli.metrics, "run", run)
    assert main(["metrics", "predictions.npz"]) == 2
    assert "optim.lr" in capsys.readouterr().err


def test_a_config_error_from_the_command_line_names_the_key(capsys):
    assert main(["train", "--config", "configs/synthetic.yaml", "--set", "optim.lrr=1"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("refdense train: error: ") and "optim.lrr" in err and "optim.lr" in err
