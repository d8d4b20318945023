"""CoNLL column files -> NER layout (iuie.convert.conll through iuie.convert.pipeline.convert).

Checked against: hand-written column files whose entities and offsets are worked out by hand here; the
textbook definitions of the BIO (IOB2), IOB1 and BIOES tag schemes, re-implemented independently in this
file as *encoders* (character offsets of the written records -> tags), so a round trip input tags ->
layout -> regenerated tags must give back the input exactly; and the layout loader
``DatasetFolder.load(strict=True)`` (iuie.ie.records), which refuses any offset that does not slice to its name.
"""

from __future__ import annotations

import json

import pytest

from iuie.convert.labelmap import LabelMap
from iuie.convert.pipeline import ConvertOptions, convert
from iuie.convert.report import ConversionError
from iuie.ie.records import DatasetFolder

# Multi-token entities, two adjacent entities of one type (the B- in the middle), a type with '-' in it.
BIO = [
    [
        ("EU", "B-ORG"),
        ("rejects", "O"),
        ("German", "B-MISC"),
        ("call", "O"),
        ("to", "O"),
        ("boycott", "O"),
        ("British", "B-MISC"),
        ("lamb", "O"),
        (".", "O"),
    ],
    [
        ("Peter", "B-PER"),
        ("Blackburn", "I-PER"),
        ("Anna", "B-PER"),
        ("Maria", "I-PER"),
        ("Smith", "I-PER"),
        ("met", "O"),
        ("Bob", "B-PER"),
        ("in", "O"),
        ("New", "B-LOC"),
        ("York", "I-LOC"),
        ("City", "I-LOC"),
    ],
    [("Star", "B-creative-work"), ("Wars", "I-creative-work")],
    [("Nothing", "O"), ("here", "O")],
]

BIOES = [
    [
        ("Peter", "B-PER"),
        ("Blackburn", "E-PER"),
        ("Anna", "B-PER"),
        ("Maria", "I-PER"),
        ("Smith", "E-PER"),
        ("met", "O"),
        ("Bob", "S-PER"),
        ("Carl", "S-PER"),
        ("in", "O"),
        ("New", "B-LOC"),
        ("York", "I-LOC"),
        ("City", "E-LOC"),
    ],
    [("EU", "S-ORG"), ("says", "O")],
]

IOB1 = [
    [
        ("Peter", "I-PER"),
        ("Blackburn", "I-PER"),
        ("Anna", "B-PER"),
        ("met", "O"),
        ("Bob", "I-PER"),
        ("in", "O"),
        ("Paris", "I-LOC"),
    ],
]


def write_columns(path, sentences, docstart=True, sep=" ", extra_columns=0):
    lines = ["-DOCSTART- -X- O", ""] if docstart else []
    for sentence in sentences:
        for token, tag in sentence:
            lines.append(sep.join([token] + ["X"] * extra_columns + [tag]))
        lines.append("")
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


def token_spans(sentence):
    """Character spans of the tokens of a space-joined sentence (independent of the converter)."""
    spans, pos = [], 0
    for token in sentence.split(" "):
        spans.append((pos, pos + len(token)))
        pos += len(token) + 1
    return spans


def encode(record, scheme):
    """Tags regenerated from the record's character offsets, by the textbook rules of each scheme."""
    spans = token_spans(record["sentence"])
    tags = ["O"] * len(spans)
    previous = None  # (last token index, type) of the previous entity, for IOB1's B- rule
    for ent in sorted(record["entities"], key=lambda e: e["pos"]):
        start, end = ent["pos"]
        first = next(i for i, s in enumerate(spans) if s[0] == start)
        last = next(i for i, s in enumerate(spans) if s[1] == end)
        etype = ent["type"]
        for i in range(first, last + 1):
            tags[i] = "I-" + etype
        if scheme == "BIO":
            tags[first] = "B-" + etype
        elif scheme == "IOB1":
            if previous == (first - 1, etype):
                tags[first] = "B-" + etype
        elif scheme == "BIOES":
            if first == last:
                tags[first] = "S-" + etype
            else:
                tags[first], tags[last] = "B-" + etype, "E-" + etype
        previous = (last, etype)
    return tags


def load(root, name, split="train", task="NER"):
    records, _ = DatasetFolder(str(root), task, name).load(split, strict=True)
    return [r.to_json() | {"entities": [e.to_json() for e in r.entities]} for r in records]


def labels(root, name, task="NER"):
    return json.loads((root / task / name / "labels.json").read_text())


@pytest.mark.parametrize("scheme,sentences", [("BIO", BIO), ("BIOES", BIOES), ("IOB1", IOB1)])
def test_round_trip_regenerates_the_input_tags(tmp_path, scheme, sentences):
    src = write_columns(tmp_path / "train.txt", sentences)
    options = ConvertOptions(scheme=scheme if scheme == "IOB1" else "auto", label_map=LabelMap(unknown="keep"))
    result = convert("conll", str(src), str(tmp_path / "out"), options)
    assert result.report.dropped == {} and result.report.changed == {}
    assert result.report.notes["tag scheme"][str(src)] == scheme
    records = load(tmp_path / "out", "train")
    assert [r["sentence"] for r in records] == [" ".join(t for t, _ in s) for s in sentences]
    for record, sentence in zip(records, sentences):
        assert encode(record, scheme) == [tag for _, tag in sentence]


def test_offsets_by_hand_and_adjacent_entities(tmp_path):
    src = write_columns(tmp_path / "train.txt", BIO)
    convert("conll", str(src), str(tmp_path / "out"), ConvertOptions(label_map=LabelMap(unknown="keep")))
    second = load(tmp_path / "out", "train")[1]
    assert second["sentence"] == "Peter Blackburn Anna Maria Smith met Bob in New York City"
    assert [(e["name"], e["type"], e["pos"]) for e in second["entities"]] == [
        ("Peter Blackburn", "PER", [0, 15]),
        ("Anna Maria Smith", "PER", [16, 32]),
        ("Bob", "PER", [37, 40]),
        ("New York City", "LOC", [44, 57]),
    ]
    assert load(tmp_path / "out", "train")[3]["entities"] == []


def test_label_map_and_labels_json(tmp_path):
    src = write_columns(tmp_path / "train.txt", BIO)
    label_map = LabelMap({"PER": "person", "LOC": "location", "ORG": "organization", "MISC": "miscellaneous"})
    result = convert("conll", str(src), str(tmp_path / "out"), ConvertOptions(label_map=label_map))
    # 'creative-work' is not in the map: normalized (documented rule) and listed in the report.
    assert labels(tmp_path / "out", "train") == ["creative work", "location", "miscellaneous", "organization", "person"]
    assert result.report.labels_unmapped == {"creative-work": "creative work"}
    assert result.report.label_counts["PER"] == 3
    types = {e["type"] for r in load(tmp_path / "out", "train") for e in r["entities"]}
    assert types == {"person", "location", "organization", "miscellaneous", "creative work"}


def test_splits_and_columns(tmp_path):
    src = tmp_path / "corpus"
    src.mkdir()
    # CoNLL-2003's own file names: eng.train, eng.testa (dev), eng.testb (test); four columns.
    write_columns(src / "eng.train", BIO[:2], extra_columns=2)
    write_columns(src / "eng.testa", BIO[2:3], extra_columns=2)
    write_columns(src / "eng.testb", BIO[3:], extra_columns=2)
    (src / "README").write_text("not data")
    result = convert("conll", str(src), str(tmp_path / "out"), ConvertOptions())
    folder = DatasetFolder(str(tmp_path / "out"), "NER", "corpus")
    assert folder.splits == ("train", "dev", "test")
    assert result.report.ignored["input file not named for a split"] == 1
    assert [r["sentence"] for r in load(tmp_path / "out", "corpus", "dev")] == ["Star Wars"]
    # tag first, token second (the original MIT corpora), tab separated, a token with a space inside.
    lines = ["B-TITLE\tStar Wars", "I-TITLE\tEpisode", "O\tby", "B-DIRECTOR\tLucas", ""]
    (tmp_path / "mit.bio").write_text("\n".join(lines))
    convert(
        "conll",
        str(tmp_path / "mit.bio"),
        str(tmp_path / "out"),
        ConvertOptions(token_column=1, tag_column=0, separator="tab", split="test"),
    )
    record = load(tmp_path / "out", "mit", "test")[0]
    assert record["sentence"] == "Star Wars Episode by Lucas"
    assert [(e["name"], e["type"]) for e in record["entities"]] == [
        ("Star Wars Episode", "title"),
        ("Lucas", "director"),
    ]


def test_ill_formed_sequences_are_decoded_by_the_rule_and_counted(tmp_path):
    bio = [[("a", "O"), ("b", "I-PER"), ("c", "I-PER"), ("d", "I-LOC"), ("e", "B-LOC"), ("f", "I-LOC")]]
    convert(
        "conll",
        str(write_columns(tmp_path / "bio.txt", bio)),
        str(tmp_path / "out"),
        ConvertOptions(scheme="BIO", label_map=LabelMap(unknown="keep")),
    )
    report = json.loads((tmp_path / "out/NER/bio/conversion_report.json").read_text())
    assert report["changed"] == {"I- tag not continuing an entity of its type: starts a new entity": 2}
    assert [(e["name"], e["type"]) for e in load(tmp_path / "out", "bio")[0]["entities"]] == [
        ("b c", "PER"),
        ("d", "LOC"),
        ("e f", "LOC"),
    ]

    bioes = [[("a", "B-PER"), ("b", "O"), ("c", "E-LOC"), ("d", "B-ORG"), ("e", "I-ORG")]]
    result = convert(
        "conll",
        str(write_columns(tmp_path / "bioes.txt", bioes)),
        str(tmp_path / "out"),
        ConvertOptions(label_map=LabelMap(unknown="keep")),
    )
    assert dict(result.report.changed) == {
        "entity not closed by E-: ends at its last tagged token": 2,
        "E- tag not closing an entity of its type: one-token entity": 1,
    }
    assert [(e["name"], e["type"]) for e in load(tmp_path / "out", "bioes")[0]["entities"]] == [
        ("a", "PER"),
        ("c", "LOC"),
        ("d e", "ORG"),
    ]


def test_tab_columns_strip_and_remove_whitespace_tokens(tmp_path):
    path = tmp_path / "train.tsv"
    path.write_text("Hello \tO\n \tO\nNew\tB-LOC\n\tI-LOC\nYork\tI-LOC\n", encoding="utf-8")
    result = convert("conll", str(path), str(tmp_path / "out"), ConvertOptions(separator="tab"))
    record = load(tmp_path / "out", "train")[0]
    assert record["sentence"] == "Hello New York"
    assert record["entities"] == [{"name": "New York", "type": "loc", "pos": [6, 14]}]
    assert result.report.changed["token whitespace stripped"] == 1
    assert result.report.changed["whitespace-only token removed (tag O)"] == 1
    assert result.report.dropped["whitespace-only token with an entity tag removed"] == 1


@pytest.mark.parametrize(
    "content,line,message",
    [
        ("EU B-ORG\nsays X-ORG\n", 2, "'X-ORG' is neither O nor"),
        ("EU B-ORG\n\nsays\n", 3, "expected a token column and a tag column"),
        ("EU S-ORG\n", 1, "does not belong to the BIO scheme"),
    ],
)
def test_malformed_input_names_file_and_line(tmp_path, content, line, message):
    path = tmp_path / "train.txt"
    path.write_text(content)
    with pytest.raises(ConversionError, match=message) as info:
        convert("conll", str(path), str(tmp_path / "out"), ConvertOptions(scheme="BIO"))
    assert info.value.path == str(path) and info.value.line == line
    assert str(info.value).startswith(f"{path}:{line}: ")
