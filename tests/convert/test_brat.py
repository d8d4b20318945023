"""BRAT standoff (.txt + .ann) -> NER, RE and EE layout folders (iuie.convert.brat via the pipeline).

Checked against: the BRAT standoff format as its documentation defines it (https://brat.nlplab.org/
standoff.html: T/R/E/A/N/*/# lines, ``start end;start end`` fragments, ``Role:ID`` arguments, numbered
repeated roles); the ``.ann`` files written here, whose document offsets are mapped back from every written
mention (sentence start in the document + ``pos`` must equal the T line's offsets: offsets survive the
sentence split); and the layout loader ``DatasetFolder.load(strict=True)``, which checks that every mention's
text equals its sentence slice.
"""

from __future__ import annotations

import json

import pytest

from iuie.convert.brat import split_sentences
from iuie.convert.labelmap import LabelMap
from iuie.convert.pipeline import ConvertOptions, convert
from iuie.convert.report import ConversionError
from iuie.ie.records import DatasetFolder

TEXT = (
    "Alice Smith works for Acme Corp. in Paris. Dr. Bob Jones attacked Carol in\n"
    "London yesterday. Carol joined Yahoo! Inc. last year. North and South Korea met.\n"
    "The strike killed Bob.\n"
)


def at(text, needle, nth=0):
    start = -1
    for _ in range(nth + 1):
        start = text.index(needle, start + 1)
    return start, start + len(needle)


def t_line(ident, type_, text, needle, nth=0):
    s, e = at(text, needle, nth)
    return f"{ident}\t{type_} {s} {e}\t{needle}"


def ann_lines(text):
    nk = at(text, "North")[0], at(text, "Korea")[1]
    return [
        t_line("T1", "Person", text, "Alice Smith"),
        t_line("T2", "Organization", text, "Acme Corp"),
        t_line("T3", "Location", text, "Paris"),
        t_line("T4", "Person", text, "Bob Jones"),
        t_line("T5", "Attack", text, "attacked"),
        t_line("T6", "Person", text, "Carol"),
        t_line("T7", "Location", text, "London"),
        # Crosses the (wrong) sentence boundary after "Yahoo!".
        t_line("T8", "Organization", text, "Yahoo! Inc"),
        # Discontinuous: "North ... Korea".
        f"T9\tCountry {nk[0]} {nk[0] + 5};{nk[1] - 5} {nk[1]}\tNorth Korea",
        t_line("T10", "Country", text, "South Korea"),
        t_line("T11", "Attack", text, "strike"),
        t_line("T12", "Die", text, "killed"),
        t_line("T13", "Person", text, "Bob", nth=1),
        t_line("T14", "Person", text, "Carol", nth=1),
        "R1\tWork_For Arg1:T1 Arg2:T2",
        "R2\tLocated_In Arg1:T2 Arg2:T3",
        "R3\tWork_For Arg1:T14 Arg2:T8",  # T8 crosses a sentence boundary
        "R4\tMeet Arg1:T9 Arg2:T10",  # T9 is discontinuous
        "R5\tKnows Arg1:T4 Arg2:T14",  # different sentences
        "E1\tAttack:T5 Attacker:T4 Target:T6 Place:T7",  # Place is in the next sentence
        "E2\tAttack:T11",
        "E3\tDie:T12 Victim:T13 Cause:E2 Victim2:T13",  # an event argument; a numbered role
        "A1\tNegated E1",
        "N1\tReference T1 Wikipedia:123\tAlice Smith",
        "#1\tAnnotatorNotes T1\tcheck",
        "*\tEquiv T4 T13",
    ]


LABEL_MAP = {
    "Person": "person",
    "Organization": "organization",
    "Location": "location",
    "Country": "country",
    "Work_For": "work for",
    "Located_In": "located in",
    "Attack": "attack",
    "Die": "die",
    "Attacker": "attacker",
    "Target": "target",
    "Place": "place",
    "Victim": "victim",
    "Cause": "cause",
}


@pytest.fixture()
def corpus(tmp_path):
    src = tmp_path / "news"
    src.mkdir()
    (src / "doc1.txt").write_text(TEXT, encoding="utf-8")
    (src / "doc1.ann").write_text("\n".join(ann_lines(TEXT)) + "\n", encoding="utf-8")
    return src


def run(corpus, tmp_path, task, **kw):
    options = ConvertOptions(task=task, label_map=LabelMap(LABEL_MAP), **kw)
    return convert("brat", str(corpus), str(tmp_path / "out"), options)


def load(tmp_path, task, split="train"):
    records, _ = DatasetFolder(str(tmp_path / "out"), task, "news").load(split, strict=True)
    return records


def test_sentence_splitter():
    text = 'Dr. J. R. Smith arrived. He left!  "Why?" she asked. e.g. this stays. 3 more.\nNext line'
    sentences = [text[s:e] for s, e in split_sentences(text)]
    assert sentences == [
        "Dr. J. R. Smith arrived.",
        "He left!",
        '"Why?" she asked. e.g. this stays.',
        "3 more.",
        "Next line",
    ]
    assert split_sentences("  \n\n ") == []


def test_ner_offsets_survive_the_split(corpus, tmp_path):
    result = run(corpus, tmp_path, "NER")
    records = load(tmp_path, "NER")
    assert [r.sentence for r in records] == [
        "Alice Smith works for Acme Corp. in Paris.",
        "Dr. Bob Jones attacked Carol in",
        "London yesterday.",
        "Carol joined Yahoo!",
        "Inc. last year.",
        "North and South Korea met.",
        "The strike killed Bob.",
    ]
    by_offsets = {}
    for line in ann_lines(TEXT):
        if line.startswith("T") and ";" not in line:
            ident, middle, name = line.split("\t")
            type_, s, e = middle.split()
            by_offsets[(int(s), int(e))] = (name, LABEL_MAP[type_])
    written = []
    for r in records:
        base = TEXT.index(r.sentence)
        for e in r.entities:
            assert r.sentence[e.start : e.end] == e.name
            assert by_offsets[(base + e.start, base + e.end)] == (e.name, e.type)
            written.append(e.name)
    assert written == [
        "Alice Smith",
        "Acme Corp",
        "Paris",
        "Bob Jones",
        "Carol",
        "London",
        "Carol",
        "South Korea",
        "Bob",
    ]
    report = result.report
    assert dict(report.dropped) == {"entity: discontinuous span skipped": 1, "entity: crosses a sentence boundary": 1}
    assert report.ignored["T used as an event trigger: not an entity"] == 3
    for kind in ("attribute (A) line", "normalization (N) line", "note (#) line", "equivalence (*) line"):
        assert report.ignored[kind] == 1
    assert json.loads((tmp_path / "out/NER/news/labels.json").read_text()) == [
        "country",
        "location",
        "organization",
        "person",
    ]
    saved = json.loads((tmp_path / "out/NER/news/conversion_report.json").read_text())
    assert saved["dropped"] == dict(report.dropped)
    assert saved["examples"]["entity: crosses a sentence boundary"] == [f"{corpus / 'doc1.ann'}:8: T8 'Yahoo! Inc'"]


def test_relations(corpus, tmp_path):
    result = run(corpus, tmp_path, "RE")
    relations = [
        (x.head.name, x.head.type, x.type, x.tail.name, x.tail.type) for r in load(tmp_path, "RE") for x in r.relations
    ]
    assert relations == [
        ("Alice Smith", "person", "work for", "Acme Corp", "organization"),
        ("Acme Corp", "organization", "located in", "Paris", "location"),
    ]
    assert dict(result.report.dropped) == {
        "relation argument: crosses a sentence boundary": 1,
        "relation argument: discontinuous span skipped": 1,
        "relation: dropped with its unusable argument": 2,
        "relation: arguments in different sentences": 1,
    }
    assert json.loads((tmp_path / "out/RE/news/labels.json").read_text()) == ["located in", "work for"]
    # Only written labels go through the map ('Meet' and 'Knows' were dropped before), all of them known.
    assert result.report.labels_unmapped == {}
    assert result.report.labels_mapped == {
        "Work_For": "work for",
        "Located_In": "located in",
        "Person": "person",
        "Organization": "organization",
        "Location": "location",
    }


def test_events_write_ee_eet_eea(corpus, tmp_path):
    result = run(corpus, tmp_path, None)  # inferred: the .ann has E lines
    assert result.report.task == "EE"
    ee = load(tmp_path, "EE")
    events = [(ev.type, ev.trigger, [(a.role, a.name) for a in ev.arguments]) for r in ee for ev in r.events]
    assert events == [
        ("attack", "attacked", [("attacker", "Bob Jones"), ("target", "Carol")]),
        ("attack", "strike", []),
        ("die", "killed", [("victim", "Bob"), ("cause", "strike"), ("victim", "Bob")]),
    ]
    assert [r.to_json() for r in load(tmp_path, "EET")] == [r.to_json() for r in ee]
    eea = load(tmp_path, "EEA")
    assert [(len(r.events), r.events[0].trigger) for r in eea] == [(1, "attacked"), (1, "strike"), (1, "killed")]
    report = result.report
    assert dict(report.dropped) == {"event argument: outside the trigger's sentence": 1}
    assert report.changed == {
        "event argument: an event, written as its trigger span": 1,
        "event argument: role number removed": 1,
    }
    out = tmp_path / "out"
    assert json.loads((out / "EE/news/labels.json").read_text()) == [
        ["attack", "die"],
        ["attacker", "cause", "target", "victim"],
    ]
    assert json.loads((out / "EET/news/labels.json").read_text()) == {
        "attack": ["attacker", "target"],
        "die": ["cause", "victim"],
    }
    assert (out / "EEA/news/labels.json").read_text() == (out / "EET/news/labels.json").read_text()


def test_no_sentence_split_and_merge(corpus, tmp_path):
    result = run(corpus, tmp_path, "NER", sentence_split=False, discontinuous="merge")
    (record,) = load(tmp_path, "NER")
    assert record.sentence == TEXT.strip()
    names = {(e.name, e.start, e.end) for e in record.entities}
    assert ("Yahoo! Inc", *at(TEXT, "Yahoo! Inc")) in names
    assert ("North and South Korea", at(TEXT, "North")[0], at(TEXT, "Korea")[1]) in names
    assert result.report.dropped == {}
    assert result.report.changed == {"entity: discontinuous span merged into one covering span": 1}
    assert result.report.notes["sentence split"] == "one per document"


def test_split_folders_crlf_and_text_mismatch(tmp_path):
    src = tmp_path / "corpus"
    for split in ("train", "dev", "test"):
        (src / split).mkdir(parents=True)
    # CRLF line ends: BRAT offsets count the '\r'.
    (src / "train/a.txt").write_bytes(b"Hello Bob.\r\nBye Ann.")
    (src / "train/a.ann").write_text("T1\tPerson 6 9\tBob\nT2\tPerson 16 19\tAnn\n")
    (src / "dev/b.txt").write_text("Eve ran.")
    (src / "dev/b.ann").write_text("T1\tPerson 0 3\tEva\n")  # text differs from the .txt slice
    (src / "test/c.txt").write_text("Nobody.")
    (src / "test/c.ann").write_text("")
    (src / "test/orphan.txt").write_text("No annotation file.")
    result = convert("brat", str(src), str(tmp_path / "out"), ConvertOptions())
    folder = DatasetFolder(str(tmp_path / "out"), "NER", "corpus")
    assert folder.splits == ("train", "dev", "test")
    train, _ = folder.load("train", strict=True)
    assert [(r.sentence, [(e.name, e.start) for e in r.entities]) for r in train] == [
        ("Hello Bob.", [("Bob", 6)]),
        ("Bye Ann.", [("Ann", 4)]),
    ]
    dev, _ = folder.load("dev", strict=True)
    assert dev[0].entities == ()
    assert result.report.dropped == {"entity: T text differs from the .txt slice": 1}
    assert result.report.ignored[".txt file without an .ann file"] == 1
    with pytest.raises(ConversionError, match="b.ann:1: entity: T text differs"):
        convert("brat", str(src), str(tmp_path / "out2"), ConvertOptions(strict=True))


@pytest.mark.parametrize(
    "ann,line,message",
    [
        ("T1\tPerson 0 3\tEve\nX1\tfoo\n", 2, "not a BRAT annotation line"),
        ("T1\tPerson zero 3\tEve\n", 1, "expected 'Type start end"),
        ("T1\tPerson 0 3\tEve\nR1\tKnows Arg1:T1\n", 2, "a relation needs two arguments"),
        ("T1\tPerson 0 3\tEve\nR1\tKnows Arg1:T1 Arg2:T9\n", 2, "unknown annotation 'T9'"),
        ("T1\tPerson 0 30\tEve\n", 1, "beyond the end of the .txt file"),
        ("T1\tPerson 0 3\tEve\nT1\tPerson 0 3\tEve\n", 2, "used twice"),
    ],
)
def test_malformed_ann_names_file_and_line(tmp_path, ann, line, message):
    (tmp_path / "d.txt").write_text("Eve ran.")
    (tmp_path / "d.ann").write_text(ann)
    with pytest.raises(ConversionError, match=message) as info:
        convert("brat", str(tmp_path), str(tmp_path / "out"), ConvertOptions(task="RE"))
    assert info.value.path == str(tmp_path / "d.ann") and info.value.line == line


def test_missing_txt(tmp_path):
    (tmp_path / "d.ann").write_text("T1\tPerson 0 3\tEve\n")
    with pytest.raises(ConversionError, match="d.txt: the .txt file of this .ann file is missing"):
        convert("brat", str(tmp_path), str(tmp_path / "out"), ConvertOptions())
