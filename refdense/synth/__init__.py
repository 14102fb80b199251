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
gives other feature bytes than it did with earlier versions of the generator (the annotations are
unchanged); the model and its statistics are the same.

The text dials take the prompt embeddings as an argument (:func:`generate`'s ``embeddings``);
:func:`text_embeddings` computes them with ``refdense.text`` (:func:`default_dataset` and
``refdense synth`` call it), so the generator itself loads no text encoder.

The modules, one job each:

- :mod:`refdense.synth.presets`: the knobs, :class:`Preset` / :data:`PRESETS` and :class:`Dials`;
- :mod:`refdense.synth.world`: the entities, motions and the classes composed of them, the scripts
  and class weights (:func:`dataset_info`);
- :mod:`refdense.synth.annotations`: the videos' instances and the splits
  (:func:`generate_annotations`);
- :mod:`refdense.synth.features`: the evidence, the prototypes and the features;
- :mod:`refdense.synth.cache`: a dataset folder made (:func:`generate`) or reused
  (:func:`default_dataset`), and the text dials' prompt embeddings (:func:`text_embeddings`).
"""

from __future__ import annotations

from refdense.synth.annotations import generate_annotations, num_segments
from refdense.synth.cache import TEXT_ENCODER, dataset_folder, default_dataset, generate, text_embeddings
from refdense.synth.features import attribute_prototypes, attribute_vectors, text_names, text_prototypes
from refdense.synth.presets import (
    ENTANGLEMENT,
    GENERATOR_VERSION,
    PHASES,
    PRESETS,
    RARE_ENTITY_CAP,
    WHOLE_DIALS,
    Dials,
    Entanglement,
    Preset,
)
from refdense.synth.world import dataset_info

__all__ = [
    "ENTANGLEMENT",
    "GENERATOR_VERSION",
    "PHASES",
    "PRESETS",
    "RARE_ENTITY_CAP",
    "TEXT_ENCODER",
    "WHOLE_DIALS",
    "Dials",
    "Entanglement",
    "Preset",
    "attribute_prototypes",
    "attribute_vectors",
    "dataset_info",
    "dataset_folder",
    "default_dataset",
    "generate",
    "generate_annotations",
    "num_segments",
    "text_embeddings",
    "text_names",
    "text_prototypes",
]
