"""refdense works as an installed library, outside a clone (refdense/paths.py), without the
course extra.

The wheel is built from the package's sources (offline, without build isolation) and installed
into a scratch virtual environment that sees the heavy dependencies (torch, h5py...) of the
environment running the tests, but neither this clone nor the packages of the ``course`` extra:
a ``.pth`` line adds a folder of links to the test environment's packages, less matplotlib,
ipywidgets, Jupyter, nbval, open_clip and their kin. The commands run from another folder, with a
fake ``HOME``, without ``REFDENSE_DATA`` or ``PYTHONPATH``. The shipped files (recipes, the
MultiTHUMOS decomposition, the course's precomputed results) are read from the installed package,
generated data go to the user cache folder, a run trains and writes its results without plots,
and nothing is written into the installed package.
"""

from __future__ import annotations

import ast
import importlib.metadata
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
# What the course extra installs, with what it brings (distributions and modules, by name prefix).
COURSE_STACK = ("matplotlib", "mpl_toolkits", "pylab", "ipywidgets", "widgetsnbextension", "ipython", "ipykernel",
                "jupyter", "nbval", "nbformat", "nbclient", "nbconvert", "notebook", "open_clip")

CHECK = """
import platformdirs, refdense
from refdense.course.results import DEMO_PREDICTIONS, FIRST_STUDY, FIRST_STUDY_FILES, TEXT_BANK
from refdense.paths import clone_root, data_root
from refdense.experiments.demo import demo_configs
assert DEMO_PREDICTIONS.is_file() and TEXT_BANK.is_file()
assert all((FIRST_STUDY / name).is_file() for name in FIRST_STUDY_FILES)  # notebook 10's study, without results/
assert [c.model.arch for c in demo_configs().values()] == ["refdense", "pat"]  # configs/*.yaml, shipped
print(refdense.__file__, clone_root(), data_root(), platformdirs.user_cache_path("refdense"), sep="\\n")
"""

# The library's imports load nothing of the course stack, which is really absent here; what needs
# it says which extra brings it.
WITHOUT_EXTRA = f"""
import importlib.util, sys
import refdense, refdense.train, refdense.models, refdense.train.checkpoint
from refdense.extras import MissingExtraError
stack = {COURSE_STACK!r}
assert all(importlib.util.find_spec(name) is None for name in ("matplotlib", "ipywidgets", "IPython", "open_clip"))
print(sorted({{m.split(".")[0] for m in sys.modules if m.lower().startswith(stack)}}))
try:
    import refdense.viz
except MissingExtraError as error:
    print(error)
"""


def run(command: list, cwd: Path, env: dict | None = None) -> str:
    done = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, f"{' '.join(map(str, command))} failed:\n{done.stdout}\n{done.stderr}"
    return done.stdout


def files_under(folder: Path) -> set[Path]:
    return {p.relative_to(folder) for p in folder.rglob("*")}


def links_without_course_stack(sites, folder: Path) -> Path:
    """``folder`` holding a link to each entry of the ``sites`` folders but the course stack's."""
    folder.mkdir()
    for site in map(Path, sites):
        for entry in site.iterdir():
            if not entry.name.lower().startswith(COURSE_STACK) and not (folder / entry.name).exists():
                (folder / entry.name).symlink_to(entry)
    return folder


def requirements(wheel: Path) -> dict[str | None, set[str]]:
    """The names the wheel requires, by extra (None: always), normalised (``PyYAML`` -> ``pyyaml``)."""
    with zipfile.ZipFile(wheel) as archive:
        metadata = next(name for name in archive.namelist() if name.endswith(".dist-info/METADATA"))
        lines = archive.read(metadata).decode().splitlines()
    found: dict[str | None, set[str]] = {}
    for line in lines:
        if line.startswith("Requires-Dist: "):
            requirement, _, marker = line.removeprefix("Requires-Dist: ").partition(";")
            extra = re.search(r"extra == \"([^\"]+)\"", marker)
            found.setdefault(extra and extra.group(1), set()).add(normalised(re.split(r"[\[<>=!~ ]", requirement)[0]))
    return found


def normalised(distribution: str) -> str:
    return re.sub(r"[-_.]+", "-", distribution).lower()


def test_the_wheel_requires_the_library_and_offers_the_course_as_an_extra(tmp_path):
    required = requirements(build_wheel(tmp_path))
    assert required[None] == {"torch", "numpy", "h5py", "tqdm", "pyyaml", "platformdirs", "scipy"}
    assert {"jupyterlab", "nbval", "ipywidgets", "ipython", "matplotlib", "nbformat", "nbclient", "open-clip-torch",
            "huggingface-hub"} <= required["course"]

    # every package the package's modules import is required, always or by an extra
    declared = set().union(*required.values())
    imported = set()
    for path in (REPO / "refdense").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                imported |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                imported.add(node.module.split(".")[0])
    # tomllib: the standard library's from Python 3.11 (refdense.course.header, a maintainers' tool)
    third_party = sorted(imported - set(sys.stdlib_module_names) - {"refdense", "tomllib"})
    distributions = importlib.metadata.packages_distributions()
    undeclared = {name: distributions.get(name) for name in third_party
                  if not {normalised(d) for d in distributions.get(name, [name])} & declared}
    assert "scipy" in third_party and not undeclared, f"imported but not required by the wheel: {undeclared}"


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


def scratch_venv(venv: Path, course_stack: bool) -> tuple[Path, Path, list[str]]:
    """A venv at ``venv`` without refdense that sees the test environment's packages (the course
    stack among them only if ``course_stack``).

    Returns its python, its site-packages folder and the test environment's folders it sees.
    """
    run([sys.executable, "-m", "venv", "--without-pip", str(venv)], cwd=venv.parent)
    python = venv / "bin" / "python"
    site = Path(run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], cwd=venv.parent).strip())
    # the test environment's packages, appended after the venv's own (their .pth files, among them an
    # editable install of this clone, are not processed)
    ours = list(dict.fromkeys(sysconfig.get_paths()[key] for key in ("purelib", "platlib")))
    seen = ours if course_stack else [links_without_course_stack(ours, venv.parent / "packages")]
    (site / "test-environment.pth").write_text("".join(f"{path}\n" for path in seen))
    return python, site, ours


def clean_env(home: Path) -> dict:
    """This environment without refdense's variables or a venv, with ``HOME`` at ``home``."""
    env = {key: value for key, value in os.environ.items()
           if key not in {"PYTHONPATH", "REFDENSE_DATA", "REFDENSE_RUNS", "XDG_CACHE_HOME", "VIRTUAL_ENV"}}
    env.update(HOME=str(home), PYTHONDONTWRITEBYTECODE="1")
    return env


def test_the_wheel_installs_and_runs_outside_the_clone_without_the_course_extra(tmp_path):
    wheel = build_wheel(tmp_path)
    venv = tmp_path / "venv"
    python, site, ours = scratch_venv(venv, course_stack=False)
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

    loaded, missing = run([str(python), "-c", WITHOUT_EXTRA], elsewhere, env).splitlines()
    assert loaded == "[]", f"importing the library loaded the course stack: {loaded}"
    assert "'matplotlib'" in missing and 'pip install "refdense[course]"' in missing
    run_dir = tmp_path / "run"
    settings = ["data.dataset=tiny", "data.text_encoder=random", "data.window=16", "model.dim=16", "model.heads=2",
                "model.head_dim=8", "model.blocks=1", "model.strides=[2, 4]", "model.max_len=16",
                "model.local_hidden=32", "optim.epochs=1", "optim.batch_size=4", "run.device=cpu"]
    run([str(venv / "bin" / "refdense"), "train", "--config", "configs/synthetic.yaml", "--out", str(run_dir),
         "--quiet", *(arg for setting in settings for arg in ("--set", setting))], elsewhere, env)
    assert (run_dir / "checkpoints" / "best.pt").is_file() and (run_dir / "results.json").is_file()
    assert "No plots: matplotlib is not installed" in (run_dir / "results.md").read_text()
    assert not (run_dir / "plots").exists()

    assert files_under(venv) == installed_before, "something was written into the installed package"
    assert {path: sorted(os.listdir(path)) for path in ours} == ours_before
    assert not any(elsewhere.iterdir()), "the commands wrote into the current folder"


@pytest.mark.clone
@pytest.mark.course  # refdense.course.header reads notebooks with nbformat
def test_the_readmes_install_line_names_the_projects_repository():
    """A learner copies it as it is: the address must be the one the notebooks' setup cells install from."""
    from refdense.course.header import project_settings

    repository, _ = project_settings()
    assert f'pip install "refdense[course] @ git+{repository}"' in (REPO / "README.md").read_text(encoding="utf-8")
