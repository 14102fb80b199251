"""A synthetic dataset as a folder: :func:`generate` makes one, :func:`default_dataset` reuses the one
a preset, seed and dials give (generated once into the data folder, regenerated when another
generator version made it).

Here, and only here, the text dials' prompt embeddings are computed (:func:`text_embeddings`, with
``refdense.text``); the generator itself takes them as an argument.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from refdense.data.annotations import ANNOTATIONS_FILE, write_annotations
from refdense.data.features import FEATURES_FILE, write_features
from refdense.data.folder import dataset_directory
from refdense.data.info import INFO_FILE, read_info, write_info
from refdense.io import exclusive_lock
from refdense.paths import data_root
from refdense.synth.annotations import drawn_annotations, label_noise
from refdense.synth.features import check_embeddings, text_names, video_features
from refdense.synth.presets import PRESETS, Dials, Preset
from refdense.synth.world import build_world, dataset_info
from refdense.threads import torch_threads

TEXT_ENCODER = "minilm"  # the encoder of the prompt embeddings of ``text_alignment`` and ``text_prior``


def text_embeddings(preset: str | Preset, seed: int = 0, dials: Dials = Dials()) -> dict[str, np.ndarray]:
    """The prompt embeddings (float64, (D_text,) each) that the text dials of ``dials`` need, by
    :data:`TEXT_ENCODER` (``refdense.text``, the prompts CoLV uses), ``{name: embedding}`` for every
    name of :func:`refdense.synth.features.text_names`; empty when both text dials are off (no
    encoder is loaded)."""
    batches = text_names(dataset_info(preset, seed, dials), dials)
    return {
        name: row
        for names, rows in zip(batches, _prompt_embeddings(*batches))
        for name, row in zip(names, rows)
    }


@functools.lru_cache(maxsize=4)
def _prompt_embeddings(*name_lists: tuple[str, ...]) -> tuple[np.ndarray, ...]:
    """The :data:`TEXT_ENCODER` embeddings (float64, (N, D) per list, read-only) of the prompts CoLV
    uses for these names (``refdense.text.make_prompt``), one batch per list, computed on one torch
    thread whatever the caller's setting; kept for the next dataset."""
    if not name_lists:
        return ()

    from refdense.text import load_text_encoder, make_prompt

    encoder = load_text_encoder(TEXT_ENCODER)
    # The encoder's float sums depend on torch's thread count (1 and 2 threads differ in the last bits,
    # which the features then carry): one thread, so that a dataset's bytes are the same everywhere.
    with torch_threads(1):
        embedded = tuple(
            encoder.encode([make_prompt(n) for n in names]).double().numpy() for names in name_lists
        )
    for array in embedded:
        array.flags.writeable = False
    return embedded


def generate(
    preset: str | Preset,
    out: str | os.PathLike,
    seed: int = 0,
    overwrite: bool = False,
    dials: Dials = Dials(),
    embeddings: Mapping[str, np.ndarray] | None = None,
) -> Path:
    """Write the dataset of ``preset``, ``seed`` and ``dials`` into the folder ``out``; returns ``out``.

    ``embeddings``: with a text dial on, the prompt embedding of each name it needs
    (:func:`text_embeddings` computes them; any others may be given, and are then used as they
    are); a missing one raises ValueError before anything is written.

    The files are generated in a staging folder that replaces ``out`` at the end
    (:func:`refdense.data.folder.dataset_directory`), so an interrupted run leaves no dataset that
    loads, or the previous one. An existing non-empty ``out`` raises ``FileExistsError`` unless
    ``overwrite`` and it holds a dataset (never an arbitrary folder). Same preset, seed and dials
    give the same bytes; at the default dials, the bytes of the preset as before the dials existed.
    """
    from refdense.progress import track

    preset = PRESETS[preset] if isinstance(preset, str) else preset
    out = Path(out)
    world = build_world(preset, seed, dials)
    check_embeddings(world.info, world.dials, embeddings)
    with dataset_directory(out, overwrite=overwrite) as tmp:
        info, actual, lengths = drawn_annotations(preset, seed, dials)
        annotations = label_noise(preset, seed, dials.entangle, actual)
        with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
            items = video_features(preset, world, seed, actual, lengths, pool, embeddings)
            write_features(
                tmp / FEATURES_FILE,
                track(items, desc=f"synth {preset.name}", total=len(annotations), unit="videos"),
                dtype=preset.dtype,
            )
        write_annotations(tmp / ANNOTATIONS_FILE, annotations)
        write_info(tmp, info)
    return out


def dataset_folder(preset: str, seed: int = 0, dials: Dials | None = None) -> Path:
    """Where :func:`default_dataset` keeps the dataset of ``preset``, ``seed`` and ``dials`` (made or not):
    ``data_root() / "synthetic" / <preset>[-seed<seed>][<dials>]``."""
    dials = (dials or Dials()).for_preset(PRESETS[preset])
    return data_root() / "synthetic" / ((preset if seed == 0 else f"{preset}-seed{seed}") + dials.slug())


def default_dataset(preset: str = "default", seed: int = 0, dials: Dials | None = None) -> Path:
    """The folder ``refdense.paths.data_root() / "synthetic" / preset``, generated if missing.

    Generation is deterministic (same preset, seed and dials, same bytes) and atomic (a temporary
    folder renamed into place), so an interrupted call leaves nothing that loads. ``seed`` other
    than 0 goes to ``<preset>-seed<seed>``, and mechanism dials (:class:`Dials`) other than the
    defaults add their names and values (``default-seed3-coupling0.5``). A copy made by another
    version of the generator (its ``dataset.json`` "source" differs) is regenerated, and the
    replacement is announced. Processes asking for the same folder at once (parallel sweeps) take
    turns (a lock on ``<folder>.lock`` beside it): one generates, the others then read it.
    """
    dials = (dials or Dials()).for_preset(PRESETS[preset])
    folder = dataset_folder(preset, seed, dials)
    with exclusive_lock(folder.parent / f"{folder.name}.lock", f"dataset {folder}", wait=True):
        if (folder / INFO_FILE).is_file():
            expected, found = dataset_info(preset, seed, dials).source, read_info(folder).source
            if found == expected:
                return folder
            print(f"{folder}: made by another generator version ({found!r}); regenerating it ({expected!r})")
        embeddings = text_embeddings(preset, seed, dials)
        generate(preset, folder, seed=seed, overwrite=True, dials=dials, embeddings=embeddings)
    return folder
