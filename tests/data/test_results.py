"""One result vocabulary (records' Entity/Relation/Event/Argument) and one way to put offsets back.

Checked against hand-worked examples: the offsets are read off the sentences below by counting characters,
and the JSON shape is the one docs/extract.md documents (the layout's own ``name``/``type``/``pos``, with
``"pos": null`` for a mention found nowhere in the text).
"""

from __future__ import annotations

import json

import pytest

from iuie.ie import views
from iuie.ie.records import Argument, Entity, Event, Record, RecordError, Relation, structures_from_json

ANNA = "Anna met Anna"


def test_a_relation_between_two_equal_strings_takes_both_occurrences_in_infer_and_in_the_extractor():
    """Issue 10.1's drift: "meet: Anna, Anna" over "Anna met Anna" is head (0, 4) and tail (9, 13) through
    iuie.infer's structures and through the Extractor's window reader alike (one joint alignment)."""
    from iuie import infer
    from iuie.extraction.extractor import Extractor, _Window

    row = infer.structures("RE", [("meet", "Anna", "Anna")], ANNA)
    assert [(r["head"]["pos"], r["tail"]["pos"]) for r in row["relations"]] == [([0, 4], [9, 13])]
    assert row["unaligned"] == 0

    window = _Window(document=0, start=0, end=len(ANNA), text=ANNA, tokens=[])
    _, relations, _, malformed, unaligned = Extractor._read("re", "RE", window, " meet: Anna, Anna", ["meet"])
    assert [((r.head.start, r.head.end), (r.tail.start, r.tail.end)) for r in relations] == [((0, 4), (9, 13))]
    assert (malformed, unaligned) == (0, 0)
    # The same answer in a window that starts later in its document: offsets shift by the window's start.
    document = "Hello . " + ANNA
    window = _Window(document=0, start=8, end=len(document), text=ANNA, tokens=[])
    _, relations, _, _, _ = Extractor._read("re", "RE", window, " meet: Anna, Anna", ["meet"])
    assert [(document[r.head.start : r.head.end], r.head.start, r.tail.start) for r in relations] == [("Anna", 8, 17)]


def test_locate_gives_result_types_for_every_view_shape():
    """Each view's item shape (views.TABLE's slots) becomes the records type of its section."""
    text = "Elena Olsen met Elena Olsen in Zurich ."
    entities, missing = views.locate(
        "NER", [("person", "Elena Olsen"), ("person", "Elena Olsen"), ("city", "Rome")], text
    )
    assert entities == [
        Entity("Elena Olsen", "person", 0, 11),
        Entity("Elena Olsen", "person", 16, 27),
        Entity("Rome", "city", None, None),
    ]
    assert missing == 1
    assert views.locate("ES", [("zurich",)], text)[0] == [Entity("Zurich", "", 31, 37)]  # the text's own spelling
    assert views.locate("EP", [("Elena Olsen", "Zurich")], text)[0] == [
        Relation(Entity("Elena Olsen", "", 0, 11), "", Entity("Zurich", "", 31, 37))
    ]
    assert views.locate("EE", [("meet", "met", (("place", "Zurich"), ("who", "Bob")))], text)[0] == [
        Event("met", "meet", 12, 15, (Argument("Zurich", "place", 31, 37), Argument("Bob", "who", None, None)))
    ]
    assert views.locate("EET", [("meet", "met")], text)[0] == [Event("met", "meet", 12, 15)]
    # EEA names the arguments of the one given event: one Event, empty trigger, no offsets.
    assert views.locate("EEA", [("place", "Zurich"), ("who", "Elena Olsen")], text)[0] == [
        Event("", "", None, None, (Argument("Zurich", "place", 31, 37), Argument("Elena Olsen", "who", 0, 11)))
    ]
    assert views.locate("EEA", [], text) == ([], 0)


def test_result_json_round_trips_with_null_offsets():
    """to_json/from_json of each type; a mention without offsets is ``"pos": null``."""
    relation = Relation(Entity("Anna", "", 0, 4), "meet", Entity("Bob", "", None, None))
    event = Event("met", "meet", 5, 8, (Argument("Oslo", "place", None, None),))
    assert relation.to_json() == {
        "head": {"name": "Anna", "type": "", "pos": [0, 4]},
        "type": "meet",
        "tail": {"name": "Bob", "type": "", "pos": None},
    }
    assert event.to_json() == {
        "trigger": "met",
        "type": "meet",
        "pos": [5, 8],
        "arguments": [{"name": "Oslo", "role": "place", "pos": None}],
    }
    for value in (relation, event, Entity("x", "t"), Argument("y", "r", 1, 2)):
        assert type(value).from_json(json.loads(json.dumps(value.to_json()))) == value
    assert structures_from_json({"relations": [relation.to_json()], "events": [event.to_json()]}) == {
        "entities": (),
        "relations": (relation,),
        "events": (event,),
    }
    with pytest.raises(RecordError, match=r"'relations\[0\]\.tail\.pos': expected \[start, end\] or null"):
        structures_from_json({"relations": [{**relation.to_json(), "tail": {"name": "Bob", "pos": [3]}}]})


def test_a_record_of_predictions_reads_back_and_its_offsets_are_checked():
    """Record.from_json(unaligned_ok=True) keeps null offsets and refuses offsets that miss their text."""
    record = Record(ANNA, entities=(Entity("Anna", "person", 9, 13), Entity("Bob", "person")))
    assert Record.from_json(record.to_json_string(), unaligned_ok=True) == record
    with pytest.raises(RecordError, match=r"entities\[1\]\.pos.: missing"):
        Record.from_json(record.to_json())  # gold records need every offset
    bad = {"sentence": ANNA, "entities": [{"name": "Anna", "type": "person", "pos": [4, 8]}]}
    with pytest.raises(RecordError, match=r"'entities\[0\]\.pos'.*\[4, 8\] gives ' met', not 'Anna'"):
        Record.from_json(bad, unaligned_ok=True)


def test_extraction_json_round_trips():
    from iuie.extraction.extractor import Extraction

    result = Extraction(
        ANNA,
        "re",
        relations=(Relation(Entity("Anna", "", 0, 4), "meet", Entity("Anna", "", 9, 13)),),
        windows=((0, 13),),
        outputs=(" meet: Anna, Anna",),
    )
    obj = json.loads(json.dumps(result.to_json()))
    assert obj["relations"] == [
        {
            "head": {"name": "Anna", "type": "", "pos": [0, 4]},
            "type": "meet",
            "tail": {"name": "Anna", "type": "", "pos": [9, 13]},
        }
    ]
    assert Extraction.from_json(obj) == result
