"""Readers for the annotation files that real dense-action datasets are distributed with.

Every reader returns the same in-memory form, :class:`RawAnnotations`: the class names in id order
and one entry per video in the super-events shape that ``annotations.json`` uses on disk
(``{"subset": "training"|"testing", "duration": seconds or None, "actions": [[class, start_s,
end_s], ...]}``, class ids 0-based, times in seconds), plus ``"origins"``: where each action was
read (``"Charades_v1_train.csv:12"``, ``"Walk.txt:7"``, ``"multithumos.json: video 'v', actions[3]"``),
so that every fix of the clean-up can be traced to its line. Nothing is cleaned here (clipping,
dropping and merging are the job of ``refdense.data``'s clean-up, which reports what it fixed); the
readers only translate, and what they cannot translate (an unknown class id, a line that does not
parse) is listed in :attr:`RawAnnotations.details` and counted in :attr:`RawAnnotations.problems`
instead of being silently lost.

Formats (``FORMATS``):

``super-events``
    ``charades.json`` / ``multithumos.json`` of super-events, PDAN, MS-TCT, PAT, MLAD. Class ids are
    0-based in charades.json and 1-based in multithumos.json (``one_based``).
``charades-csv``
    ``Charades_v1_train.csv`` / ``Charades_v1_test.csv`` (columns ``id``, ``length``, ``actions``
    where actions reads ``"c092 11.90 21.20;c147 0.00 12.60"``) with ``Charades_v1_classes.txt``.
``multithumos-txt``
    The official MultiTHUMOS folder of ``<ClassName>.txt`` files, lines ``video_id start end``
    (seconds). These files carry no durations: they are filled in later from the features
    (``duration = T' * segment_frames / fps``, see ``refdense.prepare.prepare``).
``tsu-json``
    Toyota Smarthome Untrimmed: the super-events shape with ``duration`` and action times given as
    frame numbers at 20 fps; converted to seconds here.
"""

from __future__ import annotations

import csv
import math
import re
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from refdense.data.annotations import SUBSETS
from refdense.io import read_json
from refdense.schema import shown

FORMATS = ("super-events", "charades-csv", "multithumos-txt", "tsu-json")
TSU_FPS = 20.0

# MultiTHUMOS class names in the official id order (id = position + 1), as in multithumos.json.
MULTITHUMOS_CLASSES = (
    "BaseballPitch",
    "BasketballDunk",
    "Billiards",
    "CleanAndJerk",
    "CliffDiving",
    "CricketBowling",
    "CricketShot",
    "Diving",
    "FrisbeeCatch",
    "GolfSwing",
    "HammerThrow",
    "HighJump",
    "JavelinThrow",
    "LongJump",
    "PoleVault",
    "Shotput",
    "SoccerPenalty",
    "TennisSwing",
    "ThrowDiscus",
    "VolleyballSpiking",
    "Walk",
    "Sit",
    "StandUp",
    "Stand",
    "Run",
    "Jump",
    "Fall",
    "PickUp",
    "Hug",
    "PatPerson",
    "HighFive",
    "FistPump",
    "ClapHands",
    "OneRaisedArmCelebrate",
    "TwoRaisedArmCelebrate",
    "Throw",
    "Drop",
    "OneHandedCatch",
    "TwoHandedCatch",
    "BodyRoll",
    "BodyTurn",
    "BodyBend",
    "BodyContract",
    "Squat",
    "BasketballDribble",
    "BasketballPass",
    "BasketballBlock",
    "BasketballShot",
    "BasketballGuard",
    "VolleyballSet",
    "VolleyballBump",
    "VolleyballBlock",
    "VolleyballServe",
    "WeightliftingClean",
    "WeightliftingJerk",
    "HammerThrowWindUp",
    "HammerThrowSpin",
    "HammerThrowRelease",
    "PoleVaultPlantPole",
    "ShotPutBend",
    "DiscusWindUp",
    "DiscusRelease",
    "TalkToCamera",
    "CloseUpTalkToCamera",
    "NoHuman",
)


class FormatError(ValueError):
    """An annotation file that is not in the format it was read as (the message names the file)."""


@dataclass
class RawAnnotations:
    """Annotations translated from an official file, before clean-up.

    Attributes:
        classes: class names; the index is the 0-based class id used in ``videos``.
        videos: ``{video_id: {"subset", "duration" (seconds, or None when the format has none),
            "actions": [[class_id, start_s, end_s], ...], "origins": [where each action was read]}}``.
        source: which files and format they came from (goes into ``dataset.json``'s ``source``).
        problems: counts of what could not be translated, e.g. ``{"unknown class id": 3}``.
        examples: the first message of each problem kind.
        details: every message of each problem kind (file and line, or file and video).
    """

    classes: list[str]
    videos: dict[str, dict]
    source: str
    problems: dict[str, int] = field(default_factory=dict)
    examples: dict[str, str] = field(default_factory=dict)
    details: dict[str, list[str]] = field(default_factory=dict)

    def note(self, kind: str, message: str) -> None:
        """Count and keep one problem of ``kind`` (its ``message`` names the file and the line or video)."""
        self.problems[kind] = self.problems.get(kind, 0) + 1
        self.examples.setdefault(kind, message)
        self.details.setdefault(kind, []).append(message)

    def wrong_duration(self, origin: str, value: object) -> float:
        """Note a duration that is not a number (``null``, a list, a string) read at ``origin`` and
        return NaN for it, so that the video is skipped and reported as any non-positive one."""
        self.note(
            "duration not a number", f"{origin}: duration must be a number of seconds, found {shown(value)}"
        )
        return math.nan


def read_class_list(path: str | Path) -> list[tuple[str, str]]:
    """Read a class list, one class per line, in id order.

    Accepted lines: ``"c000 Some class name"`` (Charades_v1_classes.txt, also the object and verb
    lists), ``"0<TAB>Some_name"`` / ``"1 Name"`` (numbered lists, TSU's Action_list) or a bare
    ``"Name"``. Returns ``[(id_token, name), ...]``, ``id_token`` being ``""`` for bare names.
    Raises :class:`FormatError` on an empty file, a repeated id or a repeated name.
    """
    path = Path(path)
    entries: list[tuple[str, str]] = []
    with open(path, encoding="utf-8") as handle:
        for line in handle:
            line = line.strip()
            if not line:
                continue
            token, _, rest = line.partition(" ") if "\t" not in line else line.partition("\t")
            if re.fullmatch(r"[a-zA-Z]?\d+", token) and rest.strip():
                entries.append((token, rest.strip()))
            else:
                entries.append(("", line))
    if not entries:
        raise FormatError(f"{path}: no class names found (expected one class per line, e.g. 'c000 name')")
    for position, what in ((0, "id"), (1, "name")):
        seen: set[str] = set()
        for entry in entries:
            if entry[position] and entry[position] in seen:
                raise FormatError(f"{path}: class {what} {entry[position]!r} appears twice")
            seen.add(entry[position])
    return entries


def _load_json(path: Path) -> dict:
    try:
        data = read_json(path)
    except ValueError as error:  # invalid JSON, or a video id given twice
        raise FormatError(f"{path}: not valid JSON ({error})") from None
    if not isinstance(data, dict) or not data:
        raise FormatError(
            f"{path}: expected a JSON object {{video_id: {{subset, duration, actions}}}}, "
            f"found {type(data).__name__}{' (empty)' if not data else ''}"
        )
    return data


def _check_entry(path: Path, video_id: str, entry: object) -> None:
    if not isinstance(entry, dict) or not {"subset", "duration", "actions"} <= set(entry):
        found = sorted(entry) if isinstance(entry, dict) else type(entry).__name__
        raise FormatError(
            f"{path}: video {video_id!r}: expected keys subset, duration, actions; found {found}"
        )
    if entry["subset"] not in SUBSETS:
        raise FormatError(
            f"{path}: video {video_id!r}: subset must be one of {SUBSETS}, found {shown(entry['subset'])}"
        )


def read_super_events(
    path: str | Path,
    classes: list[str],
    *,
    one_based: bool = False,
    time_scale: float = 1.0,
    format_name: str = "super-events",
) -> RawAnnotations:
    """Read a super-events JSON (charades.json, multithumos.json) or, with ``time_scale``, TSU's JSON.

    Args:
        path: the JSON file.
        classes: class names in id order (from the user's class list).
        one_based: True for multithumos.json (ids 1..C), False for charades.json (ids 0..C-1).
            A file whose ids contradict it (an id 0 when one-based, or ids reaching C when
            0-based and never 0) is refused with a message saying so, instead of shifting every label.
        time_scale: seconds per unit of ``duration`` and of action times (1/20 for TSU's frames).
    """
    path = Path(path)
    data = _load_json(path)
    ids = []
    for video_id, entry in data.items():
        _check_entry(path, video_id, entry)
        for action in entry["actions"]:
            if isinstance(action, list) and action and isinstance(action[0], int):
                ids.append(action[0])
    num = len(classes)
    if ids and one_based and min(ids) == 0:
        raise FormatError(
            f"{path}: class id 0 found but the file is read as 1-based (ids 1..{num}); "
            "read it as 0-based (charades.json is 0-based, multithumos.json 1-based)"
        )
    if ids and not one_based and max(ids) == num and min(ids) >= 1:
        raise FormatError(
            f"{path}: class ids run 1..{num} but the file is read as 0-based (ids 0..{num - 1}); "
            "read it as 1-based (multithumos.json is 1-based)"
        )
    offset = 1 if one_based else 0
    raw = RawAnnotations(classes=list(classes), videos={}, source=f"{format_name}: {path.name}")
    for video_id, entry in data.items():
        actions, origins = [], []
        for index, action in enumerate(entry["actions"]):
            origin = f"{path.name}: video {video_id!r}, actions[{index}]"
            if not (
                isinstance(action, list)
                and len(action) == 3
                and isinstance(action[0], int)
                and all(isinstance(v, (int, float)) for v in action[1:])
            ):
                raw.note("malformed action", f"{origin}: expected [class, start, end], found {shown(action)}")
                continue
            cls = action[0] - offset
            if not 0 <= cls < num:
                raw.note(
                    "unknown class id", f"{origin}: class id {action[0]} outside {offset}..{num - 1 + offset}"
                )
                continue
            actions.append([cls, float(action[1]) * time_scale, float(action[2]) * time_scale])
            origins.append(origin)
        raw.videos[str(video_id)] = {
            "subset": entry["subset"],
            "duration": (
                float(entry["duration"]) * time_scale
                if isinstance(entry["duration"], (int, float)) and not isinstance(entry["duration"], bool)
                else raw.wrong_duration(f"{path.name}: video {video_id!r}", entry["duration"])
            ),
            "actions": actions,
            "origins": origins,
        }
    return raw


def read_tsu(path: str | Path, classes: list[str], *, fps: float = TSU_FPS) -> RawAnnotations:
    """Read TSU's JSON (super-events shape, ``duration`` and times in frames at ``fps``) into seconds."""
    return read_super_events(path, classes, one_based=False, time_scale=1.0 / fps, format_name="tsu-json")


def _subset_from_name(path: Path) -> str:
    name = path.stem.lower()
    if "train" in name:
        return "training"
    if "test" in name:
        return "testing"
    raise FormatError(
        f"{path}: cannot tell the subset from the file name (expected 'train' or 'test' in it, "
        "as in Charades_v1_train.csv)"
    )


def read_charades_csv(paths: Sequence[str | Path], classes_file: str | Path) -> RawAnnotations:
    """Read the official Charades CSVs (train and/or test) with ``Charades_v1_classes.txt``.

    The subset comes from the file name (``train`` -> training, ``test`` -> testing), the duration
    from the ``length`` column, the actions from ``actions`` (``"c092 11.90 21.20;c147 0.00 12.60"``,
    possibly empty). Class names and ids come from ``classes_file``.
    """
    entries = read_class_list(classes_file)
    index = {token: i for i, (token, _) in enumerate(entries)}
    raw = RawAnnotations(
        classes=[name for _, name in entries],
        videos={},
        source="charades-csv: " + ", ".join(Path(p).name for p in paths) + f" + {Path(classes_file).name}",
    )
    for path in map(Path, paths):
        subset = _subset_from_name(path)
        with open(path, encoding="utf-8", newline="") as handle:
            reader = csv.DictReader(handle)
            missing = {"id", "length", "actions"} - set(reader.fieldnames or [])
            if missing:
                raise FormatError(
                    f"{path}: not a Charades CSV: missing columns {sorted(missing)} "
                    f"(found {reader.fieldnames})"
                )
            for row in reader:
                video_id = row["id"].strip()
                try:
                    duration = float(row["length"])
                except ValueError:
                    duration = raw.wrong_duration(
                        f"{path}:{reader.line_num}: video {video_id!r}", row["length"]
                    )
                actions, origins = [], []
                for item in filter(None, (part.strip() for part in (row["actions"] or "").split(";"))):
                    origin = f"{path.name}:{reader.line_num} ({item!r})"
                    fields = item.split()
                    try:
                        token, start, end = fields[0], float(fields[1]), float(fields[2])
                        if len(fields) != 3:
                            raise ValueError
                    except (ValueError, IndexError):
                        raw.note(
                            "malformed action",
                            f"{path}:{reader.line_num}: video {video_id!r}: expected "
                            f"'cXXX start end', found {item!r}",
                        )
                        continue
                    if token not in index:
                        raw.note(
                            "unknown class id",
                            f"{path}:{reader.line_num}: video {video_id!r}: class {token!r} "
                            f"is not in {Path(classes_file).name}",
                        )
                        continue
                    actions.append([index[token], start, end])
                    origins.append(origin)
                if video_id in raw.videos:
                    raise FormatError(f"{path}:{reader.line_num}: video {video_id!r} appears twice")
                raw.videos[video_id] = {
                    "subset": subset,
                    "duration": duration,
                    "actions": actions,
                    "origins": origins,
                }
    return raw


def multithumos_subset(video_id: str) -> str:
    """MultiTHUMOS follows THUMOS'14: ``video_validation_*`` videos train, ``video_test_*`` test."""
    if "validation" in video_id:
        return "training"
    if "test" in video_id:
        return "testing"
    raise FormatError(
        f"video {video_id!r}: cannot tell its subset (MultiTHUMOS ids contain "
        "'validation' (training) or 'test' (testing))"
    )


def read_multithumos_txt(folder: str | Path, classes: list[str] | None = None) -> RawAnnotations:
    """Read the official MultiTHUMOS annotations: a folder of ``<ClassName>.txt``, lines ``video start end``.

    Args:
        folder: the folder holding one text file per class.
        classes: class names in id order; default the 65 official names (``MULTITHUMOS_CLASSES``).
            A file named after no class is an error (it would be silently ignored otherwise).

    Durations are not in these files: every video gets ``duration=None``, filled in from the
    features by the preparation. Subsets follow the video ids (:func:`multithumos_subset`).
    """
    folder = Path(folder)
    classes = list(classes or MULTITHUMOS_CLASSES)
    files = sorted(folder.glob("*.txt"))
    if not files:
        raise FormatError(
            f"{folder}: no <ClassName>.txt files found (expected the MultiTHUMOS annotation folder)"
        )
    index = {name: i for i, name in enumerate(classes)}
    unknown = [f.stem for f in files if f.stem not in index]
    if unknown:
        raise FormatError(
            f"{folder}: files named after no known class: {unknown[:5]}"
            f"{' ...' if len(unknown) > 5 else ''} (known classes: {classes[:3]} ...)"
        )
    raw = RawAnnotations(
        classes=classes, videos={}, source=f"multithumos-txt: {folder.name}/ ({len(files)} files)"
    )
    for path in files:
        with open(path, encoding="utf-8") as handle:
            for number, line in enumerate(handle, 1):
                fields = line.split()
                if not fields:
                    continue
                try:
                    video_id, start, end = fields[0], float(fields[1]), float(fields[2])
                    if len(fields) != 3:
                        raise ValueError
                except (ValueError, IndexError):
                    raw.note(
                        "malformed action",
                        f"{path}:{number}: expected 'video_id start end', found {line.strip()!r}",
                    )
                    continue
                entry = raw.videos.setdefault(
                    video_id,
                    {"subset": multithumos_subset(video_id), "duration": None, "actions": [], "origins": []},
                )
                entry["actions"].append([index[path.stem], start, end])
                entry["origins"].append(f"{path.name}:{number}")
    return raw


DATASETS = ("charades", "multithumos", "tsu")
DATASET_NAMES = {
    "charades": "Charades",
    "multithumos": "MultiTHUMOS",
    "tsu": "TSU (Toyota Smarthome Untrimmed)",
}
# The video ids of each dataset's official files: Charades "46GP8" (five capitals and digits),
# MultiTHUMOS "video_validation_0000051" / "video_test_0000004" (THUMOS'14), TSU "P02T01C06".
VIDEO_ID_PATTERNS = {
    "charades": re.compile(r"[0-9A-Z]{5}"),
    "multithumos": re.compile(r"video_(validation|test)_\d{7}"),
    "tsu": re.compile(r"P\d{2}T\d{2}C\d{2}"),
}
# The formats that only one dataset is distributed in.
FORMAT_DATASET = {"charades-csv": "charades", "multithumos-txt": "multithumos", "tsu-json": "tsu"}


def guess_dataset(video_ids: Iterable[object]) -> str | None:
    """The dataset whose official video-id form at least 90% of ``video_ids`` have, or None."""
    ids = list(video_ids)
    for dataset, pattern in VIDEO_ID_PATTERNS.items():
        if ids and sum(bool(pattern.fullmatch(str(v))) for v in ids) >= 0.9 * len(ids):
            return dataset
    return None


def check_dataset(dataset: str, video_ids: Collection[str], what: str) -> None:
    """Raise :class:`FormatError` when ``video_ids`` have the id form of another dataset than ``dataset``."""
    guessed = guess_dataset(video_ids)
    if guessed is not None and guessed != dataset:
        ids = sorted(video_ids)
        raise FormatError(
            f"{what} look like {DATASET_NAMES[guessed]}, not {DATASET_NAMES[dataset]}: their video "
            f"ids have {DATASET_NAMES[guessed]}'s form (e.g. {ids[:3]}); give them to "
            f"`refdense prepare {guessed}`, or the {DATASET_NAMES[dataset]} files to this command"
        )


def detect_format(dataset: str, paths: list[Path]) -> str:
    """Guess the format of ``paths`` for ``dataset`` from file types; raise FormatError when none fits."""
    if len(paths) == 1 and paths[0].is_dir():
        folder = paths[0]
        if list(folder.glob("Charades_v1_*.csv")):
            return "charades-csv"
        if list(folder.glob("*.txt")):
            return "multithumos-txt"
        raise FormatError(
            f"{folder}: a folder must hold Charades_v1_*.csv files or MultiTHUMOS <ClassName>.txt files"
        )
    suffixes = {p.suffix.lower() for p in paths}
    if suffixes == {".csv"}:
        return "charades-csv"
    if suffixes == {".json"} and len(paths) == 1:
        return "tsu-json" if dataset == "tsu" else "super-events"
    raise FormatError(
        f"cannot tell the format of {[str(p) for p in paths]}: give one JSON file (super-events "
        "or TSU), Charades CSV files, or the MultiTHUMOS folder of <ClassName>.txt files"
    )


def read_raw_annotations(
    dataset: str,
    paths: list[str | Path],
    *,
    classes_file: str | Path | None = None,
    fmt: str = "auto",
    one_based: bool | None = None,
) -> RawAnnotations:
    """Read a dataset's official annotation files into :class:`RawAnnotations`.

    Args:
        dataset: ``"charades"``, ``"multithumos"`` or ``"tsu"`` (sets the defaults below).
        paths: the annotation file(s) or folder.
        classes_file: the class list (``Charades_v1_classes.txt``, TSU's ``Action_list``...).
            Required for Charades and TSU (looked up as ``Charades_v1_classes.txt`` beside the
            annotations for Charades); MultiTHUMOS defaults to its 65 official names.
        fmt: one of ``FORMATS`` or ``"auto"`` (:func:`detect_format`).
        one_based: class-id base of a super-events JSON; default True for MultiTHUMOS, else False.
    """
    if dataset not in DATASETS:
        raise ValueError(f"unknown dataset {dataset!r}; expected one of {DATASETS}")
    files = [Path(p) for p in paths]
    for path in files:
        if not path.exists():
            raise FileNotFoundError(f"annotation file not found: {path}")
    if fmt == "auto":
        fmt = detect_format(dataset, files)
    if fmt not in FORMATS:
        raise ValueError(f"unknown annotation format {fmt!r}; expected one of {FORMATS} or 'auto'")
    if FORMAT_DATASET.get(fmt, dataset) != dataset:
        other = FORMAT_DATASET[fmt]
        raise FormatError(
            f"{[str(p) for p in files]} look like {DATASET_NAMES[other]}, not {DATASET_NAMES[dataset]}: "
            f"{fmt} is the format {DATASET_NAMES[other]} is distributed in; give them to "
            f"`refdense prepare {other}`, or the {DATASET_NAMES[dataset]} files to this command"
        )
    if fmt == "charades-csv" and classes_file is None:
        folder = files[0] if files[0].is_dir() else files[0].parent
        candidate = folder / "Charades_v1_classes.txt"
        if not candidate.exists():
            raise FormatError(
                f"Charades CSVs need the class list: give --classes Charades_v1_classes.txt "
                f"(not found beside the annotations in {folder})"
            )
        classes_file = candidate
    if classes_file is not None:
        classes = [name for _, name in read_class_list(classes_file)]
    elif dataset == "multithumos":
        classes = list(MULTITHUMOS_CLASSES)
    else:
        raise FormatError(
            f"{dataset}: give the class list file (--classes); class names are read from "
            "your copy of the dataset, never shipped"
        )
    if fmt == "charades-csv":
        csvs = sorted(files[0].glob("Charades_v1_*.csv")) if files[0].is_dir() else files
        assert classes_file is not None, "the class list of Charades CSVs is required or found above"
        return read_charades_csv(csvs, classes_file)
    if fmt == "multithumos-txt":
        return read_multithumos_txt(files[0], classes)
    if len(files) != 1:
        raise FormatError(f"{fmt}: expected one JSON file, got {len(files)}")
    if fmt == "tsu-json":
        return read_tsu(files[0], classes)
    check_dataset(dataset, _load_json(files[0]), f"the annotations in {files[0]}")
    return read_super_events(
        files[0], classes, one_based=dataset == "multithumos" if one_based is None else one_based
    )
