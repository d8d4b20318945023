"""Validation that used to say nothing (issue 13.2): each case gives one clear message or a counted note.

Checked against the project's rule (HELPERS/DESIGN: bad input gets one line naming the file, the record and
the field; nothing is dropped or repeated without being counted and reported) on hand-made files.
"""

from __future__ import annotations

import json

import pytest

from iuie import cli
from iuie.ie import records as R

SENTENCE = "Anna Berg works for Acme ."


def _folder(tmp_path, task, labels, split_records, name="d"):
    folder = tmp_path / task / name
    folder.mkdir(parents=True)
    (folder / "labels.json").write_text(json.dumps(labels) if not isinstance(labels, str) else labels)
    (folder / "train.json").write_text(json.dumps(split_records))
    return R.DatasetFolder(str(tmp_path), task, name), folder


@pytest.mark.parametrize(
    "task, labels, field",
    [("NER", [], "labels"), ("RE", [], "labels"), ("EE", [[], ["who"]], "labels[0]"), ("EET", {}, "labels")],
)
def test_an_empty_label_list_is_an_error_naming_the_file(tmp_path, task, labels, field):
    dataset, folder = _folder(tmp_path, task, labels, [])
    with pytest.raises(R.RecordError) as caught:
        dataset.labels()
    message = str(caught.value)
    assert message.startswith(str(folder / "labels.json"))
    assert f"field '{field}'" in message and "the label list is empty" in message


@pytest.mark.parametrize(
    "task, labels, field, label",
    [
        ("NER", ["person", "org", "person"], "labels", "person"),
        ("EE", [["attack"], ["who", "who"]], "labels[1]", "who"),
        ("EEA", {"attack": ["who", "where", "who"]}, "labels['attack']", "who"),
        ("EET", '{"attack": ["who"], "attack": ["where"]}', "labels", "attack"),  # a key listed twice
    ],
)
def test_duplicate_labels_are_an_error(tmp_path, task, labels, field, label):
    dataset, folder = _folder(tmp_path, task, labels, [])
    with pytest.raises(R.RecordError) as caught:
        dataset.labels()
    assert str(caught.value) == f"{folder / 'labels.json'}: field '{field}': duplicate label '{label}' (listed 2 times)"


def _relation_record(head_pos):
    return {
        "sentence": SENTENCE,
        "entities": [
            {"name": "Anna Berg", "type": "person", "pos": [0, 9]},
            {"name": "Acme", "type": "org", "pos": [20, 24]},
        ],
        "relations": [
            {
                "head": {"name": "Anna", "type": "person", "pos": head_pos},
                "type": "work for",
                "tail": {"name": "Acme", "type": "org", "pos": [20, 24]},
            }
        ],
    }


def test_a_relation_mention_not_among_the_entities_is_counted_or_refused(tmp_path):
    dataset, folder = _folder(tmp_path, "RE", ["work for"], [_relation_record([0, 4]), _relation_record([0, 4])])
    # Lenient: kept and counted (the head "Anna" is not the entity "Anna Berg").
    kept, report = dataset.load("train")
    assert len(kept) == 2 and report.notes[R.REASON_RELATION_MENTION] == 2
    assert "2 (relation head or tail not among the record's entities)" in report.summary()
    with pytest.raises(R.RecordError) as caught:
        dataset.load("train", strict=True)
    assert str(caught.value) == (
        f"{folder / 'train.json'}: record 0: field 'relations[0].head': "
        "'Anna' at [0, 4] is not among the record's entities"
    )
    # A relation joining two listed entities is fine, and RE records without "entities" are not checked.
    good = _relation_record([0, 9])
    good["relations"][0]["head"]["name"] = "Anna Berg"
    without = {k: v for k, v in _relation_record([0, 4]).items() if k != "entities"}
    assert R.parse_records([good, without], "RE", None, path="x.json", strict=True)[1].notes == {}


def test_duplicated_records_are_counted_and_reported_not_refused(tmp_path):
    record = {"sentence": SENTENCE, "entities": [{"name": "Acme", "type": "org", "pos": [20, 24]}]}
    other = {"sentence": "Bob .", "entities": []}
    dataset, folder = _folder(tmp_path, "NER", ["org"], [record, other, record, dict(record)])
    for strict in (False, True):
        kept, report = dataset.load("train", strict=strict)
        assert len(kept) == 4
        assert report.notes[R.REASON_DUPLICATE] == 2
        assert "counted 2 (duplicate record (kept))" in report.summary()
        assert f"{folder / 'train.json'}: record 2: duplicate of record 0 (kept)" in report.examples


@pytest.mark.parametrize(
    "pos, what",
    [([-4, 4], "negative"), ([9, 4], "reversed (start > end)"), ([20, 99], "past the end")],
)
def test_bad_offsets_in_strict_mode_show_the_offsets_not_an_empty_slice(tmp_path, pos, what):
    name = {(-4): "Anna", 9: "Anna", 20: "Acme"}[pos[0]]
    record = {"sentence": SENTENCE, "entities": [{"name": name, "type": "org", "pos": pos}]}
    dataset, folder = _folder(tmp_path, "NER", ["org"], [record])
    with pytest.raises(R.RecordError) as caught:
        dataset.load("train", strict=True)
    assert str(caught.value) == (
        f"{folder / 'train.json'}: record 0: field 'entities[0].pos': {pos!r} is not a span of the sentence: "
        f"start {pos[0]}, end {pos[1]} {what} (sentence length {len(SENTENCE)}), for {name!r}"
    )
    assert "gives ''" not in str(caught.value)


def test_iuie_score_counts_and_warns_about_duplicated_rows(tmp_path, capsys):
    row = {
        "Task": "NER",
        "Dataset": "d",
        "Instance": {"sentence": SENTENCE, "ground_truth": " org: Acme", "instruction": "Option: org \nText: {0}"},
        "Prediction": " org: Acme",
    }
    other = {**row, "Prediction": " None"}
    path = tmp_path / "p.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in (row, other, row, row)) + "\n", encoding="utf-8")
    rc = cli.main(["score", str(path), "--mode", "reference", "--json", str(tmp_path / "s.json")])
    err = capsys.readouterr().err
    assert rc == 0
    assert f"iuie score: warning: {path}: 2 of 4 rows repeat an earlier row exactly (lines 3, 4)" in err
    # Scored as given: three correct rows and one empty answer.
    assert json.loads((tmp_path / "s.json").read_text())["NER"]["d"]["tp"] == 3


def test_strict_mode_counts_the_mentions_only_the_alignment_fallback_placed():
    """Issue 13.1: the case-insensitive fallback stays (a TP here), but the metrics and the report count it."""
    from iuie.ie import metrics, report
    from iuie.ie.records import Entity, Record

    record = Record(SENTENCE, (Entity("Anna Berg", "person", 0, 9), Entity("Acme", "org", 20, 24)))
    gold = metrics.Gold("NER", record, " person: Anna Berg; org: Acme")
    got = metrics.score("NER", [gold], [" person: anna  berg; org: Acme"], "strict")
    assert (got["tp"], got["fp"], got["fn"], got["fallback"]) == (2, 0, 0, 1)
    table = report.Report("strict", {"NER": {"d": got}}).to_text()
    header = table.splitlines()[1].split()
    row = table.splitlines()[3].split()
    assert header[-2:] == ["Halluc", "Fallbk"] and row[0] == "d" and row[-1] == "1"
