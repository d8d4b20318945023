"""FewRel JSON -> RE layout folders (iuie.convert.fewrel via the pipeline).

Checked against: FewRel's published file shape (thunlp/FewRel ``data/train_wiki.json``: ``{pid: [{"tokens",
"h": [name, qid, [[positions]]], "t": ...}]}``) and its ``pid2name.json`` (``{pid: [name, description]}``),
reproduced by hand here with the first instance of FewRel's P931 example; character offsets worked out by
hand over the space-joined tokens; and the layout loader ``DatasetFolder.load(strict=True)``.
"""

from __future__ import annotations

import json

import pytest

from iuie.convert.labelmap import load_label_map
from iuie.convert.pipeline import ConvertOptions, convert
from iuie.convert.report import ConversionError
from iuie.ie.records import DatasetFolder

TOKENS = [
    "Merpati",
    "flight",
    "106",
    "departed",
    "Jakarta",
    "(",
    "CGK",
    ")",
    "on",
    "a",
    "domestic",
    "flight",
    "to",
    "Tanjung",
    "Pandan",
    "(",
    "TJQ",
    ")",
    ".",
]
FEWREL = {
    "P931": [{"tokens": TOKENS, "h": ["tjq", "Q1331049", [[16]]], "t": ["tanjung pandan", "Q3056359", [[13, 14]]]}],
    "P17": [
        {
            "tokens": ["Lake", "Geneva", "lies", "in", "Switzerland", "and", "France"],
            "h": ["lake geneva", "Q6403", [[0, 1]]],
            "t": ["switzerland", "Q39", [[4], [6]]],
        }
    ],
}
PID2NAME = {
    "P931": ["place served by transport hub", "territorial entity or entities served by this hub"],
    "P17": ["country", "sovereign state of this item"],
}


@pytest.fixture()
def files(tmp_path):
    src = tmp_path / "fewrel"
    src.mkdir()
    (src / "train_wiki.json").write_text(json.dumps(FEWREL))
    (src / "val_wiki.json").write_text(json.dumps({"P17": FEWREL["P17"]}))
    (src / "pid2name.json").write_text(json.dumps(PID2NAME))
    return src


def test_fewrel_with_pid2name(files, tmp_path):
    options = ConvertOptions(label_map=load_label_map(str(files / "pid2name.json")), dataset="FewRel")
    result = convert("fewrel", str(files), str(tmp_path / "out"), options)
    folder = DatasetFolder(str(tmp_path / "out"), "RE", "FewRel")
    assert folder.splits == ("train", "dev")  # val_wiki -> dev; pid2name.json names no split
    train, _ = folder.load("train", strict=True)
    first = train[0]
    assert first.sentence == " ".join(TOKENS)
    (rel,) = first.relations
    # "Merpati flight 106 departed Jakarta ( CGK ) on a domestic flight to " is 68 characters.
    assert (rel.head.name, rel.head.start, rel.head.end) == ("TJQ", 85, 88)
    assert (rel.tail.name, rel.tail.start, rel.tail.end) == ("Tanjung Pandan", 68, 82)
    assert rel.type == "place served by transport hub" and rel.head.type == rel.tail.type == ""
    (rel,) = train[1].relations
    assert (rel.head.name, rel.type, rel.tail.name) == ("Lake Geneva", "country", "Switzerland")
    labels = json.loads((tmp_path / "out/RE/FewRel/labels.json").read_text())
    assert labels == ["country", "place served by transport hub"]
    assert result.report.changed == {"entity with several mentions: the first is used": 2}
    assert result.report.ignored == {"input file not named for a split": 1}
    assert result.report.labels_unmapped == {}


def test_list_form_and_unmapped_code(tmp_path):
    items = [dict(FEWREL["P17"][0], relation="P17")]
    path = tmp_path / "wiki.json"
    path.write_text(json.dumps(items))
    result = convert("fewrel", str(path), str(tmp_path / "out"), ConvertOptions(split="test"))
    (record,), _ = DatasetFolder(str(tmp_path / "out"), "RE", "wiki").load("test", strict=True)
    assert record.relations[0].type == "p17"  # no map: normalized, and listed
    assert result.report.labels_unmapped == {"P17": "p17"}


@pytest.mark.parametrize(
    "instance,message",
    [
        ({"tokens": ["a", "b"], "h": ["a", "Q1", [[0]]], "t": ["c", "Q2", [[5]]]}, "not indices into the 2 tokens"),
        ({"tokens": ["a", "b"], "h": ["a", "Q1", [[0]]]}, "expected \\[name, id, \\[\\[token positions"),
        ({"tokens": "a b", "h": ["a", "Q1", [[0]]], "t": ["b", "Q2", [[1]]]}, "'tokens' must be"),
    ],
)
def test_malformed_instances(tmp_path, instance, message):
    path = tmp_path / "train.json"
    path.write_text(json.dumps({"P1": [instance]}))
    with pytest.raises(ConversionError, match=message) as info:
        convert("fewrel", str(path), str(tmp_path / "out"), ConvertOptions())
    assert info.value.path == str(path) and "relation 'P1', instance 0" in str(info.value)
