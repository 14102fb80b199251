"""The knobs of the synthetic benchmark: the presets (:class:`Preset`, :data:`PRESETS`) and the
mechanism dials (:class:`Dials`, with the constants of ``entangle``, :class:`Entanglement`).

What each knob does is the generative model of :mod:`refdense.synth` (and ``data/README.md``).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, get_args, get_type_hints

from refdense.schema import check_fields, require

PHASES = 3  # phase prototypes per motion family


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


# Bumped whenever a change of the generator (refdense.synth) changes the bytes a preset and seed give;
# recorded in dataset.json's "source" so that ``default_dataset`` regenerates stale copies.
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

# Charades-like with a quarter of its videos: notebook 09's full profile in one sitting on one GPU.
PRESETS["charades-quarter"] = replace(
    PRESETS["charades-like"], name="charades-quarter", training=1996, testing=466
)


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
      the prompt embedding of the concept by :data:`refdense.synth.cache.TEXT_ENCODER` (centred over the concepts of its
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
      :func:`refdense.synth.features.attribute_vectors`) and ``W`` a fixed random map that keeps their cosine similarities
      (:func:`refdense.synth.features.attribute_prototypes`): entities that share an attribute share a direction.
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


WHOLE_DIALS = frozenset(
    name for name, kind in get_type_hints(Dials).items() if kind is int or int in get_args(kind)
)
"""The dials of :class:`Dials` that take whole numbers (``rare_cap``, ``train_videos``, ...), read from its fields."""
