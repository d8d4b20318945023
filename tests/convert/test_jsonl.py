"""JSON Lines with character spans -> NER, RE and EE layout folders (iuie.convert.jsonl via the pipeline).

Checked against: the schema documented in iuie/convert/jsonl.py and docs/converters.md (``text``,
``entities``/``spans`` with ``start``/``end``/``label``, relations by entity index or span object, events
with trigger and arguments); the input lines written here, whose offsets must come back unchanged (a round
trip layout -> JSONL spans gives the input spans); and the layout loader ``DatasetFolder.load(strict=True)``.
"""

from __future__ import annotations

import json

import pytest

from iuie.convert.labelmap import LabelMap
from iuie.convert.pipeline import ConvertOptions, convert
from iuie.convert.report import ConversionError
from iuie.ie.records import DatasetFolder

LINES = [
    {
        "text": "Alice works for Acme in Paris .",
        "entities": [
            {"start": 0, "end": 5, "label": "PER"},
            {"start": 16, "end": 20, "label": "ORG"},
            {"start": 24, "end": 29, "label": "LOC", "text": "Paris"},
        ],
        "relations": [
            {"head": 0, "tail": 1, "label": "Work_For"},
            {"head": {"start": 16, "end": 20}, "tail": {"start": 24, "end": 29}, "label": "located_in"},
        ],
    },
    # Prodigy's spelling: "spans", head_span/child_span.
    {
        "text": "Bob sold Zeta .",
        "spans": [{"start": 0, "end": 3, "label": "PER"}, {"start": 9, "end": 13, "label": "ORG"}],
        "relations": [
            {
                "head_span": {"start": 0, "end": 3, "label": "PER"},
                "child_span": {"start": 9, "end": 13, "label": "ORG"},
                "label": "Work_For",
            }
        ],
    },
    {"text": "Nothing here ."},
]

EVENTS = [
    {
        "text": "Rebels attacked the base on Monday .",
        "entities": [{"start": 0, "end": 6, "type": "ORG"}, {"start": 16, "end": 24, "type": "FAC"}],
        "events": [
            {
                "type": "Conflict.Attack",
                "trigger": {"start": 7, "end": 15},
                "arguments": [
                    {"role": "Attacker", "entity": 0},
                    {"role": "Target", "entity": 1},
                    {"role": "Time", "start": 28, "end": 34},
                ],
            }
        ],
    },
    {
        "text": "He quit and she was hired .",
        "events": [
            {
                "label": "Personnel.End",
                "trigger": {"start": 3, "end": 7},
                "arguments": [{"role": "Person", "start": 0, "end": 2}],
            },
            {"type": "Personnel.Start", "trigger": {"start": 20, "end": 25}, "arguments": []},
        ],
    },
]


def write_lines(path, objects, blank=True):
    text = "\n".join(json.dumps(o) for o in objects)
    path.write_text(text + ("\n\n" if blank else "\n"), encoding="utf-8")
    return path


def load(root, task, name, split="train"):
    records, _ = DatasetFolder(str(root), task, name).load(split, strict=True)
    return records


def test_ner_round_trip_keeps_offsets(tmp_path):
    src = write_lines(tmp_path / "toy.jsonl", LINES)
    result = convert("jsonl", str(src), str(tmp_path / "out"), ConvertOptions(task="NER"))
    records = load(tmp_path / "out", "NER", "toy")
    assert [r.sentence for r in records] == [o["text"] for o in LINES]
    for record, line in zip(records, LINES):
        spans = line.get("entities", line.get("spans", []))
        assert [(e.start, e.end) for e in record.entities] == [(s["start"], s["end"]) for s in spans]
        assert all(record.sentence[e.start : e.end] == e.name for e in record.entities)
    assert json.loads((tmp_path / "out/NER/toy/labels.json").read_text()) == ["loc", "org", "per"]
    assert result.report.dropped == {} and result.report.changed == {}


def test_relations_inferred_and_label_map(tmp_path):
    src = write_lines(tmp_path / "toy.jsonl", LINES)
    label_map = LabelMap({"Work_For": "work for", "PER": "person", "ORG": "organization"}, unknown="keep")
    result = convert("jsonl", str(src), str(tmp_path / "out"), ConvertOptions(label_map=label_map))
    assert result.report.task == "RE"
    records = load(tmp_path / "out", "RE", "toy")
    triples = [[(x.head.name, x.head.type, x.type, x.tail.name, x.tail.type) for x in r.relations] for r in records]
    assert triples == [
        [
            ("Alice", "person", "work for", "Acme", "organization"),
            # A span object takes its type from the entity with the same offsets.
            ("Acme", "organization", "located_in", "Paris", "LOC"),
        ],
        [("Bob", "person", "work for", "Zeta", "organization")],
        [],
    ]
    assert json.loads((tmp_path / "out/RE/toy/labels.json").read_text()) == ["located_in", "work for"]
    assert result.report.labels_unmapped == {"located_in": "located_in", "LOC": "LOC"}


def test_events_and_drop_empty(tmp_path):
    src = write_lines(tmp_path / "ace.jsonl", EVENTS + [{"text": "No event ."}])
    result = convert("jsonl", str(src), str(tmp_path / "out"), ConvertOptions(drop_empty=True, split="dev"))
    records = load(tmp_path / "out", "EE", "ace", "dev")
    assert [
        [(ev.type, ev.trigger, ev.start, [(a.role, a.name, a.start) for a in ev.arguments]) for ev in r.events]
        for r in records
    ] == [
        [
            (
                "conflict.attack",
                "attacked",
                7,
                [("attacker", "Rebels", 0), ("target", "the base", 16), ("time", "Monday", 28)],
            )
        ],
        [("personnel.end", "quit", 3, [("person", "He", 0)]), ("personnel.start", "hired", 20, [])],
    ]
    assert result.report.dropped == {"sentence without events (--drop-empty)": 1}
    assert len(load(tmp_path / "out", "EEA", "ace", "dev")) == 3
    assert json.loads((tmp_path / "out/EEA/ace/labels.json").read_text()) == {
        "conflict.attack": ["attacker", "target", "time"],
        "personnel.end": ["person"],
        "personnel.start": [],
    }


def test_mention_text_comes_from_offsets(tmp_path):
    src = write_lines(
        tmp_path / "train.jsonl",
        [
            {
                "text": "Alice met Bob .",
                "entities": [
                    {"start": 0, "end": 5, "label": "PER", "text": "alice"},
                    {"start": 10, "end": 10, "label": "PER"},
                ],
            }
        ],
    )
    result = convert("jsonl", str(src), str(tmp_path / "out"), ConvertOptions(dataset="t"))
    (record,) = load(tmp_path / "out", "NER", "t")
    assert [(e.name, e.start, e.end) for e in record.entities] == [("Alice", 0, 5)]
    assert result.report.changed == {"given mention text differs from the offsets' slice (slice written)": 1}
    assert result.report.dropped == {"empty span (start == end)": 1}


@pytest.mark.parametrize(
    "line,message",
    [
        ('{"text": "abc", "entities": [{"start": 0, "end": 9, "label": "X"}]}', "outside the text"),
        ('{"text": "abc", "entities": [{"start": 0, "end": 2}]}', "entities\\[0\\]: missing 'label' or 'type'"),
        ('{"text": "abc", "entities": [], "relations": [{"head": 0, "tail": 1, "label": "r"}]}', "out of range"),
        ('{"text": "abc", ', "not valid JSON"),
        ('["abc"]', "expected a JSON object"),
        ('{"entities": []}', "text: missing"),
    ],
)
def test_malformed_lines_name_file_and_line(tmp_path, line, message):
    path = tmp_path / "train.jsonl"
    path.write_text('{"text": "fine"}\n\n' + line + "\n")
    with pytest.raises(ConversionError, match=message) as info:
        convert("jsonl", str(path), str(tmp_path / "out"), ConvertOptions())
    assert (info.value.path, info.value.line) == (str(path), 3)
