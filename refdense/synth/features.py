"""The features of a synthetic dataset: each video's evidence (what its actions, distractors and, with
``Dials.entangle``, its scene put in each stream), the prototypes that map evidence to the feature
space (with the text dials, from prompt embeddings the caller gives), and the features themselves,
made in batches of videos with the noise drawn in threads.

No text encoder is loaded here: ``Dials.text_alignment`` and ``Dials.text_prior`` take the prompt
embeddings of :func:`text_names` as an argument (:func:`refdense.synth.cache.text_embeddings`
computes them with ``refdense.text``).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from refdense.data.annotations import Annotations, VideoAnnotation
from refdense.data.info import DatasetInfo
from refdense.data.labels import clean_instances, instance_span, segment_times
from refdense.synth.annotations import lognormal
from refdense.synth.presets import ENTANGLEMENT, PHASES, Dials, Preset
from refdense.synth.world import World

BATCH_SEGMENTS = 16384  # segments made together (buffers of about BATCH_SEGMENTS * (Dv + Di) * 12 bytes)


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
    world: World,
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
            1, int(lognormal(rng, preset.child_median, preset.child_sigma) * preset.segments_per_second)
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
    world: World,
    phase: np.ndarray,
    in_view: np.ndarray,
    video_tail: np.ndarray,
    image_tail: np.ndarray,
) -> None:
    """The evidence of ``Dials.entangle`` (:class:`~refdense.synth.presets.Entanglement`), in place: ``video_tail`` (T, E + r^2 + k)
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
    world: World,
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
            1, int(lognormal(rng, preset.child_median, preset.child_sigma) * preset.segments_per_second)
        )
        segments = np.arange(rng.integers(length), length)[:width]
        steps = _phase_sequence(rng, preset, world.tempo_family[f], world.member_of_motion[m], segments.size)
        amplitude = rng.uniform(0.6, 1.2)
        phase[segments, f * PHASES + steps] += amplitude
        np.maximum(family[segments, f], amplitude, out=family[segments, f])


def text_names(info: DatasetInfo, dials: Dials) -> tuple[tuple[str, ...], ...]:
    """The names whose prompt embeddings the text dials need, in the batches they are embedded in:
    with ``Dials.text_alignment`` the entity names, then the motion names; with ``Dials.text_prior``
    the words of the entity names (sorted); nothing when both are off."""
    batches = [info.entities, info.motions] if dials.text_alignment else []
    if dials.text_prior:
        batches.append(tuple(sorted({w for name in info.entities for w in name.split()})))
    return tuple(tuple(batch) for batch in batches)


def check_embeddings(info: DatasetInfo, dials: Dials, embeddings: Mapping[str, np.ndarray] | None) -> None:
    """Raise ValueError naming the dial and the names of :func:`text_names` that ``embeddings`` lacks."""
    missing = sorted({n for batch in text_names(info, dials) for n in batch} - set(embeddings or {}))
    if missing:
        dial = " and ".join(name for name in ("text_alignment", "text_prior") if getattr(dials, name))
        raise ValueError(
            f"dial {dial}: no prompt embedding for {missing[:6]}{' ...' if len(missing) > 6 else ''} "
            f"({len(missing)} names); compute them with refdense.synth.text_embeddings"
        )


def _loadings(
    preset: Preset, world: World, seed: int, embeddings: Mapping[str, np.ndarray] | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """The prototypes that map evidence to features: video (3 F + E [+ 3 F E] [+ E + r^2 + k], Dv)
    and image (E + F [+ 3 F + r^2 + k], Di) float32.

    Rows follow the columns of :func:`_evidence`; the weak traces are scaled by ``entity_trace``
    and ``family_trace`` here (the entity trace is 0 with ``Dials.entity_gate``). The dials (:class:`Dials`) draw from generators of their own, so
    turning one on leaves every other prototype as it was (``entangle`` then confines them all to
    a subspace, :func:`_entangle_loadings`). ``embeddings``: with the text dials, the prompt
    embedding (D_text,) of each name of :func:`text_names` (ValueError naming those missing).
    """
    check_embeddings(world.info, world.dials, embeddings)
    rng = np.random.default_rng([seed, 2])
    families = len(world.tempo_family)
    phase = rng.standard_normal((families * PHASES, preset.video_dim), dtype=np.float32)
    handled = rng.standard_normal((preset.entities, preset.video_dim), dtype=np.float32)
    entity = rng.standard_normal((preset.entities, preset.image_dim), dtype=np.float32)
    family = rng.standard_normal((families, preset.image_dim), dtype=np.float32)
    dials = world.dials
    if dials.text_alignment:
        entity_text, phase_text = text_prototypes(preset, world, seed, embeddings or {})
        entity = _mix(entity, entity_text, dials.text_alignment)
        phase = _mix(phase, phase_text, dials.text_alignment)
    if dials.text_prior:
        vectors = attribute_vectors(world.info.entities, embeddings or {})
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
    preset: Preset, world: World, seed: int, video: np.ndarray, image: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """``Dials.entangle``'s loadings (:class:`~refdense.synth.presets.Entanglement`, ``a`` the dial), from the other ones,
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


def text_prototypes(
    preset: Preset, world: World, seed: int, embeddings: Mapping[str, np.ndarray]
) -> tuple[np.ndarray, np.ndarray]:
    """The projected prompt embeddings ``W e`` of ``Dials.text_alignment``: entities (E, Di) and phases (3 F, Dv).

    ``embeddings``: the prompt embedding (D_text,) of each entity and motion name (the prompts CoLV
    uses, by :data:`refdense.synth.cache.TEXT_ENCODER`). ``e``: that of each entity, and of each
    motion family (the mean of its members'), centred over the concepts of its kind and scaled to
    unit norm. ``W``: standard normal, drawn from the generator
    ``[seed, 6]``, one for the image stream (D_text, Di), then one per phase (D_text, Dv); a row
    ``W e`` has standard normal entries like a random prototype. Float32.
    """

    def unit(x: np.ndarray) -> np.ndarray:
        return x / np.linalg.norm(x, axis=-1, keepdims=True)

    stacked = [
        np.stack([np.asarray(embeddings[n], np.float64) for n in names])
        for names in (world.info.entities, world.info.motions)
    ]
    entities, motions = (unit(e - e.mean(0)) for e in stacked)
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


def video_features(
    preset: Preset,
    world: World,
    seed: int,
    annotations: Annotations,
    lengths: dict[str, int],
    pool: ThreadPoolExecutor,
    embeddings: Mapping[str, np.ndarray] | None = None,
) -> Iterator[tuple[str, np.ndarray, np.ndarray]]:
    """``(video_id, video (T, Dv), image (T, Di))`` of every video in order, in ``preset.dtype``.

    ``annotations``: the instances the evidence shows (before ``Dials.entangle``'s label noise);
    ``embeddings``: see :func:`_loadings`.

    Videos are made in batches of about :data:`BATCH_SEGMENTS` segments. The threads of ``pool``
    draw the noise of a batch (and of the next one while this one is finished and written) while
    this thread writes the evidence; one matrix product per stream then adds the evidence of the
    whole batch. Every video draws from its own generators, seeded by ``seed`` and its index, so
    the values depend neither on the batching nor on the threads. The buffers are allocated once
    and reused: the arrays of an item are views, valid until the next item is asked for.
    """
    import torch

    video_loadings, image_loadings = _loadings(preset, world, seed, embeddings)
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
