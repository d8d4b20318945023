"""``iuie convert-data`` end to end through ``iuie.cli.main``, plus the shared label-map and split rules.

Checked against: the command's documented interface (FORMAT SRC DST, ``--labels-map``, ``--task``,
``--dataset``, ``--split``, exit status 0 on success and 2 with ``error: FILE:LINE: ...`` on malformed
input); the layout loader ``DatasetFolder.load(strict=True)`` on what the command wrote; FewRel's
``pid2name.json`` shape for label maps; CoNLL-2003's and FewRel's own file names for split detection.
"""

from __future__ import annotations

import json

import pytest

from iuie.cli import main
from iuie.convert.labelmap import LabelMap, normalize_label, parse_label_map
from iuie.convert.report import ConversionError
from iuie.convert.splits import split_of
from iuie.ie.records import DatasetFolder


def conll_corpus(root):
    root.mkdir()
    (root / "train.txt").write_text("John B-PER\nSmith I-PER\nvisited O\nRome B-LOC\n\nHi O\n")
    (root / "valid.txt").write_text("Ann B-PER\n")
    (root / "test.txt").write_text("Paris B-LOC\nis O\nnice O\n")
    return root


def test_conll_end_to_end(tmp_path, capsys):
    src = conll_corpus(tmp_path / "raw")
    labels_map = tmp_path / "map.json"
    labels_map.write_text(json.dumps({"PER": "person", "LOC": "location"}))
    rc = main(
        [
            "convert-data",
            "conll",
            str(src),
            str(tmp_path / "out"),
            "--labels-map",
            str(labels_map),
            "--dataset",
            "My Set",
        ]
    )
    out = capsys.readouterr().out
    assert rc == 0
    assert "train: 2 records" in out and "wrote " in out
    folder = DatasetFolder(str(tmp_path / "out"), "NER", "My Set")
    assert folder.splits == ("train", "dev", "test")
    train, _ = folder.load("train", strict=True)
    assert [(e.name, e.type, e.start, e.end) for e in train[0].entities] == [
        ("John Smith", "person", 0, 10),
        ("Rome", "location", 19, 23),
    ]
    assert json.loads((tmp_path / "out/NER/My Set/labels.json").read_text()) == ["location", "person"]
    report = json.loads((tmp_path / "out/NER/My Set/conversion_report.json").read_text())
    assert report["labels"]["mapped"] == {"LOC": "location", "PER": "person"}
    assert report["splits"]["dev"]["files"] == [str(src / "valid.txt")]

    # The folder exists: refused without --overwrite, replaced (no stale split left) with it.
    rc = main(["convert-data", "conll", str(src / "train.txt"), str(tmp_path / "out"), "--dataset", "My Set"])
    assert rc == 2 and "pass --overwrite" in capsys.readouterr().err
    rc = main(
        [
            "convert-data",
            "conll",
            str(src / "train.txt"),
            str(tmp_path / "out"),
            "--dataset",
            "My Set",
            "--overwrite",
            "--unknown-labels",
            "keep",
        ]
    )
    assert rc == 0 and folder.splits == ("train",)
    assert json.loads((tmp_path / "out/NER/My Set/labels.json").read_text()) == ["LOC", "PER"]


def test_errors_exit_2_naming_file_and_line(tmp_path, capsys):
    bad = tmp_path / "train.txt"
    bad.write_text("John B-PER\nSmith I_PER\n")
    assert main(["convert-data", "conll", str(bad), str(tmp_path / "out")]) == 2
    assert capsys.readouterr().err.startswith(f"error: {bad}:2: tag 'I_PER'")
    assert main(["convert-data", "conll", str(tmp_path / "missing"), str(tmp_path / "out")]) == 2
    assert "not found" in capsys.readouterr().err
    bad.write_text("John B-PER\n")
    assert main(["convert-data", "conll", str(bad), str(tmp_path / "out"), "--task", "RE"]) == 2
    assert "gives NER records, not RE" in capsys.readouterr().err
    (tmp_path / "map.json").write_text('{"PER": 3}')
    assert (
        main(["convert-data", "conll", str(bad), str(tmp_path / "out"), "--labels-map", str(tmp_path / "map.json")])
        == 2
    )
    assert "label map entry 'PER'" in capsys.readouterr().err
    with pytest.raises(SystemExit) as info:
        main(["convert-data", "xml", str(bad), str(tmp_path / "out")])
    assert info.value.code == 2


def test_brat_jsonl_fewrel_through_the_cli(tmp_path, capsys):
    brat = tmp_path / "brat"
    brat.mkdir()
    (brat / "a.txt").write_text("North and South Korea met. Seoul hosted.")
    (brat / "a.ann").write_text("T1\tGPE 0 5;16 21\tNorth Korea\nT2\tGPE 10 21\tSouth Korea\nT3\tGPE 27 32\tSeoul\n")
    assert (
        main(
            [
                "convert-data",
                "brat",
                str(brat),
                str(tmp_path / "out"),
                "--no-sentence-split",
                "--discontinuous",
                "merge",
                "--split",
                "test",
            ]
        )
        == 0
    )
    (record,), _ = DatasetFolder(str(tmp_path / "out"), "NER", "brat").load("test", strict=True)
    assert [(e.name, e.start) for e in record.entities] == [
        ("North and South Korea", 0),
        ("South Korea", 10),
        ("Seoul", 27),
    ]
    assert "discontinuous span merged" in capsys.readouterr().out

    jsonl = tmp_path / "rel.jsonl"
    jsonl.write_text(
        json.dumps(
            {
                "text": "Ann met Bob .",
                "entities": [{"start": 0, "end": 3, "label": "PER"}, {"start": 8, "end": 11, "label": "PER"}],
                "relations": [{"head": 0, "tail": 1, "label": "Other"}, {"head": 1, "tail": 0, "label": "knows"}],
            }
        )
        + "\n"
    )
    (tmp_path / "na.json").write_text('{"Other": "NA"}')
    assert (
        main(["convert-data", "jsonl", str(jsonl), str(tmp_path / "out"), "--labels-map", str(tmp_path / "na.json")])
        == 0
    )
    (record,), _ = DatasetFolder(str(tmp_path / "out"), "RE", "rel").load("train", strict=True)
    assert record.relations[0].type == "NA"
    # NA marks "no relation": never a label.
    assert json.loads((tmp_path / "out/RE/rel/labels.json").read_text()) == ["knows"]
    # A dataset whose relations are all NA would have an empty label list, which loading refuses (issue 13.2):
    # the conversion's own strict re-load names labels.json in one line, exit 2.
    only_na = tmp_path / "only_na.jsonl"
    only_na.write_text(
        json.dumps({**json.loads(jsonl.read_text()), "relations": [{"head": 0, "tail": 1, "label": "Other"}]}) + "\n"
    )
    capsys.readouterr()
    code = main(
        ["convert-data", "jsonl", str(only_na), str(tmp_path / "out_na"), "--labels-map", str(tmp_path / "na.json")]
    )
    assert code == 2
    assert "labels.json: field 'labels': the label list is empty" in capsys.readouterr().err

    fewrel = tmp_path / "val_wiki.json"
    fewrel.write_text(
        json.dumps(
            {
                "P17": [
                    {
                        "tokens": ["Rome", "is", "in", "Italy"],
                        "h": ["rome", "Q220", [[0]]],
                        "t": ["italy", "Q38", [[3]]],
                    }
                ]
            }
        )
    )
    (tmp_path / "pid2name.json").write_text(json.dumps({"P17": ["country", "sovereign state"]}))
    assert (
        main(
            [
                "convert-data",
                "fewrel",
                str(fewrel),
                str(tmp_path / "out"),
                "--labels-map",
                str(tmp_path / "pid2name.json"),
                "--dataset",
                "FewRel",
                "--split",
                "dev",
            ]
        )
        == 0
    )
    (record,), _ = DatasetFolder(str(tmp_path / "out"), "RE", "FewRel").load("dev", strict=True)
    assert (record.relations[0].head.name, record.relations[0].type) == ("Rome", "country")


def test_help_lists_the_formats(capsys):
    with pytest.raises(SystemExit) as info:
        main(["convert-data", "--help"])
    assert info.value.code == 0
    out = capsys.readouterr().out
    assert "{conll,brat,jsonl,fewrel}" in out and "--labels-map" in out and "--no-sentence-split" in out


def test_label_map_rules():
    assert normalize_label("OrgBased_In") == "org based in"
    assert normalize_label("creative-work") == "creative work"
    assert normalize_label("PER") == "per"
    assert parse_label_map({"P17": ["country", "sovereign state"], "PER": "person"}).names == {
        "P17": "country",
        "PER": "person",
    }
    assert LabelMap({"PER": "person"}).name("PER") == ("person", True)
    assert LabelMap({}, unknown="keep").name("Live_In") == ("Live_In", False)
    with pytest.raises(ConversionError, match="expected a non-empty name"):
        parse_label_map({"X": []})
    with pytest.raises(ConversionError, match="a label map is a JSON object"):
        parse_label_map(["person"])


@pytest.mark.parametrize(
    "name,split",
    [
        ("train.txt", "train"),
        ("eng.testa", "dev"),
        ("eng.testb", "test"),
        ("btc.dev", "dev"),
        ("val_wiki.json", "dev"),
        ("train.ADE0.json", "train"),
        ("devel.tsv", "dev"),
        ("validation.jsonl", "dev"),
        ("emerging.test.annotated", "test"),
        ("wnut17train.conll", None),
        ("pid2name.json", None),
        ("train_test.txt", None),
    ],
)
def test_split_names(name, split):
    assert split_of(name) == split
