"""Shared fixtures for the whole test suite.

- ``tiny_dataset`` (session): a folder holding the synthetic ``tiny`` preset (seed 0), generated
  once per test session into a temporary folder: 40 videos (32 training, 8 testing), 12 classes,
  4 entities, 4 motions, 32-d video and image streams, about 30-60 segments per video. Treat it
  as read-only; copy it (``shutil.copytree``) before changing anything.
- ``writable_tiny_dataset`` (module): a private copy of ``tiny`` for tests that write into the
  dataset folder (training caches its text bank there).
- ``one_torch_thread``: torch on one thread for the test (two pytest workers share two cores);
  modules use it with ``pytestmark = pytest.mark.usefixtures("one_torch_thread")``.
- ``make_dataset``: a factory writing a small hand-made dataset folder (see its docstring), for
  tests that need exact labels or broken files.

Nothing in the tests may download: ``HF_HUB_OFFLINE`` is set here for every test.

Markers (registered in pyproject.toml): the files of :data:`MARKED_FILES` get theirs here (and are
not imported when ``-m`` deselects them: a course file imports the course extra at its top); single
tests elsewhere carry ``@pytest.mark.slow`` / ``course`` / ``perf`` themselves
(``tests/test_markers.py`` checks that every test needing the course extra is marked).
"""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("MPLBACKEND", "Agg")

from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import pytest  # noqa: E402

# Whole test files and their marker.
MARKED_FILES = {
    "course": ("test_course.py", "test_course_book.py", "test_course_header.py", "test_course_full_run.py", "test_course_results.py",
               "test_course_solutions_late.py", "test_course_storage.py", "test_data_timeline.py",
               "test_models_viz.py", "test_notebook_references.py", "test_notebooks_clean.py",
               "test_viz_pipeline.py", "test_widgets.py", "test_widgets_evaluation.py"),
    "slow": ("test_install.py", "test_train_ddp.py", "test_experiment_results.py"),
}


def file_markers(path: Path) -> set[str]:
    """The markers :data:`MARKED_FILES` gives the test file ``path``."""
    return {marker for marker, files in MARKED_FILES.items() if path.name in files}


def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> bool | None:
    """A file whose marker ``-m`` deselects is not imported at all: a course file imports the course
    extra at its top, which ``-m "not course"`` must not need (it is deselected, not skipped)."""
    markers = file_markers(collection_path)
    if not markers or not config.option.markexpr:
        return None
    from _pytest.mark.expression import Expression  # how pytest itself reads -m

    selected = Expression.compile(config.option.markexpr).evaluate(lambda name, **_: name in markers)
    return True if not selected else None


def pytest_collection_modifyitems(items):
    for item in items:
        for marker in file_markers(Path(str(item.fspath))):
            item.add_marker(getattr(pytest.mark, marker))


@pytest.fixture(scope="session")
def tiny_dataset(tmp_path_factory):
    """Path of the synthetic ``tiny`` dataset (seed 0), generated once per session."""
    from refdense import synth

    return synth.generate("tiny", tmp_path_factory.mktemp("synthetic") / "tiny", seed=0)


@pytest.fixture(scope="module")
def writable_tiny_dataset(tiny_dataset, tmp_path_factory):
    """A private copy of the ``tiny`` preset that a test module may write into."""
    import shutil

    return shutil.copytree(tiny_dataset, tmp_path_factory.mktemp("writable") / "tiny")


@pytest.fixture
def one_torch_thread():
    """Run the test with one torch thread, then restore the previous number."""
    from refdense.threads import torch_threads

    with torch_threads(1):
        yield


@pytest.fixture
def make_dataset(tmp_path):
    """Factory ``make_dataset(annotations=None, lengths=None, **info_changes) -> Path``.

    Writes a dataset with 3 classes (0: entity 0 + motion 0, 1: entity 0 + motion 1,
    2: motion 1 only), 4-d video and 3-d image streams, into a fresh folder under ``tmp_path``.
    ``annotations`` is the raw super-events dict (default: two training videos and one testing
    video of 10 s with 10 segments each); ``lengths`` maps video ids to T (default 10); features
    are seeded random float32 values.
    """
    from refdense.data import DatasetInfo, StreamInfo, parse_annotations, write_annotations, write_features, write_info

    counter = iter(range(1000))

    def make(annotations=None, lengths=None, **info_changes):
        root = tmp_path / f"dataset{next(counter)}"
        fields = dict(
            name="handmade",
            classes=("a", "b", "c"),
            entities=("cup",),
            motions=("lift", "drop"),
            decomposition=((0, 0), (0, 1), (None, 1)),
            streams={"video": StreamInfo(4, "test-video"), "image": StreamInfo(3, "test-image")},
            segment_frames=8,
            fps=8.0,
            boundary="strict",
            source="tests/conftest.py",
        )
        fields.update(info_changes)
        info = DatasetInfo(**fields)
        if annotations is None:
            annotations = {
                "train1": {"subset": "training", "duration": 10.0, "actions": [[0, 1.5, 4.5], [2, 3.0, 8.0]]},
                "train2": {"subset": "training", "duration": 10.0, "actions": [[1, 0.0, 10.0]]},
                "test1": {"subset": "testing", "duration": 10.0, "actions": [[0, 2.0, 5.0], [1, 4.0, 6.0]]},
            }
        lengths = lengths or {}
        rng = np.random.default_rng(0)
        write_info(root, info)
        write_annotations(root / "annotations.json", parse_annotations(annotations))
        write_features(
            root / "features.h5",
            (
                (video_id, rng.standard_normal((lengths.get(video_id, 10), 4)), rng.standard_normal((lengths.get(video_id, 10), 3)))
                for video_id in annotations
            ),
            dtype="float32",
        )
        return root

    return make
