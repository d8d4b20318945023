"""Records loader: validation errors, lenient counting, offset re-alignment, and every shared dataset.

Checked against: the layout rules of ../shared/data/README.md and FORMATS.md (hand-written records with
known offsets), and the real shared data (whose offsets were verified when it was written).
"""

from __future__ import annotations

import json

import pytest

from iuie.ie import records as R

NER_LABELS = ["person", "location"]


def write_dataset(root, task, name, split_records, labels=NER_LABELS, split="train", raw=None):
    folder = root / task / name
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "labels.json").write_text(json.dumps(labels))
    path = folder / f"{split}.json"
    path.write_text(raw if raw is not None else json.dumps(split_records))
    return R.DatasetFolder(str(root), task, name), str(path)


def ent(name, etype, pos=None):
    out = {"name": name, "type": etype}
    if pos is not None:
        out["pos"] = pos
    return out


def test_valid_ner_record_keeps_offsets(tmp_path):
    ds, _ = write_dataset(
        tmp_path,
        "NER",
        "toy",
        [
            {
                "sentence": "Ada lives in Paris .",
                "entities": [ent("Ada", "person", [0, 3]), ent("Paris", "location", [13, 18])],
            },
            {"sentence": "Nothing here .", "entities": []},
        ],
    )
    recs, report = ds.load("train", strict=True)
    assert recs[0].entities == (R.Entity("Ada", "person", 0, 3), R.Entity("Paris", "location", 13, 18))
    assert recs[1].entities == ()
    assert (report.total, report.kept, report.num_skipped) == (2, 2, 0)


def test_unreadable_json_names_the_file(tmp_path):
    ds, path = write_dataset(tmp_path, "NER", "toy", None, raw='[{"sentence": ')
    with pytest.raises(R.RecordError, match="unreadable JSON") as e:
        ds.load("train")
    assert e.value.path == path and path in str(e.value)


def test_top_level_must_be_a_list(tmp_path):
    ds, _ = write_dataset(tmp_path, "NER", "toy", {"sentence": "x"})
    with pytest.raises(R.RecordError, match="expected a JSON list"):
        ds.load("train")


@pytest.mark.parametrize(
    "record, field, reason",
    [
        ({"entities": []}, "sentence", "missing field"),
        ({"sentence": "Ada ."}, "entities", "missing field"),
        ({"sentence": 3, "entities": []}, "sentence", "wrong field type"),
        ({"sentence": "Ada .", "entities": [{"type": "person", "pos": [0, 3]}]}, "entities[0].name", "missing field"),
        ({"sentence": "Ada .", "entities": [ent("Ada", "person", [0, "3"])]}, "entities[0].pos", "malformed pos"),
        (
            {"sentence": "Ada .", "entities": [ent("Ada", "robot", [0, 3])]},
            "entities[0].type",
            "label not in labels.json",
        ),
        ({"sentence": "Ada .", "entities": [ent("", "person", [0, 0])]}, "entities[0].name", "empty mention"),
    ],
)
def test_bad_records_name_file_record_and_field(tmp_path, record, field, reason):
    good = {"sentence": "Ada .", "entities": [ent("Ada", "person", [0, 3])]}
    ds, path = write_dataset(tmp_path, "NER", "toy", [good, record])
    with pytest.raises(R.RecordError) as e:
        ds.load("train", strict=True)
    assert (e.value.path, e.value.index, e.value.field) == (path, 1, field)
    assert f"{path}: record 1: field '{field}'" in str(e.value)
    # Lenient mode skips the record and counts the reason: nothing is dropped silently.
    recs, report = ds.load("train", strict=False)
    assert len(recs) == 1 and report.skipped == {reason: 1} and report.total == 2
    assert report.examples and path in report.examples[0]


@pytest.mark.parametrize(
    "pos, reason",
    [
        (None, R.REASON_POS_MISSING),
        ([9, 14], R.REASON_POS_MISMATCH),  # token offsets or shifted offsets
        ([40, 45], "pos out of range: re-aligned by text"),
    ],
)
def test_offsets_are_realigned_in_lenient_mode_and_refused_in_strict(tmp_path, pos, reason):
    sentence = "In Paris , Paris Hilton met Ada ."
    ds, path = write_dataset(
        tmp_path, "NER", "toy", [{"sentence": sentence, "entities": [ent("Paris", "location", pos)]}]
    )
    recs, report = ds.load("train")
    (entity,) = recs[0].entities
    assert sentence[entity.start : entity.end] == "Paris"
    assert report.realigned == {reason: 1} and report.kept == 1
    with pytest.raises(R.RecordError) as e:
        ds.load("train", strict=True)
    assert e.value.field == "entities[0].pos" and e.value.index == 0


def test_mention_absent_from_sentence(tmp_path):
    ds, path = write_dataset(
        tmp_path, "NER", "toy", [{"sentence": "Ada .", "entities": [ent("Bob", "person", [0, 3])]}]
    )
    with pytest.raises(R.RecordError) as e:  # strict: the offsets are refused before any search
        ds.load("train", strict=True)
    assert e.value.field == "entities[0].pos"
    recs, report = ds.load("train")  # lenient: the search finds nothing, the record is skipped and counted
    assert recs == [] and report.skipped == {"mention not in sentence": 1}
    assert "field 'entities[0].name'" in report.examples[0]


def test_realignment_prefers_the_occurrence_nearest_the_given_start():
    sentence = "Paris met Paris in Paris ."
    rec, realigned = R.parse_record(
        {"sentence": sentence, "entities": [ent("Paris", "location", [12, 17])]},
        "NER",
        None,
        path="x",
        index=0,
        strict=False,
    )
    assert (rec.entities[0].start, rec.entities[0].end) == (10, 15)
    assert sum(realigned.values()) == 1


def test_re_record_without_relations_is_valid(tmp_path):
    # The reference refuses RE records with no relation; iuie keeps them (their target is " None").
    ds, _ = write_dataset(tmp_path, "RE", "toy", [{"sentence": "Nothing .", "relations": []}], labels=["work for"])
    recs, report = ds.load("train", strict=True)
    assert recs[0].relations == () and report.kept == 1


def test_re_labels_checked_on_relation_type_not_on_entity_types(tmp_path):
    rel = {"head": ent("Ada", "", [0, 3]), "type": "work for", "tail": ent("IBM", "org", [14, 17])}
    na = {"head": ent("Ada", "", [0, 3]), "type": "NA", "tail": ent("IBM", "org", [14, 17])}
    bad = {"head": ent("Ada", "", [0, 3]), "type": "owns", "tail": ent("IBM", "org", [14, 17])}
    ds, _ = write_dataset(
        tmp_path,
        "RE",
        "toy",
        [
            {"sentence": "Ada works for IBM .", "relations": [rel, na]},
            {"sentence": "Ada works for IBM .", "relations": [bad]},
        ],
        labels=["work for"],
    )
    recs, report = ds.load("train")
    assert [r.type for r in recs[0].relations] == ["work for", "NA"]
    assert report.skipped == {"label not in labels.json": 1}


EE_LABELS = {"attack": ["attacker", "place"], "meet": ["participant"]}


def event(trigger, etype, pos, args=()):
    return {"trigger": trigger, "type": etype, "pos": pos, "arguments": list(args)}


def test_eea_record_needs_exactly_one_event(tmp_path):
    sentence = "Rebels attacked Kyiv and met envoys ."
    two = [event("attacked", "attack", [7, 15]), event("met", "meet", [25, 28])]
    ds, path = write_dataset(tmp_path, "EEA", "toy", [{"sentence": sentence, "events": two}], labels=EE_LABELS)
    with pytest.raises(R.RecordError, match="exactly one event") as e:
        ds.load("train", strict=True)
    assert e.value.field == "events"
    # The same record is fine for EET, which reads the same shape.
    ds2, _ = write_dataset(tmp_path, "EET", "toy", [{"sentence": sentence, "events": two}], labels=EE_LABELS)
    assert len(ds2.load("train", strict=True)[0][0].events) == 2


def test_event_roles_checked_against_the_event_type(tmp_path):
    args = [{"name": "Rebels", "role": "participant", "pos": [0, 6]}]
    ds, _ = write_dataset(
        tmp_path,
        "EET",
        "toy",
        [{"sentence": "Rebels attacked Kyiv .", "events": [event("attacked", "attack", [7, 15], args)]}],
        labels=EE_LABELS,
    )
    with pytest.raises(R.RecordError) as e:
        ds.load("train", strict=True)
    assert e.value.field == "events[0].arguments[0].role"


def test_ee_labels_shape_is_two_lists(tmp_path):
    ds, _ = write_dataset(tmp_path, "EE", "toy", [], labels={"attack": []})
    with pytest.raises(R.RecordError, match=r"\[event types, argument roles\]"):
        ds.labels()
    ds, _ = write_dataset(tmp_path, "EE", "toy2", [], labels=[["attack"], ["attacker"]])
    labels = ds.labels()
    assert labels.types == ("attack",) and labels.roles_for("attack") == ("attacker",)


def test_record_json_round_trip():
    rec = R.Record(
        "Ada attacked Bob .", events=(R.Event("attacked", "attack", 4, 12, (R.Argument("Ada", "attacker", 0, 3),)),)
    )
    assert R.Record.from_json(rec.to_json_string()) == rec
    assert R.Record.from_json(rec.to_json()) == rec


def test_missing_dataset_folder_names_the_path(tmp_path):
    with pytest.raises(R.RecordError, match="not found") as e:
        R.DatasetFolder(str(tmp_path), "NER", "nope").load("test")
    assert str(tmp_path / "NER" / "nope") in str(e.value)


def test_every_shared_dataset_loads_strictly(ie_instructions):
    """The shared slices carry verified character offsets: strict loading must keep every record."""
    folders = R.find_datasets(ie_instructions)
    assert len(folders) == 18  # 11 NER, 4 RE, and CASIE in EE, EET, EEA
    for ds in folders:
        assert ds.splits == ("train", "dev", "test"), ds.path
        for split in ds.splits:
            recs, report = ds.load(split, strict=True)
            assert report.kept == report.total == len(json.load(open(f"{ds.path}/{split}.json"))), ds.path
            assert not report.realigned
