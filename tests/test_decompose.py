"""Decompositions: Charades mapping route, the shipped MultiTHUMOS file, the LLM prompt and answer parser.

Charades fixtures are invented (ids and names); no Charades content.
"""

from __future__ import annotations

import json

import pytest

from refdense.cli import main
from refdense.prepare.decompose import (
    Decomposition,
    DecompositionError,
    build_decomposition_prompt,
    charades_decomposition,
    parse_decomposition_answer,
    read_decomposition,
    shipped_decomposition,
    write_decomposition,
)
from refdense.prepare.formats import MULTITHUMOS_CLASSES, FormatError


def write(path, text):
    path.write_text(text, encoding="utf-8")
    return path


def charades_like(tmp_path):
    """Six invented classes; two share (kettle, polish) like the three shared pairs of Charades."""
    classes = write(tmp_path / "classes.txt", "c000 Polish a kettle\nc001 Polish the kettle again\nc002 Wander\n"
                    "c003 Lift a kettle\nc004 Lift a drum\nc005 Polish a drum\n")
    objects = write(tmp_path / "objects.txt", "o000 None\no001 kettle\no002 drum\no003 parasol\n")
    verbs = write(tmp_path / "verbs.txt", "v000 polish\nv001 wander\nv002 lift\nv003 juggle\n")
    mapping = write(tmp_path / "mapping.txt", "c000 o001 v000\nc001 o001 v000\nc002 o000 v001\n"
                    "c003 o001 v002\nc004 o002 v002\nc005 o002 v000\n")
    return mapping, objects, verbs, classes


def test_charades_route_counts_and_none_object(tmp_path):
    decomposition = charades_decomposition(*charades_like(tmp_path))
    assert decomposition.entities == ("kettle", "drum")  # None is no entity; the unused parasol is left out
    assert decomposition.motions == ("polish", "wander", "lift")  # the unused verb too
    assert decomposition.pairs == ((0, 0), (0, 0), (None, 1), (0, 2), (1, 2), (1, 0))
    assert decomposition.shared_pairs() == {("kettle", "polish"): ["Polish a kettle", "Polish the kettle again"]}
    assert "2 entities, 3 motions" in decomposition.summary()


def test_charades_route_refuses_inconsistent_files(tmp_path):
    mapping, objects, verbs, classes = charades_like(tmp_path)
    write(mapping, mapping.read_text() + "c006 o009 v000\n")
    with pytest.raises(FormatError, match="o009"):
        charades_decomposition(mapping, objects, verbs, classes)
    write(mapping, "c000 o001 v000\n")
    with pytest.raises(FormatError, match="classes without mapping"):
        charades_decomposition(mapping, objects, verbs, classes)


def test_shipped_multithumos_decomposition():
    decomposition = shipped_decomposition("multithumos")
    assert decomposition.classes == MULTITHUMOS_CLASSES
    assert all(why.strip() for why in decomposition.rationale)
    assert decomposition.shared_pairs() == {}  # every class keeps its own (entity, motion) pair
    c = MULTITHUMOS_CLASSES.index
    assert decomposition.entity_of(c("HammerThrowWindUp")) == decomposition.entity_of(c("HammerThrowSpin")) == "hammer"
    assert decomposition.entity_of(c("WeightliftingClean")) == "barbell"
    assert decomposition.entity_of(c("Walk")) is None
    assert (len(decomposition.entities), len(decomposition.motions)) == (24, 52)
    assert "(paper: 28, 50)" in decomposition.summary()


def test_write_read_round_trip_and_reorder(tmp_path):
    decomposition = Decomposition.from_names("toy", ["b", "a", "c"], ["x", None, "y"], ["m", "n", None], ["r1", "r2", "r3"])
    path = write_decomposition(tmp_path / "d.json", decomposition)
    assert read_decomposition(path) == decomposition
    reordered = decomposition.reorder(["a", "b", "c"])
    assert reordered.classes == ("a", "b", "c") and reordered.entity_of(1) == "x" and reordered.motion_of(0) == "n"
    with pytest.raises(DecompositionError, match=r"missing \['d'\]"):
        decomposition.reorder(["a", "b", "d"])
    write(tmp_path / "bad.json", json.dumps({"format": "refdense-decomposition/1", "classes": [{"class": "a"}]}))
    with pytest.raises(DecompositionError, match="classes\\[0\\]"):
        read_decomposition(tmp_path / "bad.json")
    write(tmp_path / "twice.json", '{"format": "refdense-decomposition/1", "format": "other", "classes": []}')
    with pytest.raises(DecompositionError, match="'format' appears twice"):
        read_decomposition(tmp_path / "twice.json")


CLASSES = ["HammerThrowSpin", "Walk", "Ball_Kick", "kick the balls", "NoHuman"]


def test_prompt_lists_every_class_and_the_answer_shape():
    prompt = build_decomposition_prompt(CLASSES, "a sports dataset")
    assert all(f"- {name}\n" in prompt for name in CLASSES)
    assert "a sports dataset" in prompt and '"entity"' in prompt and "null" in prompt


def test_parse_well_formed_answer_in_a_fence_with_normalisation():
    answer = """Sure! Here is the decomposition:
```json
{"hammer throw spin": {"entity": "Hammer", "motion": "Spinning"},
 "WALK": {"entity": null, "motion": "walking"},
 "ball kick": {"entity": "SoccerBall", "motion": "kicking"},
 "Kick_The_Balls": {"entity": "soccer balls", "motion": " Kicking "},
 "NoHuman": {"entity": "empty scene", "motion": "none"},
 "walk": {"entity": "None", "motion": "Walking"}}
```
Hope this helps."""
    decomposition = parse_decomposition_answer(answer, CLASSES)
    assert decomposition.classes == tuple(CLASSES)
    assert decomposition.entities == ("hammer", "soccer ball", "empty scene")  # CamelCase split, plural merged
    assert decomposition.motions == ("spinning", "walking", "kicking")  # case and spaces merged
    assert decomposition.pairs == ((0, 0), (None, 1), (1, 2), (1, 2), (2, None))


def test_parse_accepts_a_bare_list_answer():
    answer = json.dumps([{"class": name, "entity": None, "motion": "moving"} for name in CLASSES])
    decomposition = parse_decomposition_answer(answer, CLASSES)
    assert decomposition.entities == () and decomposition.motions == ("moving",)


@pytest.mark.parametrize("answer, match", [
    ("I cannot help with that.", "no JSON object"),
    ('{"Walk": {"entity": null, "motion": "walking"', "does not parse"),
    (json.dumps({n: {"entity": None, "motion": "m"} for n in CLASSES[:3]}), r"2 classes missing: \['kick the balls', 'NoHuman'\]"),
    (json.dumps({**{n: {"entity": None, "motion": "m"} for n in CLASSES}, "Swim": {"entity": None, "motion": "s"}}),
     r"1 unknown classes: \['Swim'\]"),
    (json.dumps({**{n: {"entity": None, "motion": "m"} for n in CLASSES}, "walk": {"entity": "x", "motion": "m"}}),
     r"answered twice differently: \['Walk'\]"),
    (json.dumps({n: {"entity": None} for n in CLASSES}), "expected"),
    (json.dumps({n: {"entity": 3, "motion": "m"} for n in CLASSES}), "expected a name or null"),
    ("[1, 2]", "'class' key"),
])
def test_parse_malformed_answers_name_the_problem(answer, match):
    with pytest.raises(DecompositionError, match=match):
        parse_decomposition_answer(answer, CLASSES)


def test_cli_decompose_routes(tmp_path, capsys):
    mapping, objects, verbs, classes = charades_like(tmp_path)
    out = tmp_path / "charades.json"
    assert main(["decompose", "charades", "--mapping", str(mapping), "--objects", str(objects), "--verbs", str(verbs),
                 "--classes", str(classes), "--out", str(out)]) == 0
    assert read_decomposition(out).motions == ("polish", "wander", "lift")
    assert main(["decompose", "multithumos"]) == 0
    assert "24 entities, 52 motions (paper: 28, 50)" in capsys.readouterr().out
    assert main(["decompose", "prompt", "--classes", str(classes)]) == 0
    assert "- Wander\n" in capsys.readouterr().out
    answer = write(tmp_path / "answer.txt", json.dumps({"Wander": {"entity": None, "motion": "wander"}}))
    assert main(["decompose", "parse", "--classes", str(classes), "--answer", str(answer), "--out", str(tmp_path / "x.json")]) == 2
    err = capsys.readouterr().err
    assert all(piece in err for piece in ("refdense decompose: error: ", "5 classes missing", "'Polish a kettle'")), err
    assert not (tmp_path / "x.json").exists()
