"""The annotations of a synthetic dataset: every video's duration and action instances, drawn from
the scripts and class weights of its :class:`~refdense.synth.world.World`, the splits (training,
testing, ``Dials.train_videos``), the caps of the rare, held-out and rare-entity dials, and the
label noise of ``Dials.entangle``.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np

from refdense.data.annotations import Annotations, VideoAnnotation
from refdense.data.info import DatasetInfo
from refdense.synth.presets import ENTANGLEMENT, PRESETS, RARE_ENTITY_CAP, Dials, Preset
from refdense.synth.world import World, build_world


def lognormal(rng: np.random.Generator, median: float, sigma: float) -> float:
    return float(median * np.exp(sigma * rng.standard_normal()))


def _draw(rng: np.random.Generator, cumulative: np.ndarray) -> int:
    """An index drawn with the cumulative probabilities ``cumulative``; faster than ``rng.choice`` per call."""
    return min(int(np.searchsorted(cumulative, rng.random(), side="right")), cumulative.size - 1)


def _video_actions(
    rng: np.random.Generator, preset: Preset, world: World, duration: float, scale: float
) -> list:
    """The ``(class, start, end)`` instances of one video (before the end-overrun dirt)."""
    if rng.random() < preset.empty_share:
        return []
    actions = []
    for _ in range(max(1, rng.poisson(preset.script_rate * scale * duration))):
        script = world.scripts[_draw(rng, world.script_cumulative)]
        length = min(lognormal(rng, preset.parent_median, preset.parent_sigma), duration)
        start = rng.uniform(0.0, duration - length)
        actions.append((script.parent, start, start + length))
        children = [c for c in script.children if rng.random() < preset.child_probability]
        if not children:
            continue
        if script.sequence:
            children = [children[i] for i in rng.permutation(len(children))]
            cuts = start + length * np.cumsum(
                np.concatenate([[0.0], rng.dirichlet(np.full(len(children), 2.0))])
            )
            actions.extend((c, cuts[i], cuts[i + 1]) for i, c in enumerate(children))
        else:
            for c in children:
                piece = min(lognormal(rng, preset.child_median, preset.child_sigma), length)
                offset = start + rng.random() * (length - piece)
                actions.append((c, offset, offset + piece))
    for _ in range(rng.poisson(preset.single_rate * scale * duration)):
        c = _draw(rng, world.class_cumulative)
        length = min(lognormal(rng, preset.child_median, preset.child_sigma), duration)
        start = rng.uniform(0.0, duration - length)
        actions.append((c, start, start + length))
    actions.sort(key=lambda a: (a[1], a[0]))
    dirty = []
    for c, start, end in actions:
        if end >= duration - 1e-6 and rng.random() < preset.overrun_share:
            end = duration + rng.uniform(0.0, preset.overrun_max)
        dirty.append((int(c), round(float(start), 2), round(float(end), 2)))
    return dirty


def num_segments(preset: Preset, duration: float) -> int:
    """T of a video: one segment per ``segment_frames`` frames at ``fps``, at least one."""
    return max(1, int(duration * preset.segments_per_second))


def generate_annotations(
    preset: str | Preset, seed: int = 0, dials: Dials = Dials()
) -> tuple[DatasetInfo, Annotations, dict[str, int]]:
    """The info, annotations and ``{video_id: T}`` of a preset, without features (fast).

    :func:`refdense.synth.cache.generate` writes exactly these, so statistics can be checked on them alone. Video
    ``v<i>`` is the i-th video drawn: the preset's training videos, its test videos, then the extra
    training videos of ``dials.train_videos``; with fewer training videos than the preset's, the
    later ones are drawn and left out, so the test split is the same for every ``train_videos``.
    ``dials.rare_share`` then caps the training instances of the rare classes, ``dials.held_out``
    those of the held-out ones and ``dials.rare_entities`` those of the rare entities (the evidence
    follows these); ``dials.entangle`` then jitters and drops labels (the evidence does not follow).
    """
    preset = PRESETS[preset] if isinstance(preset, str) else preset
    info, actual, lengths = drawn_annotations(preset, seed, dials)
    return info, label_noise(preset, seed, dials.entangle, actual), lengths


def drawn_annotations(
    preset: Preset, seed: int, dials: Dials
) -> tuple[DatasetInfo, Annotations, dict[str, int]]:
    """:func:`generate_annotations` before ``Dials.entangle``'s label noise: the instances the evidence shows."""
    world = build_world(preset, seed, dials)
    training = world.dials.train_videos or preset.training
    drawn = preset.training + preset.testing + max(0, training - preset.training)
    rng = np.random.default_rng([seed, 1])
    annotations: Annotations = {}
    lengths: dict[str, int] = {}
    width = len(str(drawn))
    for i in range(drawn):
        subset = "testing" if preset.training <= i < preset.training + preset.testing else "training"
        scale = 1.0 if subset == "training" else preset.test_rate_scale
        duration = float(
            np.clip(
                lognormal(rng, preset.duration_median, preset.duration_sigma),
                preset.duration_min,
                preset.duration_max,
            )
        )
        duration = round(duration, 2)
        actions = tuple(_video_actions(rng, preset, world, duration, scale))
        if training <= i < preset.training:
            continue
        video_id = f"v{i:0{width}d}"
        annotations[video_id] = VideoAnnotation(subset, duration, actions)
        lengths[video_id] = num_segments(preset, duration)
    # Capped groups of instances: a rare or held-out class, or all the classes of a rare entity.
    cap: dict[Any, int] = dict.fromkeys(world.rare, world.dials.rare_cap) | dict.fromkeys(
        world.held_out, world.dials.held_out_k
    )
    group = {c: c for c in cap}
    for c, (e, _) in enumerate(world.info.decomposition):
        if e in world.rare_entities:
            group[c] = cap_key = ("entity", e)
            cap[cap_key] = RARE_ENTITY_CAP
    if cap:
        kept = dict.fromkeys(cap, 0)
        for video_id, entry in annotations.items():
            if entry.subset != "training":
                continue
            capped = []
            for action in entry.actions:
                key = group.get(action[0])
                if key is not None:
                    if kept[key] == cap[key]:
                        continue
                    kept[key] += 1
                capped.append(action)
            annotations[video_id] = replace(entry, actions=tuple(capped))
    return world.info, annotations, lengths


def label_noise(preset: Preset, seed: int, entangle: float, annotations: Annotations) -> Annotations:
    """The annotations of ``Dials.entangle``: each instance left out with probability
    ``entangle * Entanglement.missing``, else its start and end shifted by independent normal
    amounts of ``entangle * Entanglement.jitter`` segments (the start kept >= 0, the end kept within
    the video unless it was after it already; a shift that leaves under one segment is not made).
    Every video draws from its own generator ``[seed, 13, index]``; at 0 the annotations as they are."""
    if not entangle:
        return annotations
    segment = 1.0 / preset.segments_per_second
    missing, jitter = entangle * ENTANGLEMENT.missing, entangle * ENTANGLEMENT.jitter * segment
    noisy: Annotations = {}
    for video_id, entry in annotations.items():
        rng = np.random.default_rng([seed, 13, int(video_id[1:])])
        actions = []
        for c, start, end in entry.actions:
            drop, (shift_start, shift_end) = rng.random() < missing, rng.normal(0.0, jitter, 2)
            if drop:
                continue
            moved = max(0.0, start + shift_start), min(end + shift_end, max(end, entry.duration))
            if moved[1] - moved[0] >= segment:
                start, end = round(float(moved[0]), 2), round(float(moved[1]), 2)
            actions.append((c, start, end))
        actions.sort(key=lambda a: (a[1], a[0]))
        noisy[video_id] = replace(entry, actions=tuple(actions))
    return noisy
