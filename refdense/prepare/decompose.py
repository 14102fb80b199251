"""Label decomposition: each action class -> at most one entity and at most one motion (docs/METHOD.md, section 5).

Three routes lead to the same :class:`Decomposition`:

- Charades: :func:`charades_decomposition` reads the user's official ``Charades_v1_mapping.txt``
  (``c000 o001 v001``: class, object, verb), ``Charades_v1_objectclasses.txt`` and
  ``Charades_v1_verbclasses.txt``; the object ``None`` means "no entity".
- MultiTHUMOS: the package ships its own curated decomposition of the 65 class names
  (``refdense/prepare/decompositions/multithumos.json``, one line of rationale per class), read by
  :func:`shipped_decomposition`.
- Any class list: :func:`build_decomposition_prompt` writes the prompt to give an LLM (the paper
  used GPT-4) and :func:`parse_decomposition_answer` checks its answer (every class covered, no
  unknown class, names normalised, duplicates merged). The package makes no network call.

File format (``refdense-decomposition/1``), one entry per class in class order, by name so that a
person can read and edit it::

    {"format": "refdense-decomposition/1", "name": "multithumos", "source": "...",
     "classes": [{"class": "HammerThrowSpin", "entity": "hammer", "motion": "spinning",
                  "rationale": "..."}, ...]}

Entities and motions are numbered in order of first appearance, which fixes the columns of
``A_ent`` (C x C_ent) and ``A_mot`` (C x C_mot) in ``dataset.json``.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

from refdense.io import atomic_write, parse_json, read_json
from refdense.paths import shipped
from refdense.prepare.formats import FormatError, read_class_list
from refdense.schema import shown

FORMAT = "refdense-decomposition/1"
NO_CONCEPT = {"", "none", "null", "nil", "n/a", "na", "-", "no entity", "no motion"}
# The paper's counts (section 4, implementation details), shown next to ours.
PAPER_COUNTS = {"charades": (38, 38), "multithumos": (28, 50)}


class DecompositionError(ValueError):
    """A decomposition (file, mapping or LLM answer) that is incomplete or inconsistent."""


@dataclass(frozen=True)
class Decomposition:
    """Classes, entity and motion names, and ``pairs[c] = (entity_index | None, motion_index | None)``.

    ``rationale[c]`` is an optional one-line reason (shipped files have one for every class).
    ``entities``, ``motions`` and ``pairs`` are what :class:`refdense.data.DatasetInfo` stores.
    """

    name: str
    classes: tuple[str, ...]
    entities: tuple[str, ...]
    motions: tuple[str, ...]
    pairs: tuple[tuple[int | None, int | None], ...]
    rationale: tuple[str, ...]
    source: str = ""

    @classmethod
    def from_names(
        cls,
        name: str,
        classes: list[str],
        entity_names: list[str | None],
        motion_names: list[str | None],
        rationale: list[str] | None = None,
        source: str = "",
    ) -> Decomposition:
        """Build from one (entity name | None, motion name | None) per class; names are numbered
        in order of first appearance."""
        if not (len(classes) == len(entity_names) == len(motion_names)):
            raise DecompositionError(
                f"{name}: expected one entity and one motion per class ({len(classes)}), "
                f"found {len(entity_names)} and {len(motion_names)}"
            )
        entities: dict[str, int] = {}
        motions: dict[str, int] = {}
        pairs = []
        for entity, motion in zip(entity_names, motion_names):
            e = None if entity is None else entities.setdefault(entity, len(entities))
            m = None if motion is None else motions.setdefault(motion, len(motions))
            pairs.append((e, m))
        return cls(
            name,
            tuple(classes),
            tuple(entities),
            tuple(motions),
            tuple(pairs),
            tuple(rationale or [""] * len(classes)),
            source,
        )

    def entity_of(self, c: int) -> str | None:
        e = self.pairs[c][0]
        return None if e is None else self.entities[e]

    def motion_of(self, c: int) -> str | None:
        m = self.pairs[c][1]
        return None if m is None else self.motions[m]

    def shared_pairs(self) -> dict[tuple[str | None, str | None], list[str]]:
        """(entity, motion) pairs used by more than one class: those classes cannot be told apart
        from their sub-labels alone."""
        by_pair: dict[tuple[str | None, str | None], list[str]] = {}
        for c, name in enumerate(self.classes):
            by_pair.setdefault((self.entity_of(c), self.motion_of(c)), []).append(name)
        return {pair: names for pair, names in by_pair.items() if len(names) > 1}

    def summary(self) -> str:
        """Counts, and the paper's counts when known, e.g. ``"65 classes -> 24 entities, 52 motions (paper: 28, 50)"``."""
        text = f"{len(self.classes)} classes -> {len(self.entities)} entities, {len(self.motions)} motions"
        if self.name in PAPER_COUNTS:
            text += " (paper: {}, {})".format(*PAPER_COUNTS[self.name])
        no_entity = sum(pair[0] is None for pair in self.pairs)
        no_motion = sum(pair[1] is None for pair in self.pairs)
        shared = self.shared_pairs()
        return (
            text + f"; {no_entity} classes without entity, {no_motion} without motion; "
            f"{len(shared)} (entity, motion) pairs shared by several classes"
        )

    def reorder(self, classes: list[str], where: str = "decomposition") -> Decomposition:
        """The same decomposition in the order of ``classes`` (a dataset's class list); every class
        must be covered and no other class may appear."""
        index = {name: c for c, name in enumerate(self.classes)}
        missing = [name for name in classes if name not in index]
        extra = sorted(set(self.classes) - set(classes))
        if missing or extra:
            raise DecompositionError(
                f"{where}: classes do not match the dataset's: missing {missing[:5]}"
                f"{' ...' if len(missing) > 5 else ''}, unknown {extra[:5]}"
                f"{' ...' if len(extra) > 5 else ''}"
            )
        order = [index[name] for name in classes]
        return Decomposition.from_names(
            self.name,
            list(classes),
            [self.entity_of(c) for c in order],
            [self.motion_of(c) for c in order],
            [self.rationale[c] for c in order],
            self.source,
        )

    def to_json(self) -> dict:
        return {
            "format": FORMAT,
            "name": self.name,
            "source": self.source,
            "classes": [
                {
                    "class": name,
                    "entity": self.entity_of(c),
                    "motion": self.motion_of(c),
                    "rationale": self.rationale[c],
                }
                for c, name in enumerate(self.classes)
            ],
        }


def read_decomposition(path: str | Path) -> Decomposition:
    """Read a ``refdense-decomposition/1`` JSON file (see the module docstring)."""
    path = Path(path)
    try:
        data = read_json(path)
    except FileNotFoundError:
        raise DecompositionError(f"{path}: decomposition file not found") from None
    except ValueError as error:  # invalid JSON, or a key given twice
        raise DecompositionError(f"{path}: not valid JSON ({error})") from None
    if (
        not isinstance(data, dict)
        or data.get("format") != FORMAT
        or not isinstance(data.get("classes"), list)
    ):
        raise DecompositionError(
            f"{path}: expected a {FORMAT!r} object with a 'classes' list, found "
            f"format {data.get('format') if isinstance(data, dict) else type(data).__name__!r}"
        )
    names, entities, motions, rationale = [], [], [], []
    for i, entry in enumerate(data["classes"]):
        if (
            not isinstance(entry, dict)
            or not isinstance(entry.get("class"), str)
            or not {"entity", "motion"} <= set(entry)
        ):
            raise DecompositionError(
                f"{path}: classes[{i}]: expected {{'class', 'entity', 'motion'}}, found {shown(entry)}"
            )
        for key in ("entity", "motion"):
            if entry[key] is not None and (not isinstance(entry[key], str) or not entry[key].strip()):
                raise DecompositionError(
                    f"{path}: class {entry['class']!r}: {key} must be a name or null, found {shown(entry[key])}"
                )
        names.append(entry["class"])
        entities.append(entry["entity"])
        motions.append(entry["motion"])
        rationale.append(str(entry.get("rationale", "")))
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise DecompositionError(f"{path}: classes listed twice: {duplicates}")
    return Decomposition.from_names(
        str(data.get("name", path.stem)), names, entities, motions, rationale, str(data.get("source", ""))
    )


def write_decomposition(path: str | Path, decomposition: Decomposition) -> Path:
    """Write a decomposition file atomically (one class per line, readable in a diff)."""
    path = Path(path)
    data = decomposition.to_json()
    lines = ",\n".join("  " + json.dumps(entry, ensure_ascii=False) for entry in data["classes"])
    header = json.dumps({k: v for k, v in data.items() if k != "classes"}, ensure_ascii=False)[:-1]
    with atomic_write(path) as handle:
        handle.write(f'{header}, "classes": [\n{lines}\n]}}\n')
    return path


def shipped_decomposition_path(name: str = "multithumos") -> Path:
    """Where the package's curated decomposition of ``name`` lives (``refdense/prepare/decompositions/``)."""
    return shipped("prepare", "decompositions", f"{name}.json")


def shipped_decomposition(name: str = "multithumos") -> Decomposition:
    """The package's curated decomposition (only MultiTHUMOS is shipped)."""
    path = shipped_decomposition_path(name)
    if not path.exists():
        raise DecompositionError(
            f"no shipped decomposition for {name!r} (looked for {path}); "
            "build one with `refdense decompose charades` or the LLM route"
        )
    return read_decomposition(path)


# ------------------------------------------------------------------------------------ Charades


def charades_decomposition(
    mapping: str | Path, objects: str | Path, verbs: str | Path, classes: str | Path
) -> Decomposition:
    """The decomposition given by Charades' official files (the user's copy).

    Args:
        mapping: ``Charades_v1_mapping.txt``, lines ``c000 o001 v001``.
        objects: ``Charades_v1_objectclasses.txt``, lines ``o000 None``; the object named ``None``
            means "no entity".
        verbs: ``Charades_v1_verbclasses.txt``, lines ``v000 verb``.
        classes: ``Charades_v1_classes.txt``, lines ``c000 class name``.

    Entities and motions are the objects and verbs that at least one class uses, in id order.
    """
    class_entries = read_class_list(classes)
    object_names = dict(read_class_list(objects))
    verb_names = dict(read_class_list(verbs))
    mapped: dict[str, tuple[str, str]] = {}
    with open(mapping, encoding="utf-8") as handle:
        for number, line in enumerate(handle, 1):
            fields = line.split()
            if not fields:
                continue
            if len(fields) != 3:
                raise FormatError(f"{mapping}:{number}: expected 'cXXX oXXX vXXX', found {line.strip()!r}")
            cls, obj, verb = fields
            if obj not in object_names:
                raise FormatError(f"{mapping}:{number}: object {obj!r} is not in {Path(objects).name}")
            if verb not in verb_names:
                raise FormatError(f"{mapping}:{number}: verb {verb!r} is not in {Path(verbs).name}")
            if cls in mapped:
                raise FormatError(f"{mapping}:{number}: class {cls!r} is mapped twice")
            mapped[cls] = (obj, verb)
    missing = [token for token, _ in class_entries if token not in mapped]
    unknown = sorted(set(mapped) - {token for token, _ in class_entries})
    if missing or unknown:
        raise FormatError(
            f"{mapping}: does not match {Path(classes).name}: classes without mapping {missing[:5]}, "
            f"mapped classes not in the class list {unknown[:5]}"
        )
    used_objects = sorted(
        {mapped[t][0] for t, _ in class_entries if object_names[mapped[t][0]].lower() != "none"}
    )
    used_verbs = sorted({mapped[t][1] for t, _ in class_entries})
    entity_index = {token: i for i, token in enumerate(used_objects)}
    motion_index = {token: i for i, token in enumerate(used_verbs)}
    pairs = tuple((entity_index.get(mapped[t][0]), motion_index[mapped[t][1]]) for t, _ in class_entries)
    return Decomposition(
        name="charades",
        classes=tuple(name for _, name in class_entries),
        entities=tuple(object_names[t] for t in used_objects),
        motions=tuple(verb_names[t] for t in used_verbs),
        pairs=pairs,
        rationale=("official Charades mapping",) * len(class_entries),
        source=f"{Path(mapping).name} + {Path(objects).name} + {Path(verbs).name}",
    )


# ------------------------------------------------------------------------------------ LLM route


def _words(name: str) -> str:
    """``"HammerThrowWindUp"``, ``"hammer_throw wind-up"`` -> ``"hammer throw wind up"``-like words."""
    spaced = re.sub(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])", " ", name)
    return " ".join(re.sub(r"[_\s]+", " ", spaced).split())


def class_key(name: str) -> str:
    """Key under which class names are matched: lower case, letters and digits only."""
    return re.sub(r"[^a-z0-9]", "", name.lower())


def normalise_concept(name: object, where: str) -> str | None:
    """An entity or motion name from an LLM: words in lower case, or None for "no concept"."""
    if name is None:
        return None
    if not isinstance(name, str):
        raise DecompositionError(f"{where}: expected a name or null, found {shown(name)}")
    words = _words(name.strip()).lower()
    return None if words in NO_CONCEPT else words


def build_decomposition_prompt(class_names: list[str], dataset: str = "a video dataset") -> str:
    """The prompt asking an LLM to decompose ``class_names`` into entities and motions.

    The answer it asks for is a JSON object ``{class: {"entity": str | null, "motion": str | null}}``,
    which :func:`parse_decomposition_answer` reads.
    """
    listing = "\n".join(f"- {name}" for name in class_names)
    example = json.dumps({class_names[0]: {"entity": "...", "motion": "..."}})
    return (
        f"The action classes below come from {dataset} for dense action detection.\n"
        "Decompose each action class into two sub-concepts:\n"
        '- the ENTITY: the one object, tool or thing the action involves (e.g. "barbell" for a\n'
        "  weightlifting clean), or null when the action involves no particular object (e.g. walking);\n"
        '- the MOTION: the one body movement the action consists of (e.g. "lifting"), or null when\n'
        "  the action is not a movement.\n"
        "Rules: give each class at most one entity and at most one motion; reuse exactly the same\n"
        "name whenever two classes share an entity or a motion, so that shared concepts are merged;\n"
        "use short lower-case English names (one to three words) that complete the phrase\n"
        '"a photo of ..."; never invent classes and never leave one out.\n\n'
        f"Action classes ({len(class_names)}):\n{listing}\n\n"
        "Answer with one JSON object and nothing else, with every class above as a key, e.g.\n"
        f"{example}\n"
    )


def _extract_json(text: str) -> object:
    """The JSON of an answer: the first fenced code block that parses, else the first object or
    list that parses where one starts in the text (prose around it is ignored)."""
    fenced = re.findall(r"```(?:json|JSON)?\s*\n(.*?)```", text, flags=re.S)
    starts = [i for i, char in enumerate(text) if char in "{["]
    if not fenced and not starts:
        raise DecompositionError(
            'LLM answer: no JSON object found (expected {class: {"entity": ..., "motion": ...}})'
        )
    first_error = None
    for candidate, start in [(block, 0) for block in fenced] + [(text, i) for i in starts]:
        try:
            return parse_json(candidate.strip() if candidate is not text else candidate, start)[0]
        except json.JSONDecodeError as error:
            first_error = first_error or error
        except ValueError as error:  # JSON, but a key given twice or nested too deeply
            raise DecompositionError(f"LLM answer: {error}") from None
    raise DecompositionError(f"LLM answer: the JSON does not parse ({first_error})")


def parse_decomposition_answer(
    text: str, class_names: list[str], name: str = "llm", source: str = "LLM answer"
) -> Decomposition:
    """Read and validate an LLM's answer to :func:`build_decomposition_prompt`.

    Accepts the JSON bare, inside a fenced code block, or surrounded by prose; either the asked
    shape ``{class: {"entity", "motion"}}`` or a list ``[{"class", "entity", "motion"}, ...]``.
    Class names are matched whatever their case, spacing, underscores or CamelCase. Entity and
    motion names are normalised (lower-case words; ``"none"``/``"n/a"``/``""`` mean null) and
    merged when equal after normalisation, or when one is the other plus a final ``s``
    (``"balls"`` -> ``"ball"``).

    Raises :class:`DecompositionError` naming the classes that are missing, unknown, listed twice
    with different answers, or malformed.
    """
    data = _extract_json(text)
    if isinstance(data, list):
        if not all(isinstance(item, dict) and "class" in item for item in data):
            raise DecompositionError("LLM answer: a list must hold objects with a 'class' key")
        items = [(str(item["class"]), item) for item in data]
    elif isinstance(data, dict):
        items = [(str(key), value) for key, value in data.items()]
    else:
        raise DecompositionError(f"LLM answer: expected a JSON object, found {type(data).__name__}")
    by_key = {class_key(c): c for c in class_names}
    answers: dict[str, tuple[str | None, str | None]] = {}
    unknown, conflicting = [], []
    for key, value in items:
        cls = by_key.get(class_key(key))
        if cls is None:
            unknown.append(key)
            continue
        if not isinstance(value, dict) or not {"entity", "motion"} <= set(value):
            raise DecompositionError(
                f'LLM answer: class {key!r}: expected {{"entity": ..., "motion": ...}}, found {shown(value)}'
            )
        pair = (
            normalise_concept(value["entity"], f"LLM answer: class {key!r}: entity"),
            normalise_concept(value["motion"], f"LLM answer: class {key!r}: motion"),
        )
        if cls in answers and answers[cls] != pair:
            conflicting.append(cls)
        answers[cls] = pair
    missing = [c for c in class_names if c not in answers]
    problems = []
    if missing:
        problems.append(f"{len(missing)} classes missing: {missing}")
    if unknown:
        problems.append(f"{len(unknown)} unknown classes: {unknown}")
    if conflicting:
        problems.append(f"classes answered twice differently: {conflicting}")
    if problems:
        raise DecompositionError("LLM answer: " + "; ".join(problems))
    entities = _merge_plurals([answers[c][0] for c in class_names])
    motions = _merge_plurals([answers[c][1] for c in class_names])
    return Decomposition.from_names(name, list(class_names), entities, motions, None, source)


def _merge_plurals(names: list[str | None]) -> list[str | None]:
    present = set(filter(None, names))
    return [n[:-1] if n and n.endswith("s") and n[:-1] in present else n for n in names]
