"""A synthetic dense-action benchmark whose difficulty is the one RefDense is built for.

The generative model (also in ``data/README.md``), designed before any model was run on it:

Concepts. There are ``E`` entities (objects, named like "red cube") and ``M`` motions. Motions come
in families of two that share the same three *phase* prototypes in the video feature space:

- a *reverse* family ("raise" / "lower"): the first member sweeps the phases 0 -> 1 -> 2 once over
  the instance, the second sweeps 2 -> 1 -> 0; at any duration, every segment of either is drawn
  from the same distribution, only the order over several segments tells them apart;
- a *tempo* family ("shake" / "wave"): both cycle through the phases, one phase per segment for
  the first member, one phase per ``slow_period`` segments for the second; again the same
  per-segment distribution, told apart only by the pattern over neighbouring segments.

An odd motion count leaves one family with a single member and its own prototypes.

Actions. Each class is a composition ``(entity, motion)`` ("raise the red cube"), or has only one
part ("look at red cube": entity only; "shake": motion only). Every entity and every motion serve
several classes, and about ``paired_share`` of the composite classes come as both members of a
family with the same entity, so a class can't be told from one stream, nor from one segment.

Streams. Per segment ``t`` (features are per-video background + the evidence below + Gaussian
noise of std ``noise``):

- image ("CLIP"): the prototype of every entity in view (entities of active actions, plus
  *distractor* entities that are in view without being acted on), and a weak trace
  (``family_trace``) of the motion family of active actions, never of its member (a still frame
  shows a pose, not its direction);
- video ("I3D"): the phase prototype of every active motion at its current phase, *distractor*
  motion fragments (one or two segments of a random phase, no action), and a weak trace
  (``entity_trace``) of the entities being acted on (never of distractor entities, so entity-only
  classes are separable from an object merely lying in view).

Evidence of simultaneous actions adds up. Amplitudes vary per instance.

Co-occurrence. Classes are grouped into *scripts*, one per entity (its classes), with the
motion-only classes spread over them. A script occurrence places a long *parent* instance and
each child with probability ``child_probability``: inside the parent at random (nested scripts)
or one after the other, tiling the parent (sequence scripts). Occurrences follow a Poisson process
in time; single instances of any class are added on top. Class frequency is Zipf-like: class
weights ``1 / rank ** zipf`` in a random rank order drive both the scripts and the singles.

Dirt, as in real files: a share of videos have no action, and a share of the instances that reach
the end of the video end up to ``overrun_max`` seconds after it (the loader clips and reports).

Presets: ``tiny`` (tests, notebooks: ~1 s), ``default`` (the main job: a CPU trains on it in
minutes), ``charades-like`` and ``multithumos-like`` (the real sizes, label statistics within 15%
of docs/METHOD.md, section 6, 1024-d streams, float16). Same preset and seed give the same bytes.

Mechanism dials (:class:`Dials`, ``data/README.md``): ``coupling`` (a motion looks different on
each entity), ``rare_share`` / ``rare_cap`` (compositions seen a few times in training),
``text_alignment`` (prototypes that share the structure of the prompts' text embeddings),
``train_videos``, ``held_out`` / ``held_out_k`` (compositions never or hardly seen in training),
``entity_gate`` (a motion's phase order set by an entity group the video stream cannot see),
``entangle`` (streams that mix entity, motion and a dominant scene, noisy labels) and ``text_prior``
(entity prototypes from attribute-structured prompt embeddings, a few rare entities). Each is off
by default and, when off, changes no byte of a preset.

Generation. Each video draws from generators of its own, seeded by the seed and its index (the
number in its id): one for its evidence and background, one for its noise. Features are made in
batches of videos: the noise (most of the work) is drawn by a thread per core while the evidence
is written, then one matrix product per stream turns the batch's evidence into features, which
go to ``features.h5`` batch by batch (charades-like: about 70 s of CPU shared by the cores, 1 GB
of memory). The values depend neither on the batch size nor on the threads. Since this batched version, a seed
gives other feature bytes than it did with earlier versions of this module (the annotations are
unchanged); the model and its statistics are the same.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from refdense.data.annotations import ANNOTATIONS_FILE, Annotations, VideoAnnotation, write_annotations
from refdense.data.features import FEATURES_FILE, write_features
from refdense.data.folder import dataset_directory
from refdense.data.info import INFO_FILE, DatasetInfo, StreamInfo, read_info, write_info
from refdense.data.labels import clean_instances, instance_span, segment_times
from refdense.io import exclusive_lock
from refdense.paths import data_root
from refdense.schema import check_fields, require

PHASES = 3  # phase prototypes per motion family
BATCH_SEGMENTS = 16384  # segments made together (buffers of about BATCH_SEGMENTS * (Dv + Di) * 12 bytes)

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
class Preset:
    """The knobs of the generator (module docstring). Rates are per second of video."""

    name: str
    training: int
    testing: int
    classes: int
    entities: int
    motions: int
    entity_only: int
    motion_only: int
    video_dim: int
    image_dim: int
    fps: float = 24.0
    segment_frames: int = 8
    duration_median: float = 30.0
    duration_sigma: float = 0.25
    duration_min: float = 10.0
    duration_max: float = 60.0
    script_rate: float = 0.05
    single_rate: float = 0.01
    child_probability: float = 0.6
    parent_median: float = 15.0
    parent_sigma: float = 0.5
    child_median: float = 6.0
    child_sigma: float = 0.5
    sequence_share: float = 0.5
    paired_share: float = 0.5
    zipf: float = 0.6
    test_rate_scale: float = 1.0
    empty_share: float = 0.02
    overrun_share: float = 0.3
    overrun_max: float = 1.5
    noise: float = 1.0
    background: float = 0.5
    entity_trace: float = 0.3
    family_trace: float = 0.3
    distractor_rate: float = 0.03
    fragment_rate: float = 0.1
    slow_period: int = 3
    dtype: str = "float16"

    @property
    def segments_per_second(self) -> float:
        return self.fps / self.segment_frames


# Bumped whenever a change of this module changes the bytes a preset and seed give; recorded in
# dataset.json's "source" so that :func:`default_dataset` regenerates stale copies.
GENERATOR_VERSION = 2

PRESETS: dict[str, Preset] = {
    preset.name: preset
    for preset in (
        Preset(
            "tiny",
            training=32,
            testing=8,
            classes=12,
            entities=4,
            motions=4,
            entity_only=1,
            motion_only=1,
            video_dim=32,
            image_dim=32,
            duration_median=14.0,
            duration_sigma=0.25,
            duration_min=8.0,
            duration_max=22.0,
            script_rate=0.08,
            single_rate=0.02,
            parent_median=8.0,
            child_median=3.5,
            zipf=0.5,
        ),
        Preset(
            "default",
            training=240,
            testing=60,
            classes=32,
            entities=10,
            motions=10,
            entity_only=2,
            motion_only=2,
            video_dim=64,
            image_dim=64,
            duration_median=43.0,
            duration_sigma=0.25,
            duration_min=27.0,
            duration_max=60.0,
            script_rate=0.05,
            single_rate=0.02,
            parent_median=14.0,
            child_median=5.0,
            zipf=0.6,
        ),
        Preset(
            "charades-like",
            training=7985,
            testing=1863,
            classes=157,
            entities=38,
            motions=33,
            entity_only=8,
            motion_only=6,
            video_dim=1024,
            image_dim=1024,
            duration_median=30.5,
            duration_sigma=0.3,
            duration_min=8.0,
            duration_max=60.0,
            script_rate=0.063,
            single_rate=0.015,
            child_probability=0.55,
            parent_median=20.0,
            parent_sigma=0.5,
            child_median=7.5,
            child_sigma=0.35,
            zipf=0.85,
            test_rate_scale=1.45,
            empty_share=0.023,
        ),
        Preset(
            "multithumos-like",
            training=200,
            testing=213,
            classes=65,
            entities=28,
            motions=50,
            entity_only=4,
            motion_only=8,
            video_dim=1024,
            image_dim=1024,
            fps=30.0,
            paired_share=0.0,
            duration_median=151.0,
            duration_sigma=0.8,
            duration_min=20.0,
            duration_max=1500.0,
            script_rate=0.16,
            single_rate=0.08,
            child_probability=0.9,
            parent_median=3.5,
            parent_sigma=1.0,
            child_median=1.3,
            child_sigma=0.8,
            zipf=1.2,
            test_rate_scale=1.07,
            empty_share=0.0,
            overrun_share=0.05,
            overrun_max=30.0,
        ),
    )
}


TEXT_ENCODER = "minilm"  # the encoder of the prompt embeddings of ``text_alignment`` and ``text_prior``
RARE_ENTITY_CAP = 3  # ``Dials.rare_entities``: training (+ validation) instances kept per rare entity


@dataclass(frozen=True)
class Entanglement:
    """The constants of ``Dials.entangle``: their values at ``entangle`` 1, each effect scaled by the dial.

    Calibrated once on ``default``, seed 0 (docs/EXPERIMENTS.md, "entangle calibration"), then frozen.
    """

    subspace_share: float = 0.25  # the class signal's subspace: this share of a stream's dimensions
    scene_rank: int = 3  # rank of a video's scene (its directions in the subspace: the video's own)
    scene_scale: float = 3.0  # its per-entry standard deviation (a prototype's entries have 1)
    scene_correlation: float = 0.9  # its AR(1) coefficient from one segment to the next
    cross: float = 0.5  # scale of the other stream's evidence copied into a stream
    interaction_rank: int = 3  # entity and motion codes of this size; their outer product is the interaction
    interaction: float = 0.5  # scale of the entity-x-motion interaction evidence
    jitter: float = 1.5  # standard deviation of a label boundary's shift, in segments
    missing: float = 0.15  # share of the instances left out of the annotations
    blur: float = 0.5  # share of an entity's image evidence moved to its lookalike where several are in view


ENTANGLEMENT = Entanglement()


@dataclass(frozen=True)
class Dials:
    """The mechanism dials (``data/README.md``, "Mechanism dials"); at their defaults the preset is unchanged.

    Each turns on one mechanism the paper gives as the reason for one of its components:

    - ``coupling`` in [0, 1]: how much a motion's video-stream appearance depends on the entity it
      acts on. Each phase prototype of a composite class's motion on entity ``e`` is
      ``sqrt(1 - c) * shared + sqrt(c) * own[e]``: 0 gives one prototype per motion phase, 1 a
      different (independent) variant per entity, and two entities' versions have correlation
      ``1 - c`` in between. Motion-only classes and distractor fragments keep the shared one.
    - ``rare_share`` in [0, 1) and ``rare_cap``: ``round(rare_share * composite classes)`` composite
      classes are *rare*: their training instances are capped at ``rare_cap`` (the first ones in
      video order are kept), while their entity and their motion each keep at least one other,
      uncapped class. The test split is left as it is. The rare class ids are recorded.
    - ``text_alignment`` in [0, 1]: the entity prototypes of the image stream and the phase
      prototypes of the video stream become ``sqrt(a) * W e + sqrt(1 - a) * random``, with ``e``
      the prompt embedding of the concept by :data:`TEXT_ENCODER` (centred over the concepts of its
      kind, unit norm; a motion family's phases use the mean of its members' embeddings, one
      projection per phase) and ``W`` a fixed random Gaussian projection (rows of the same scale as
      the random prototypes). At 1 the prototypes are the projected embeddings.
    - ``train_videos``: the number of training videos (None: the preset's). Fewer keeps the first
      ones; more draws extra videos after the test split; the test split stays the same.
    - ``held_out`` in [0, 1) and ``held_out_k``: ``round(held_out * composite classes)`` composite
      classes (none of them rare) are *held out*: at most ``held_out_k`` of their instances stay in
      the training subset (training and validation counted together, the first in video order), so
      at 0 the composition is never seen in training while its entity and its motion each keep at
      least one other class that is neither rare nor held out. The test split keeps them. The
      held-out class ids are recorded.
    - ``entity_gate`` in {0, 1}: at 1 the entities fall into two *groups* of equal size, drawn so
      that each motion's composite classes weigh (in class frequency) about as much on either group;
      a motion acting on an entity of group 1 runs its phases as its family partner does on group 0
      (the reverse order, or the other tempo), the video stream loses its entity trace (it cannot
      see the group), and *long motion distractors* (whole unlabelled motion instances, no entity
      acted on, of the motions without a motion-only class) are added to it. The groups are
      recorded. Not combined with ``coupling`` (whose per-entity variants show the entity).
    - ``entangle`` in [0, 1]: both streams mix what the other carries and get harder, each effect
      scaled by the dial (:class:`Entanglement` holds the values at 1): the video stream gets a copy
      of the entities in view and the image stream one of the motion phases (prototypes of their
      own), both an entity-x-motion interaction (the outer product of an entity code and a motion
      code) and a *scene* component (AR(1) processes over the segments, low rank, in directions of
      the video's own, its entries
      ``scene_scale`` times a prototype's at 1); the class signal (every prototype) is pushed into a
      random subspace of ``subspace_share`` of the dimensions (the scene lies in it too); where
      several entities are in view, a share of each one's image evidence goes to its *lookalike*
      (an entity sharing a colour or shape word, else another); and the annotations (not the
      evidence) get boundary jitter and miss a share of the instances, in every split.
    - ``text_prior`` in [0, 1]: the entity prototypes of the image stream become
      ``sqrt(p) * W e + sqrt(1 - p) * before``, ``e`` an *attribute-structured* prompt embedding (the
      unit sum of the centred prompt embeddings of the entity's colour word and of its shape word,
      :func:`attribute_vectors`) and ``W`` a fixed random map that keeps their cosine similarities
      (:func:`attribute_prototypes`): entities that share an attribute share a direction.
    - ``rare_entities`` (an integer, default 0): that many *rare entities* (none of whose classes are
      rare or held out, each of their motions kept on another entity) keep at most
      :data:`RARE_ENTITY_CAP` instances over all their classes in the training subset (training and
      validation together); they are recorded. A dial of its own, so that ``text_prior`` 0 and 1
      compare the same rarity with and without text-structured prototypes.

    The mixes keep the prototypes' expected norm, so a dial changes the structure of the evidence,
    not its strength.
    """

    coupling: float = 0.0
    rare_share: float = 0.0
    rare_cap: int = 5
    text_alignment: float = 0.0
    train_videos: int | None = None
    held_out: float = 0.0
    held_out_k: int = 0
    entity_gate: int = 0
    entangle: float = 0.0
    text_prior: float = 0.0
    rare_entities: int = 0

    def __post_init__(self) -> None:
        check_fields(self)
        require(self, 0.0 <= self.coupling <= 1.0, "coupling", "a number in [0, 1]")
        require(self, 0.0 <= self.rare_share < 1.0, "rare_share", "a number in [0, 1)")
        require(self, 0.0 <= self.text_alignment <= 1.0, "text_alignment", "a number in [0, 1]")
        require(self, self.rare_cap >= 0, "rare_cap", "an integer >= 0")
        require(self, 0.0 <= self.held_out < 1.0, "held_out", "a number in [0, 1)")
        require(self, self.held_out_k >= 0, "held_out_k", "an integer >= 0")
        require(self, self.entity_gate in (0, 1), "entity_gate", "0 or 1")
        require(self, 0.0 <= self.entangle <= 1.0, "entangle", "a number in [0, 1]")
        require(self, 0.0 <= self.text_prior <= 1.0, "text_prior", "a number in [0, 1]")
        require(self, self.rare_entities >= 0, "rare_entities", "an integer >= 0")
        require(
            self,
            not (self.entity_gate and self.coupling),
            "entity_gate",
            "0 when coupling is on (coupling's per-entity variants show the entity in the video stream)",
        )
        require(
            self,
            self.train_videos is None or self.train_videos >= 1,
            "train_videos",
            "a positive integer or None",
        )

    def for_preset(self, preset: Preset) -> Dials:
        """These dials with ``train_videos`` None when it equals the preset's (the same dataset)."""
        return replace(self, train_videos=None) if self.train_videos == preset.training else self

    def changed(self) -> dict[str, Any]:
        """The dials that differ from their defaults, ``{name: value}``, in field order."""
        default = Dials()
        return {name: value for name, value in vars(self).items() if value != getattr(default, name)}

    def arguments(self) -> str:
        """The ``refdense synth`` options that set the changed dials (``" --coupling 0.5"``; "" at the defaults)."""
        return "".join(f" --{name.replace('_', '-')} {value:g}" for name, value in self.changed().items())

    def slug(self) -> str:
        """A folder-name suffix naming the changed dials (``"-coupling0.5"``; "" at the defaults)."""
        return "".join(f"-{name}{value:g}" for name, value in self.changed().items())


@dataclass(frozen=True)
class _Script:
    parent: int
    children: tuple[int, ...]
    sequence: bool


@dataclass(frozen=True)
class _World:
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


def _world(preset: Preset, seed: int, dials: Dials = Dials()) -> _World:
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
    return _World(
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
    return _world(PRESETS[preset] if isinstance(preset, str) else preset, seed, dials).info


def _lognormal(rng: np.random.Generator, median: float, sigma: float) -> float:
    return float(median * np.exp(sigma * rng.standard_normal()))


def _draw(rng: np.random.Generator, cumulative: np.ndarray) -> int:
    """An index drawn with the cumulative probabilities ``cumulative``; faster than ``rng.choice`` per call."""
    return min(int(np.searchsorted(cumulative, rng.random(), side="right")), cumulative.size - 1)


def _video_actions(
    rng: np.random.Generator, preset: Preset, world: _World, duration: float, scale: float
) -> list:
    """The ``(class, start, end)`` instances of one video (before the end-overrun dirt)."""
    if rng.random() < preset.empty_share:
        return []
    actions = []
    for _ in range(max(1, rng.poisson(preset.script_rate * scale * duration))):
        script = world.scripts[_draw(rng, world.script_cumulative)]
        length = min(_lognormal(rng, preset.parent_median, preset.parent_sigma), duration)
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
                piece = min(_lognormal(rng, preset.child_median, preset.child_sigma), length)
                offset = start + rng.random() * (length - piece)
                actions.append((c, offset, offset + piece))
    for _ in range(rng.poisson(preset.single_rate * scale * duration)):
        c = _draw(rng, world.class_cumulative)
        length = min(_lognormal(rng, preset.child_median, preset.child_sigma), duration)
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

    :func:`generate` writes exactly these, so statistics can be checked on them alone. Video
    ``v<i>`` is the i-th video drawn: the preset's training videos, its test videos, then the extra
    training videos of ``dials.train_videos``; with fewer training videos than the preset's, the
    later ones are drawn and left out, so the test split is the same for every ``train_videos``.
    ``dials.rare_share`` then caps the training instances of the rare classes, ``dials.held_out``
    those of the held-out ones and ``dials.rare_entities`` those of the rare entities (the evidence
    follows these); ``dials.entangle`` then jitters and drops labels (the evidence does not follow).
    """
    preset = PRESETS[preset] if isinstance(preset, str) else preset
    info, actual, lengths = _actual_annotations(preset, seed, dials)
    return info, _label_noise(preset, seed, dials.entangle, actual), lengths


def _actual_annotations(
    preset: Preset, seed: int, dials: Dials
) -> tuple[DatasetInfo, Annotations, dict[str, int]]:
    """:func:`generate_annotations` before ``Dials.entangle``'s label noise: the instances the evidence shows."""
    world = _world(preset, seed, dials)
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
                _lognormal(rng, preset.duration_median, preset.duration_sigma),
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


def _label_noise(preset: Preset, seed: int, entangle: float, annotations: Annotations) -> Annotations:
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


def _phase_sequence(rng: np.random.Generator, preset: Preset, tempo: bool, member: int, n: int) -> np.ndarray:
    """Phase index (n,) of each covered segment of one motion instance."""
    steps = np.arange(n)
    if tempo:
        period = 1 if member == 0 else preset.slow_period
        return (steps // period + rng.integers(PHASES)) % PHASES
    forward = (steps * PHASES) // n
    return forward if member == 0 else PHASES - 1 - forward


def _evidence(
    rng: np.random.Generator,
    preset: Preset,
    world: _World,
    entry: VideoAnnotation,
    video: np.ndarray,
    image: np.ndarray,
    distractors: np.random.Generator | None = None,
    scene: np.random.Generator | None = None,
) -> None:
    """Write the evidence of one video (module docstring) into zeroed ``video`` and ``image``.

    ``distractors``: with ``Dials.entity_gate``, the generator of the long motion distractors
    (:func:`_motion_distractors`); ``scene``: with ``Dials.entangle``, the generator of the scene
    component (:func:`_entangle_evidence`); the other draws are the same with either on or off.

    ``video`` (T, 3 F + E [+ 3 F E] [+ E + r^2 + k]): motion phase amplitudes (F families times
    :data:`PHASES`), then the entities acted on, then, when ``coupling`` is on, the phase amplitudes
    of the motions of composite classes, per entity acted on (entity-major); ``image`` (T, E + F
    [+ 3 F + r^2 + k]): entities in view, then the motion family trace. With ``entangle``, each
    stream ends with the other stream's copy (entities in view; motion phases), the interaction
    (r^2) and the scene (its k coordinates in the signal's subspace). The features are these times :func:`_loadings`, plus background and noise.
    """
    info = world.info
    length = video.shape[0]
    families = len(world.tempo_family)
    phases = families * PHASES
    entities = info.num_entities
    phase, handled = video[:, :phases], video[:, phases : phases + entities]
    width = entities * phases if world.dials.coupling else 0
    coupled = video[:, phases + entities : phases + entities + width]  # (T, 3 F E); none without coupling
    in_view, family = image[:, :entities], image[:, entities : entities + families]
    video_tail, image_tail = video[:, phases + entities + width :], image[:, entities + families :]
    times = segment_times(length, entry.duration)
    kept, _ = clean_instances(entry.actions, entry.duration)
    for label, start, end in kept:
        span = instance_span(times, start, end, info.boundary)
        if span.stop <= span.start:
            continue
        amplitude = rng.uniform(0.6, 1.2)
        e, m = info.decomposition[label]
        if e is not None:
            np.maximum(in_view[span, e], amplitude, out=in_view[span, e])
            np.maximum(handled[span, e], amplitude, out=handled[span, e])
        if m is not None:
            f = world.family_of_motion[m]
            segments = np.arange(span.start, span.stop)
            member = world.member_of_motion[m]
            if e is not None and world.entity_group:  # group 1 runs the partner's phases
                member ^= world.entity_group[e]
            steps = _phase_sequence(rng, preset, world.tempo_family[f], member, segments.size)
            if e is not None and world.dials.coupling:
                coupled[segments, e * phases + f * PHASES + steps] += amplitude
            else:
                phase[segments, f * PHASES + steps] += amplitude
            np.maximum(family[span, f], amplitude, out=family[span, f])
            if e is not None and world.interaction is not None:
                video_tail[span, entities : entities + world.interaction.shape[2]] += (
                    amplitude * world.interaction[e, m]
                )
    for _ in range(rng.poisson(preset.distractor_rate * entry.duration)):
        width = max(
            1, int(_lognormal(rng, preset.child_median, preset.child_sigma) * preset.segments_per_second)
        )
        first = rng.integers(length)
        in_view[first : first + width, rng.integers(info.num_entities)] += rng.uniform(0.6, 1.2)
    for _ in range(rng.poisson(preset.fragment_rate * entry.duration)):
        first = rng.integers(length)
        phase[first : first + rng.integers(1, 3), rng.integers(phases)] += rng.uniform(0.6, 1.2)
    if distractors is not None:
        _motion_distractors(distractors, preset, world, entry.duration, phase, family)
    if scene is not None:
        _entangle_evidence(scene, world, phase, in_view, video_tail, image_tail)


def _entangle_evidence(
    rng: np.random.Generator,
    world: _World,
    phase: np.ndarray,
    in_view: np.ndarray,
    video_tail: np.ndarray,
    image_tail: np.ndarray,
) -> None:
    """The evidence of ``Dials.entangle`` (:class:`Entanglement`), in place: ``video_tail`` (T, E + r^2 + k)
    gets the entities in view (before the blur) and ``image_tail`` (T, 3 F + r^2 + k) the motion
    phases ``phase`` (T, 3 F); the interaction, written into ``video_tail`` by :func:`_evidence`, is
    copied to ``image_tail``; both get the same scene: ``s = scene_rank`` AR(1) processes over the
    segments (coefficient ``scene_correlation``, unit variance), mapped to the k coordinates of each
    stream's subspace by a Gaussian matrix of the video's own (entries of variance ``1 / s``), all
    drawn from ``rng``, so that no fixed direction removes it. Then, in the segments
    where several entities are in view, ``entangle * blur`` of each one's amplitude in ``in_view``
    (T, E) moves to its lookalike."""
    entities, phases = in_view.shape[1], phase.shape[1]
    pairs = ENTANGLEMENT.interaction_rank**2
    video_tail[:, :entities] = in_view
    image_tail[:, :phases] = phase
    image_tail[:, phases : phases + pairs] = video_tail[:, entities : entities + pairs]
    rho, rank = ENTANGLEMENT.scene_correlation, ENTANGLEMENT.scene_rank
    steps = rng.standard_normal((in_view.shape[0], rank))
    steps[1:] *= np.sqrt(1.0 - rho**2)
    for t in range(1, len(steps)):
        steps[t] += rho * steps[t - 1]
    for tail, first in ((video_tail, entities + pairs), (image_tail, phases + pairs)):
        mixing = rng.standard_normal((rank, tail.shape[1] - first)) / np.sqrt(rank)
        tail[:, first:] = steps @ mixing
    crowded = np.flatnonzero((in_view > 0).sum(1) >= 2)
    moved = np.float32(world.dials.entangle * ENTANGLEMENT.blur) * in_view[crowded]
    in_view[crowded] -= moved
    for e, other in enumerate(world.lookalike):
        in_view[crowded, other] += moved[:, e]


def _motion_distractors(
    rng: np.random.Generator,
    preset: Preset,
    world: _World,
    duration: float,
    phase: np.ndarray,
    family: np.ndarray,
) -> None:
    """The long motion distractors of ``Dials.entity_gate``, added to the phase (T, 3 F) and family
    trace (T, F) evidence: ``Poisson(distractor_rate * duration)`` whole instances (length as a
    child's) of a motion without a motion-only class, phases as on group 0, no entity, no label."""
    motion_only = {m for e, m in world.info.decomposition if e is None}
    candidates = [m for m in range(len(world.family_of_motion)) if m not in motion_only]
    length = phase.shape[0]
    for _ in range(rng.poisson(preset.distractor_rate * duration)):
        m = candidates[rng.integers(len(candidates))]
        f = world.family_of_motion[m]
        width = max(
            1, int(_lognormal(rng, preset.child_median, preset.child_sigma) * preset.segments_per_second)
        )
        segments = np.arange(rng.integers(length), length)[:width]
        steps = _phase_sequence(rng, preset, world.tempo_family[f], world.member_of_motion[m], segments.size)
        amplitude = rng.uniform(0.6, 1.2)
        phase[segments, f * PHASES + steps] += amplitude
        np.maximum(family[segments, f], amplitude, out=family[segments, f])


def _loadings(
    preset: Preset, world: _World, seed: int, attributes: Mapping[str, np.ndarray] | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """The prototypes that map evidence to features: video (3 F + E [+ 3 F E] [+ E + r^2 + k], Dv)
    and image (E + F [+ 3 F + r^2 + k], Di) float32.

    Rows follow the columns of :func:`_evidence`; the weak traces are scaled by ``entity_trace``
    and ``family_trace`` here (the entity trace is 0 with ``Dials.entity_gate``). The dials (:class:`Dials`) draw from generators of their own, so
    turning one on leaves every other prototype as it was (``entangle`` then confines them all to
    a subspace, :func:`_entangle_loadings`). ``attributes``: ``Dials.text_prior``'s prompt embedding
    of each colour and shape word (None: :func:`attribute_embeddings`, MiniLM's).
    """
    rng = np.random.default_rng([seed, 2])
    families = len(world.tempo_family)
    phase = rng.standard_normal((families * PHASES, preset.video_dim), dtype=np.float32)
    handled = rng.standard_normal((preset.entities, preset.video_dim), dtype=np.float32)
    entity = rng.standard_normal((preset.entities, preset.image_dim), dtype=np.float32)
    family = rng.standard_normal((families, preset.image_dim), dtype=np.float32)
    dials = world.dials
    if dials.text_alignment:
        entity_text, phase_text = text_prototypes(preset, world, seed)
        entity = _mix(entity, entity_text, dials.text_alignment)
        phase = _mix(phase, phase_text, dials.text_alignment)
    if dials.text_prior:
        names = world.info.entities
        vectors = attribute_vectors(names, attribute_embeddings(names) if attributes is None else attributes)
        entity = _mix(entity, attribute_prototypes(vectors, preset.image_dim, seed), dials.text_prior)
    trace = 0.0 if dials.entity_gate else preset.entity_trace  # the gate hides the entity from video
    video = [phase, np.float32(trace) * handled]
    if dials.coupling:
        own = np.random.default_rng([seed, 5]).standard_normal(
            (preset.entities * len(phase), preset.video_dim), dtype=np.float32
        )
        video.append(_mix(np.tile(phase, (preset.entities, 1)), own, dials.coupling))
    video_rows = np.concatenate(video)
    image_rows = np.concatenate([entity, np.float32(preset.family_trace) * family])
    if dials.entangle:
        return _entangle_loadings(preset, world, seed, video_rows, image_rows)
    return video_rows, image_rows


def _entangle_loadings(
    preset: Preset, world: _World, seed: int, video: np.ndarray, image: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """``Dials.entangle``'s loadings (:class:`Entanglement`, ``a`` the dial), from the other ones,
    ``video`` (Rv, Dv) and ``image`` (Ri, Di). Per stream (generator ``[seed, 11]``): a random
    subspace of ``k = max(2, round(subspace_share * D))`` dimensions (orthonormal basis ``Q``); the
    rows of the other stream's copy (E for the video stream, 3 F for the image stream; standard
    normal times ``a * cross``) and of the interaction (r^2; times ``a * interaction``) are added;
    every row then keeps its component in the subspace and ``1 - a`` of the rest, rescaled so that
    a standard normal row keeps its expected norm (all in the subspace at 1); the k scene rows are
    the subspace's basis times ``a * scene_scale * sqrt(D / k)`` (so the scene's entries have the
    standard deviation ``a * scene_scale``)."""
    rng = np.random.default_rng([seed, 11])
    a = world.dials.entangle
    c = ENTANGLEMENT
    pairs = c.interaction_rank**2
    copies = (preset.entities, len(world.tempo_family) * PHASES)
    out = []
    for rows, copied in zip((video, image), copies):
        dim = rows.shape[1]
        k = max(2, round(c.subspace_share * dim))
        basis = np.linalg.qr(rng.standard_normal((dim, k)))[0]  # (D, k)
        added = [
            rng.standard_normal((copied, dim)) * a * c.cross,
            rng.standard_normal((pairs, dim)) * a * c.interaction,
        ]
        signal = np.concatenate([rows, *added]).astype(np.float64)
        inside = signal @ basis @ basis.T
        gain = np.sqrt(dim / (k + (1 - a) ** 2 * (dim - k)))
        confined = gain * (inside + (1 - a) * (signal - inside))
        scene = basis.T * (a * c.scene_scale * np.sqrt(dim / k))
        out.append(np.concatenate([confined, scene]).astype(np.float32))
    return out[0], out[1]


def _mix(base: np.ndarray, other: np.ndarray, weight: float) -> np.ndarray:
    """``sqrt(1 - weight) * base + sqrt(weight) * other``: ``other``'s share of the variance is ``weight``."""
    return np.float32(np.sqrt(1.0 - weight)) * base + np.float32(np.sqrt(weight)) * other


def text_prototypes(preset: Preset, world: _World, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """The projected prompt embeddings ``W e`` of ``Dials.text_alignment``: entities (E, Di) and phases (3 F, Dv).

    ``e``: the prompt embedding (``refdense.text``, :data:`TEXT_ENCODER`, the prompts CoLV uses) of
    each entity, and of each motion family (the mean of its members'), centred over the concepts of
    its kind and scaled to unit norm. ``W``: standard normal, drawn from the generator
    ``[seed, 6]``, one for the image stream (D_text, Di), then one per phase (D_text, Dv); a row
    ``W e`` has standard normal entries like a random prototype. Float32.
    """

    def unit(x: np.ndarray) -> np.ndarray:
        return x / np.linalg.norm(x, axis=-1, keepdims=True)

    embeddings = _prompt_embeddings(world.info.entities, world.info.motions)
    entities, motions = (unit(e - e.mean(0)) for e in embeddings)
    of_family = np.array(world.family_of_motion)
    families = np.stack([unit(motions[of_family == f].mean(0)) for f in range(len(world.tempo_family))])
    rng = np.random.default_rng([seed, 6])
    to_image = rng.standard_normal((entities.shape[1], preset.image_dim))
    to_video = rng.standard_normal((PHASES, entities.shape[1], preset.video_dim))
    phases = np.einsum("fd,pdk->fpk", families, to_video).reshape(-1, preset.video_dim)
    return (entities @ to_image).astype(np.float32), phases.astype(np.float32)


def attribute_vectors(entities: Sequence[str], embeddings: Mapping[str, np.ndarray]) -> np.ndarray:
    """The attribute-structured prompt embeddings of ``Dials.text_prior`` (E, D_text) float64.

    ``entities``: names "<colour> <shape>"; ``embeddings``: the prompt embedding (D_text,) of each
    of their words. The colour words' embeddings are centred over the colours present and scaled
    to unit norm, the shape words' likewise; an entity's vector is the unit-norm sum of its colour's
    and its shape's, so entities that share a word share a direction.
    """
    parts = [name.split() for name in entities]
    if any(len(p) != 2 for p in parts) or len(entities) < 2:
        raise ValueError(
            f"text_prior: expected at least two entity names '<colour> <shape>', found {list(entities)}"
        )
    missing = sorted({w for p in parts for w in p} - set(embeddings))
    if missing:
        raise ValueError(f"text_prior: no prompt embedding for the attribute words {missing}")

    def unit(x: np.ndarray) -> np.ndarray:
        norm = np.linalg.norm(x, axis=-1, keepdims=True)
        return x / np.where(norm > 0, norm, 1.0)

    vectors = np.zeros((len(entities), len(next(iter(embeddings.values())))))
    for kind in (0, 1):
        words = sorted({p[kind] for p in parts})
        table = np.stack([np.asarray(embeddings[w], dtype=np.float64) for w in words])
        centred = dict(zip(words, unit(table - table.mean(0))))
        vectors += np.stack([centred[p[kind]] for p in parts])
    return unit(vectors)


def attribute_prototypes(vectors: np.ndarray, dim: int, seed: int) -> np.ndarray:
    """``Dials.text_prior``'s prototypes ``W e`` (E, dim) float32 of the attribute vectors ``vectors`` (E, D_text).

    ``W`` (D_text, dim) = ``U R sqrt(dim)``: ``U`` an orthonormal basis of the span of ``vectors``
    and ``R`` random orthonormal rows (generator ``[seed, 16]``; columns when ``dim < E``). ``W``
    keeps the vectors' cosine similarities exactly (when ``dim >= E``) and gives unit vectors the
    norm of a standard normal prototype, ``sqrt(dim)``.
    """
    span = np.linalg.qr(vectors.T)[0]  # (D_text, E)
    draw = np.random.default_rng([seed, 16]).standard_normal((dim, span.shape[1]))
    rotation = np.linalg.qr(draw)[0].T if dim >= span.shape[1] else np.linalg.qr(draw.T)[0]  # (E, dim)
    return (vectors @ span @ rotation * np.sqrt(dim)).astype(np.float32)


def attribute_embeddings(entities: Sequence[str]) -> dict[str, np.ndarray]:
    """The :data:`TEXT_ENCODER` prompt embedding (float64, (D_text,)) of each word of the entity
    names, ``Dials.text_prior``'s input (the one place it loads an encoder; :func:`generate` also
    takes them as an argument)."""
    words = tuple(sorted({w for name in entities for w in name.split()}))
    return dict(zip(words, _prompt_embeddings(words)[0]))


@functools.lru_cache(maxsize=4)
def _prompt_embeddings(*name_lists: tuple[str, ...]) -> tuple[np.ndarray, ...]:
    """The :data:`TEXT_ENCODER` embeddings (float64, (N, D) per list) of the prompts CoLV uses for
    these names (``refdense.text.make_prompt``), one batch per list; kept for the next dataset."""
    from refdense.text import load_text_encoder, make_prompt

    encoder = load_text_encoder(TEXT_ENCODER)
    return tuple(encoder.encode([make_prompt(n) for n in names]).double().numpy() for names in name_lists)


def _fill_noise(seed: int, index: int, video: np.ndarray, image: np.ndarray) -> None:
    """Standard normal noise of video ``index`` into ``video`` (T, Dv) and ``image`` (T, Di), in place."""
    rng = np.random.default_rng([seed, 4, index])
    rng.standard_normal(out=video, dtype=np.float32)
    rng.standard_normal(out=image, dtype=np.float32)


def _batches(lengths: list[int], budget: int) -> list[range]:
    """Consecutive video index ranges of at most ``budget`` segments each (at least one video)."""
    batches, first, total = [], 0, 0
    for i, length in enumerate(lengths):
        if total and total + length > budget:
            batches.append(range(first, i))
            first, total = i, 0
        total += length
    if lengths:
        batches.append(range(first, len(lengths)))
    return batches


def _features(
    preset: Preset,
    world: _World,
    seed: int,
    annotations: Annotations,
    lengths: dict[str, int],
    pool: ThreadPoolExecutor,
    attributes: Mapping[str, np.ndarray] | None = None,
) -> Iterator[tuple[str, np.ndarray, np.ndarray]]:
    """``(video_id, video (T, Dv), image (T, Di))`` of every video in order, in ``preset.dtype``.

    ``annotations``: the instances the evidence shows (before ``Dials.entangle``'s label noise);
    ``attributes``: see :func:`_loadings`.

    Videos are made in batches of about :data:`BATCH_SEGMENTS` segments. The threads of ``pool``
    draw the noise of a batch (and of the next one while this one is finished and written) while
    this thread writes the evidence; one matrix product per stream then adds the evidence of the
    whole batch. Every video draws from its own generators, seeded by ``seed`` and its index, so
    the values depend neither on the batching nor on the threads. The buffers are allocated once
    and reused: the arrays of an item are views, valid until the next item is asked for.
    """
    import torch

    video_loadings, image_loadings = _loadings(preset, world, seed, attributes)
    entries = list(annotations.items())
    drawn = [int(video_id[1:]) for video_id, _ in entries]  # v<i>: the i-th video drawn seeds its generators
    sizes = [lengths[video_id] for video_id, _ in entries]
    batches = _batches(sizes, BATCH_SEGMENTS)
    rows = max((sum(sizes[i] for i in batch) for batch in batches), default=0)
    dims = (preset.video_dim, preset.image_dim)
    noise_buffers = [
        [np.empty((rows, d), np.float32) for d in dims] for _ in range(2)
    ]  # this batch, next one
    evidence_buffers = [np.empty((rows, w.shape[0]), np.float32) for w in (video_loadings, image_loadings)]
    product = np.empty((rows, max(dims)), np.float32)
    outputs = [torch.empty((rows, d), dtype=getattr(torch, preset.dtype)) for d in dims]

    def start_noise(k: int) -> tuple[np.ndarray, list[np.ndarray], list]:
        bounds = np.concatenate([[0], np.cumsum([sizes[i] for i in batches[k]])])
        video, image = (buffer[: bounds[-1]] for buffer in noise_buffers[k % 2])
        noise = [
            pool.submit(_fill_noise, seed, drawn[i], video[a:b], image[a:b])
            for i, a, b in zip(batches[k], bounds, bounds[1:])
        ]
        return bounds, [video, image], noise

    upcoming = start_noise(0) if batches else None
    for k, batch in enumerate(batches):
        assert upcoming is not None, "start_noise(k) ran for every batch k"
        bounds, features, noise = upcoming
        spans = list(zip(batch, bounds, bounds[1:]))
        video_evidence, image_evidence = (buffer[: bounds[-1]] for buffer in evidence_buffers)
        video_evidence.fill(0.0)
        image_evidence.fill(0.0)
        backgrounds = []
        for i, a, b in spans:
            rng = np.random.default_rng([seed, 3, drawn[i]])
            gate = np.random.default_rng([seed, 10, drawn[i]]) if world.dials.entity_gate else None
            scene = np.random.default_rng([seed, 12, drawn[i]]) if world.dials.entangle else None
            _evidence(
                rng, preset, world, entries[i][1], video_evidence[a:b], image_evidence[a:b], gate, scene
            )
            backgrounds.append([rng.standard_normal(d, dtype=np.float32) for d in dims])
        upcoming = start_noise(k + 1) if k + 1 < len(batches) else None
        for future in noise:
            future.result()
        for stream, (values, evidence, loadings) in enumerate(
            zip(features, (video_evidence, image_evidence), (video_loadings, image_loadings))
        ):
            values *= np.float32(preset.noise)
            values += np.matmul(evidence, loadings, out=product[: bounds[-1], : dims[stream]])
            for (_, a, b), background in zip(spans, backgrounds):
                values[a:b] += np.float32(preset.background) * background[stream]
            # torch casts float32 to float16 about ten times faster than numpy, with the same rounding.
            outputs[stream][: bounds[-1]].copy_(torch.from_numpy(values))
        video, image = (output.numpy() for output in outputs)
        for i, a, b in spans:
            yield entries[i][0], video[a:b], image[a:b]


def generate(
    preset: str | Preset,
    out: str | os.PathLike,
    seed: int = 0,
    overwrite: bool = False,
    dials: Dials = Dials(),
    attributes: Mapping[str, np.ndarray] | None = None,
) -> Path:
    """Write the dataset of ``preset``, ``seed`` and ``dials`` into the folder ``out``; returns ``out``.

    ``attributes``: with ``dials.text_prior``, the prompt embedding of each word of the entity
    names (:func:`attribute_vectors`); None: :func:`attribute_embeddings` computes MiniLM's.

    The files are generated in a staging folder that replaces ``out`` at the end
    (:func:`refdense.data.format.dataset_directory`), so an interrupted run leaves no dataset that
    loads, or the previous one. An existing non-empty ``out`` raises ``FileExistsError`` unless
    ``overwrite`` and it holds a dataset (never an arbitrary folder). Same preset, seed and dials
    give the same bytes; at the default dials, the bytes of the preset as before the dials existed.
    """
    from refdense.progress import track

    preset = PRESETS[preset] if isinstance(preset, str) else preset
    out = Path(out)
    with dataset_directory(out, overwrite=overwrite) as tmp:
        world = _world(preset, seed, dials)
        info, actual, lengths = _actual_annotations(preset, seed, dials)
        annotations = _label_noise(preset, seed, dials.entangle, actual)
        with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
            items = _features(preset, world, seed, actual, lengths, pool, attributes)
            write_features(
                tmp / FEATURES_FILE,
                track(items, desc=f"synth {preset.name}", total=len(annotations), unit="videos"),
                dtype=preset.dtype,
            )
        write_annotations(tmp / ANNOTATIONS_FILE, annotations)
        write_info(tmp, info)
    return out


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
    name = (preset if seed == 0 else f"{preset}-seed{seed}") + dials.slug()
    folder = data_root() / "synthetic" / name
    with exclusive_lock(folder.parent / f"{name}.lock", f"dataset {folder}", wait=True):
        if not (folder / INFO_FILE).is_file():
            generate(preset, folder, seed=seed, dials=dials)
        else:
            expected = dataset_info(preset, seed, dials).source
            found = read_info(folder).source
            if found != expected:
                print(
                    f"{folder}: made by another generator version ({found!r}); regenerating it ({expected!r})"
                )
                generate(preset, folder, seed=seed, overwrite=True, dials=dials)
    return folder
