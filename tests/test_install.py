"""refdense works as an installed library, outside a clone (refdense/paths.py).

The wheel is built from the package's sources (offline, without build isolation) and installed
into a scratch virtual environment that sees the heavy dependencies (torch, h5py...) of the
environment running the tests through a ``.pth`` line, but not this clone: the commands run from
another folder, with a fake ``HOME``, without ``REFDENSE_DATA`` or ``PYTHONPATH``. The shipped files
(recipes, the MultiTHUMOS decomposition, the course's precomputed results) are read from the
installed package, generated data go to the user cache folder, and nothing is written into the
installed package.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent

CHECK = """
import platformdirs, refdense
from refdense.course.results import DEMO_PREDICTIONS, TEXT_BANK
from refdense.paths import clone_root, data_root
from refdense.train.demo import demo_configs
assert DEMO_PREDICTIONS.is_file() and TEXT_BANK.is_file()
assert [c.model.arch for c in demo_configs().values()] == ["refdense", "pat"]  # configs/*.yaml, shipped
print(refdense.__file__, clone_root(), data_root(), platformdirs.user_cache_path("refdense"), sep="\\n")
"""


def run(command: list, cwd: Path, env: dict | None = None) -> str:
    done = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, f"{' '.join(map(str, command))} failed:\n{done.stdout}\n{done.stderr}"
    return done.stdout


def files_under(folder: Path) -> set[Path]:
    return {p.relative_to(folder) for p in folder.rglob("*")}


def build_wheel(tmp_path: Path) -> Path:
    """The package's wheel, built offline from a copy of its sources under ``tmp_path``."""
    source = tmp_path / "source"  # a copy, so that the build writes nothing into the clone
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, source / name)
    shutil.copytree(REPO / "refdense", source / "refdense", ignore=shutil.ignore_patterns("__pycache__"))
    run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index", "-q",
         "-w", str(tmp_path / "wheel"), str(source)], cwd=source)
    return next((tmp_path / "wheel").glob("refdense-*.whl"))


def scratch_venv(venv: Path) -> tuple[Path, Path, list[str]]:
    """A venv at ``venv`` without refdense that sees the test environment's packages.

    Returns its python, its site-packages folder and the test environment's folders it sees.
    """
    run([sys.executable, "-m", "venv", "--without-pip", str(venv)], cwd=venv.parent)
    python = venv / "bin" / "python"
    site = Path(run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], cwd=venv.parent).strip())
    # the test environment's packages, appended after the venv's own (its .pth files, among them an
    # editable install of this clone, are not processed)
    ours = list(dict.fromkeys(sysconfig.get_paths()[key] for key in ("purelib", "platlib")))
    (site / "test-environment.pth").write_text("".join(f"{path}\n" for path in ours))
    return python, site, ours


def clean_env(home: Path) -> dict:
    """This environment without refdense's variables or a venv, with ``HOME`` at ``home``."""
    env = {key: value for key, value in os.environ.items()
           if key not in {"PYTHONPATH", "REFDENSE_DATA", "REFDENSE_RUNS", "XDG_CACHE_HOME", "VIRTUAL_ENV"}}
    env.update(HOME=str(home), PYTHONDONTWRITEBYTECODE="1")
    return env


@pytest.mark.slow
def test_the_wheel_installs_and_runs_outside_the_clone(tmp_path):
    wheel = build_wheel(tmp_path)
    venv = tmp_path / "venv"
    python, site, ours = scratch_venv(venv)
    run([sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps", "--no-index", "-q", str(wheel)],
        cwd=tmp_path)

    home, elsewhere = tmp_path / "home", tmp_path / "elsewhere"
    home.mkdir()
    elsewhere.mkdir()
    env = clean_env(home)
    installed_before = files_under(venv)
    ours_before = {path: sorted(os.listdir(path)) for path in ours}

    package, clone, data, cache = run([str(python), "-c", CHECK], elsewhere, env).split()
    assert Path(package).is_relative_to(site), f"refdense imported from {package}, not from the installed wheel"
    assert clone == "None" and data == cache and Path(cache).is_relative_to(home)

    assert "usage: refdense demo" in run([str(venv / "bin" / "refdense"), "demo", "--help"], elsewhere, env)
    printed = run([str(venv / "bin" / "refdense"), "synth", "--preset", "tiny"], elsewhere, env)
    assert f"dataset {Path(cache) / 'synthetic' / 'tiny'} " in printed
    assert (Path(cache) / "synthetic" / "tiny" / "dataset.json").is_file()
    printed = run([str(venv / "bin" / "refdense"), "decompose", "multithumos"], elsewhere, env)
    assert "65 classes -> 24 entities, 52 motions" in printed

    assert files_under(venv) == installed_before, "something was written into the installed package"
    assert {path: sorted(os.listdir(path)) for path in ours} == ours_before
    assert not any(elsewhere.iterdir()), "the commands wrote into the current folder"
