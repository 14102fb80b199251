"""The world of a preset and seed (:class:`World`): its entities and motions (names, motion families),
the classes composed of them, the scripts that make them co-occur, the class weights, and what the
dials choose at the level of concepts (rare and held-out classes, rare entities, entity groups,
lookalikes). :func:`dataset_info` is its ``dataset.json``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from refdense.data.info import DatasetInfo, StreamInfo
from refdense.synth.presets import ENTANGLEMENT, GENERATOR_VERSION, PRESETS, Dials, Preset

_COLOURS = ("red", "blue", "green", "yellow", "purple", "orange", "white", "black")
_SHAPES = ("cube", "ball", "cone", "ring", "star", "disc", "box", "rod")
_REVERSE_PAIRS = (
    ("raise", "lower"),
    ("push", "pull"),
    ("open", "close"),
    ("fill", "empty"),
    ("stack", "unstack"),
    ("wrap", "unwrap"),
    ("lift", "drop"),
    ("insert", "remove"),
    ("fold", "unfold"),
    ("tie", "untie"),
    ("pack", "unpack"),
    ("load", "unload"),
    ("lock", "unlock"),
)
_TEMPO_PAIRS = (
    ("shake", "wave"),
    ("tap", "press"),
    ("spin", "turn"),
    ("bounce", "roll"),
    ("flick", "swing"),
    ("rub", "stroke"),
    ("twirl", "sway"),
    ("jiggle", "tilt"),
    ("pat", "squeeze"),
    ("drum", "nudge"),
    ("flutter", "glide"),
    ("chop", "slice"),
)
_SINGLE_MOTION = "circle"


@dataclass(frozen=True)
class _Script:
    parent: int
    children: tuple[int, ...]
    sequence: bool


@dataclass(frozen=True)
class World:
    """The concept structure of a preset and seed: names, decomposition, scripts, weights."""

    info: DatasetInfo
    family_of_motion: tuple[int, ...]  # motion -> family
    member_of_motion: tuple[int, ...]  # motion -> 0 | 1
    tempo_family: tuple[bool, ...]  # family -> tempo (True) or reverse (False)
    scripts: tuple[_Script, ...]
    class_cumulative: np.ndarray  # (C,) cumulative class probabilities (last is 1)
    script_cumulative: np.ndarray  # (S,) cumulative script probabilities (last is 1)
    dials: Dials
    rare: tuple[int, ...]  # the rare classes (``Dials.rare_share``), sorted
    held_out: tuple[int, ...]  # the held-out classes (``Dials.held_out``), sorted
    entity_group: tuple[int, ...]  # entity -> 0 | 1 (``Dials.entity_gate``; empty when off)
    rare_entities: tuple[int, ...]  # the rare entities (``Dials.rare_entities``), sorted
    lookalike: tuple[int, ...]  # entity -> its lookalike (``Dials.entangle``; empty when off)
    interaction: np.ndarray | None  # (E, M, r^2) entity-x-motion interaction codes (``Dials.entangle``)


def _motion_names(count: int) -> tuple[list[str], list[int], list[int], list[bool]]:
    names: list[str] = []
    family: list[int] = []
    member: list[int] = []
    tempo: list[bool] = []
    pairs = count // 2
    if pairs > len(_REVERSE_PAIRS) + len(_TEMPO_PAIRS):
        raise ValueError(
            f"motions: at most {2 * (len(_REVERSE_PAIRS) + len(_TEMPO_PAIRS)) + 1} supported, found {count}"
        )
    reverse_iter, tempo_iter = iter(_REVERSE_PAIRS), iter(_TEMPO_PAIRS)
    for f in range(pairs):
        # Alternate the kinds; fall back to the other list when one runs out.
        use_tempo = f % 2 == 1
        pair = next(tempo_iter, None) if use_tempo else next(reverse_iter, None)
        if pair is None:
            use_tempo = not use_tempo
            pair = next(tempo_iter) if use_tempo else next(reverse_iter)
        names.extend(pair)
        family.extend((f, f))
        member.extend((0, 1))
        tempo.append(use_tempo)
    if count % 2:
        names.append(_SINGLE_MOTION)
        family.append(pairs)
        member.append(0)
        tempo.append(False)
    return names, family, member, tempo


def build_world(preset: Preset, seed: int, dials: Dials = Dials()) -> World:
    dials = dials.for_preset(preset)
    rng = np.random.default_rng([seed, 0])
    if preset.entities > len(_COLOURS) * len(_SHAPES):
        raise ValueError(
            f"entities: at most {len(_COLOURS) * len(_SHAPES)} supported, found {preset.entities}"
        )
    entities = [f"{_COLOURS[i % 8]} {_SHAPES[(i % 8 + i // 8) % 8]}" for i in range(preset.entities)]
    motions, family, member, tempo = _motion_names(preset.motions)
    composites = preset.classes - preset.entity_only - preset.motion_only
    if composites < 0 or preset.entity_only > preset.entities or preset.motion_only > preset.motions:
        raise ValueError(f"preset {preset.name!r}: inconsistent class counts")
    # Composite (entity, motion) pairs: cover every entity and motion once; add the other member of
    # the family for about paired_share of them; use every entity and motion at least twice where
    # the class count allows; fill up with random unused pairs.
    pairs: list[tuple[int, int]] = []
    entity_cycle = rng.permutation(preset.entities)
    motion_cycle = rng.permutation(preset.motions)
    for k in range(max(preset.entities, preset.motions)):
        pair = (int(entity_cycle[k % preset.entities]), int(motion_cycle[k % preset.motions]))
        if pair not in pairs:
            pairs.append(pair)
    partner = {
        m: [o for o in range(preset.motions) if family[o] == family[m] and o != m]
        for m in range(preset.motions)
    }
    paired = 0
    for e, m in list(pairs):
        if paired >= preset.paired_share * composites or len(pairs) >= composites:
            break
        for o in partner[m]:
            if (e, o) not in pairs:
                pairs.append((e, o))
                paired += 2
    for part, count in ((0, preset.entities), (1, preset.motions)):
        for concept in rng.permutation(count):
            while sum(p[part] == concept for p in pairs) < 2 and len(pairs) < composites:
                other = int(rng.integers(preset.motions if part == 0 else preset.entities))
                pair = (int(concept), other) if part == 0 else (other, int(concept))
                if pair not in pairs:
                    pairs.append(pair)
    all_pairs = [(e, m) for e in range(preset.entities) for m in range(preset.motions) if (e, m) not in pairs]
    extra = rng.permutation(len(all_pairs))[: max(0, composites - len(pairs))]
    pairs.extend(all_pairs[i] for i in extra)
    pairs = pairs[:composites]
    if len(pairs) < composites:
        raise ValueError(
            f"preset {preset.name!r}: {composites} composite classes but only {len(pairs)} pairs"
        )
    decomposition: list[tuple[int | None, int | None]] = [(e, m) for e, m in pairs]
    # Single-part classes go to the least used concepts (ties broken at random).
    for part, count, number in (
        (0, preset.entities, preset.entity_only),
        (1, preset.motions, preset.motion_only),
    ):
        uses = np.bincount([p[part] for p in pairs], minlength=count) + rng.random(count)
        for concept in np.argsort(uses, kind="stable")[:number]:
            decomposition.append((int(concept), None) if part == 0 else (None, int(concept)))
    order = rng.permutation(len(decomposition))
    decomposition = [decomposition[i] for i in order]
    classes = [_class_name(entities, motions, e, m) for e, m in decomposition]
    info = DatasetInfo(
        name=preset.name,
        classes=tuple(classes),
        entities=tuple(entities),
        motions=tuple(motions),
        decomposition=tuple(decomposition),
        streams={
            "video": StreamInfo(preset.video_dim, "synthetic-motion"),
            "image": StreamInfo(preset.image_dim, "synthetic-entity"),
        },
        segment_frames=preset.segment_frames,
        fps=preset.fps,
        boundary="strict",
        # "refdense/synth.py" names the generator as it was when version 2 was set (the module is
        # the package refdense/synth/ now): dataset.json keeps its bytes, and cached copies stay valid.
        source=(
            f"refdense synth --preset {preset.name} --seed {seed}{dials.arguments()} "
            f"(generative model: refdense/synth.py, generator version {GENERATOR_VERSION})"
        ),
    )
    rare = _sparse_classes(decomposition, dials.rare_share, [seed, 7], (), "rare_share")
    held_out = _sparse_classes(decomposition, dials.held_out, [seed, 8], rare, "held_out")
    rare_entities = (
        _rare_entities(decomposition, preset.entities, dials.rare_entities, rare + held_out, seed)
        if dials.rare_entities
        else ()
    )
    if dials.changed():
        record: dict[str, Any] = {
            "coupling": float(dials.coupling),
            "rare_share": float(dials.rare_share),
            "rare_cap": dials.rare_cap,
            "text_alignment": float(dials.text_alignment),
            "train_videos": dials.train_videos or preset.training,
            "rare_classes": list(rare),
        }
        if dials.held_out or dials.held_out_k:  # the record of the older dials keeps its bytes
            record |= {"held_out": float(dials.held_out), "held_out_k": dials.held_out_k}
            record["held_out_classes"] = list(held_out)
        if dials.entangle:
            record["entangle"] = float(dials.entangle)
        if dials.text_prior:
            record["text_prior"] = float(dials.text_prior)
        if dials.rare_entities:
            record["rare_entities"] = list(rare_entities)
        info = replace(info, dials=record)
    # Scripts: one per entity with its classes (entity-only class as parent when there is one);
    # motion-only classes are spread over the scripts as children (with the entity gate, they are
    # not: a motion that always comes with one entity's script would name the entity's group).
    members_of_script: list[tuple[int, list[int]]] = []  # (parent, children)
    motion_only = [c for c, (e, m) in enumerate(decomposition) if e is None]
    for e in range(preset.entities):
        members = [c for c, (ce, _) in enumerate(decomposition) if ce == e]
        members.sort(key=lambda c: decomposition[c][1] is not None)  # entity-only first
        if not members:
            continue
        members_of_script.append((members[0], members[1:]))
    for k, c in enumerate(motion_only if not dials.entity_gate else ()):  # gated: singles only
        members_of_script[k % len(members_of_script)][1].append(c)
    sequence = rng.random(len(members_of_script)) < preset.sequence_share
    scripts = tuple(_Script(p, tuple(ch), bool(s)) for (p, ch), s in zip(members_of_script, sequence))
    ranks = rng.permutation(len(classes)) + 1
    class_weights = 1.0 / ranks.astype(np.float64) ** preset.zipf
    class_weights /= class_weights.sum()
    groups = _entity_groups(decomposition, preset.entities, seed) if dials.entity_gate else ()
    if groups:
        class_weights = _balance_groups(decomposition, class_weights, groups, family)
        gate: dict[str, Any] = {"entity_gate": 1, "entity_groups": list(groups)}
        info = replace(info, dials={**(info.dials or {}), **gate})
    script_weights = np.array(
        [class_weights[s.parent] + class_weights[list(s.children)].sum() for s in scripts]
    )
    script_weights /= script_weights.sum()
    lookalike, interaction = (
        _entangled_world(entities, preset.motions, seed) if dials.entangle else ((), None)
    )
    return World(
        info,
        tuple(family),
        tuple(member),
        tuple(tempo),
        scripts,
        np.cumsum(class_weights),
        np.cumsum(script_weights),
        dials,
        rare,
        held_out,
        groups,
        rare_entities,
        lookalike,
        interaction,
    )


def _rare_entities(
    decomposition: list[tuple[int | None, int | None]],
    entities: int,
    wanted: int,
    taken: tuple[int, ...],
    seed: int,
) -> tuple[int, ...]:
    """The ``wanted`` rare entities of ``Dials.rare_entities``, drawn at random (generator ``[seed,
    15]``) among those with no class in ``taken`` (the rare and held-out classes), such that the motion
    of each of their classes keeps a class outside ``taken`` whose entity is not a rare one."""
    free = [
        e
        for e in range(entities)
        if not any(ce == e for c, (ce, _) in enumerate(decomposition) if c in taken)
    ]
    chosen: list[int] = []
    for e in np.random.default_rng([seed, 15]).permutation(free):
        trial = {*chosen, int(e)}
        motions = {m for ce, m in decomposition if ce in trial and m is not None}
        if all(
            any(k not in taken and pm == m and pe not in trial for k, (pe, pm) in enumerate(decomposition))
            for m in motions
        ):
            chosen.append(int(e))
            if len(chosen) == wanted:
                return tuple(sorted(chosen))
    raise ValueError(
        f"dial rare_entities: {wanted} rare entities asked for, but only {len(chosen)} of {entities} can be "
        "while the motion of each of their classes keeps a class on another entity"
    )


def _entangled_world(entities: Sequence[str], motions: int, seed: int) -> tuple[tuple[int, ...], np.ndarray]:
    """The concept-level draws of ``Dials.entangle`` (generator ``[seed, 14]``): each entity's
    *lookalike* (an entity sharing its colour or shape word, else any other), and the interaction
    codes (E, M, r^2) float32, ``r`` = ``Entanglement.interaction_rank``: the outer product of a
    random entity code and a random motion code (each of expected unit norm)."""
    rng = np.random.default_rng([seed, 14])
    words = [set(name.split()) for name in entities]
    lookalike = []
    for e, own in enumerate(words):
        others = [o for o in range(len(entities)) if o != e]
        alike = [o for o in others if own & words[o]] or others or [e]
        lookalike.append(int(alike[rng.integers(len(alike))]))
    r = ENTANGLEMENT.interaction_rank
    entity_code = rng.standard_normal((len(entities), r)) / np.sqrt(r)
    motion_code = rng.standard_normal((motions, r)) / np.sqrt(r)
    codes = np.einsum("ei,mj->emij", entity_code, motion_code).reshape(len(entities), motions, r * r)
    return tuple(lookalike), codes.astype(np.float32)


def _entity_groups(
    decomposition: list[tuple[int | None, int | None]], entities: int, seed: int
) -> tuple[int, ...]:
    """The two entity groups of ``Dials.entity_gate`` (entity -> 0 | 1, sizes differing by at most 1).

    A random split (generator ``[seed, 9]``), then swaps of one entity of each group while they
    lower ``sum_m (n_0(m) - n_1(m)) ** 2``, ``n_g(m)`` the number of motion ``m``'s composite classes
    on group ``g``, so that each motion acts on both groups where it can.
    """
    group = np.zeros(entities, dtype=int)
    group[np.random.default_rng([seed, 9]).permutation(entities)[: entities // 2]] = 1
    composite = [(e, m) for e, m in decomposition if e is not None and m is not None]
    motions = 1 + max(m for _, m in composite)

    def imbalance(g: np.ndarray) -> int:
        d = np.zeros(motions, dtype=int)
        for e, m in composite:
            d[m] += 1 - 2 * g[e]
        return int(np.sum(d**2))

    best, improved = imbalance(group), True
    while improved:
        improved = False
        for a, b in ((a, b) for a in np.flatnonzero(group == 0) for b in np.flatnonzero(group == 1)):
            trial = group.copy()
            trial[a], trial[b] = 1, 0
            if (cost := imbalance(trial)) < best:
                group, best, improved = trial, cost, True
                break
    return tuple(int(g) for g in group)


def _balance_groups(
    decomposition: list[tuple[int | None, int | None]],
    weights: np.ndarray,
    groups: tuple[int, ...],
    family: Sequence[int],
) -> np.ndarray:
    """Class weights (C,) rescaled so that, within each motion family, the composite classes of each
    (member motion, entity group) cell weigh the same (the family's total over its cells), and the
    entity-only classes weigh the same on either group. A family with an empty cell is left as it
    is. The weights drive the scripts, not each class's frequency alone (a parent comes with every
    occurrence of its script), so the balance of the frequencies is only approximate."""
    weights = weights.copy()
    cells: dict[int, dict[tuple[int, int], list[int]]] = {}  # family (-1: entity only) -> cells
    for c, (e, m) in enumerate(decomposition):
        if e is not None:
            key = (-1, -1) if m is None else (family[m], m)
            cells.setdefault(key[0], {}).setdefault((key[1], groups[e]), []).append(c)
    for f, members in cells.items():
        if len(members) < 2 * max(1, sum(1 for m in range(len(family)) if family[m] == f)):
            continue
        total = sum(weights[c] for part in members.values() for c in part)
        for part in members.values():
            weights[part] *= total / len(members) / weights[part].sum()
    return weights


def _class_name(entities: Sequence[str], motions: Sequence[str], e: int | None, m: int | None) -> str:
    """A class's name from its entity and motion ids: "<motion> the <entity>", "look at the <entity>" or "<motion>"."""
    if e is not None and m is not None:
        return f"{motions[m]} the {entities[e]}"
    if e is not None:
        return f"look at the {entities[e]}"
    if m is not None:
        return motions[m]
    raise ValueError("a synthetic class has an entity, a motion or both; found neither")


def _sparse_classes(
    decomposition: list[tuple[int | None, int | None]],
    share: float,
    stream: list[int],
    taken: tuple[int, ...],
    dial: str,
) -> tuple[int, ...]:
    """``round(share * composite classes)`` composite classes outside ``taken``, drawn at random
    (``np.random.default_rng(stream)``), such that the entity and the motion of each keep at least
    one class outside ``taken`` and the drawn ones: the rare classes (``Dials.rare_share``, nothing
    taken) and the held-out ones (``Dials.held_out``, the rare ones taken)."""
    composite = [c for c, (e, m) in enumerate(decomposition) if e is not None and m is not None]
    wanted = round(share * len(composite))
    if wanted == 0:
        return ()
    chosen: list[int] = []
    for c in np.random.default_rng(stream).permutation([c for c in composite if c not in taken]):
        trial = set(taken) | set(chosen) | {int(c)}
        if all(
            any(
                k not in trial and pair[part] == decomposition[r][part]
                for k, pair in enumerate(decomposition)
            )
            for r in trial
            for part in (0, 1)
        ):
            chosen.append(int(c))
            if len(chosen) == wanted:
                return tuple(sorted(chosen))
    raise ValueError(
        f"dial {dial} {share:g}: {wanted} of {len(composite)} composite classes asked for, but only "
        f"{len(chosen)} can be while the entity and motion of each keep a class that is neither rare "
        f"nor held out; choose a smaller {dial}"
    )


def dataset_info(preset: str | Preset, seed: int = 0, dials: Dials = Dials()) -> DatasetInfo:
    """The :class:`DatasetInfo` (names, decomposition, streams) of a preset and seed, without generating data."""
    return build_world(PRESETS[preset] if isinstance(preset, str) else preset, seed, dials).info
