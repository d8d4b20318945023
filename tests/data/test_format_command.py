"""``iuie format`` end to end, through ``iuie.cli.main``.

Checked against: iuie.ie.formats / iuie.ie.records called directly on the same files (the command must add nothing
of its own to the strings), the real shared data (file order and indices), hand-written toy datasets with bad
records (lenient skips keep the file's indices; ``--strict`` exits 2 naming file, record and field), and the
documented seed derivation of ``--strategy multiple``.
"""

from __future__ import annotations

import json

import pytest

from iuie.cli import main
from iuie.ie.formats import format_view
from iuie.ie.instructions import DEFAULT_INSTRUCTIONS, example_rng, load_instruction_file
from iuie.ie.records import DatasetFolder, Record

FIELDS = {"inputs", "targets", "ground_truth", "instruction", "record", "index", "task", "dataset", "split"}


def read_lines(path):
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def write_dataset(root, task, name, records, labels, split="test"):
    folder = root / task / name
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{split}.json").write_text(json.dumps(records), encoding="utf-8")
    (folder / "labels.json").write_text(json.dumps(labels), encoding="utf-8")
    return folder


def ner(sentence, *entities):
    out = []
    for name, type_ in entities:
        start = sentence.index(name)
        out.append({"name": name, "type": type_, "pos": [start, start + len(name)]})
    return {"sentence": sentence, "entities": out}


TOY = [
    ner("Alice met Bob .", ("Alice", "person"), ("Bob", "person")),
    # Bad: the entity text is not in the sentence.
    {"sentence": "Nobody here .", "entities": [{"name": "Carol", "type": "person", "pos": [0, 5]}]},
    ner("Paris is big .", ("Paris", "location")),
    ner("Nothing here ."),
]


@pytest.fixture()
def toy_root(tmp_path):
    root = tmp_path / "data"
    write_dataset(root, "NER", "toy", TOY, ["person", "location"])
    return root


# ---------------------------------------------------------------------------------------------------------
# Real data
# ---------------------------------------------------------------------------------------------------------


def test_writes_one_json_line_per_record_in_file_order(ie_instructions, shared_data, tmp_path):
    paper_file = shared_data / "instructuie_configs" / "instruction_config.json"
    out = tmp_path / "out.jsonl"
    rc = main(
        [
            "format",
            str(ie_instructions),
            "--task",
            "ner",
            "--dataset",
            "CoNLL 2003",
            "--split",
            "test",
            "--instructions",
            str(paper_file),
            "--limit",
            "25",
            "--output",
            str(out),
        ]
    )
    assert rc == 0
    rows = read_lines(out)
    assert [r["index"] for r in rows] == list(range(25))
    assert all(set(r) == FIELDS for r in rows)
    assert {(r["task"], r["dataset"], r["split"]) for r in rows} == {("NER", "CoNLL 2003", "test")}

    folder = DatasetFolder(str(ie_instructions), "NER", "CoNLL 2003")
    records, _ = folder.load("test", limit=25)
    instruction = load_instruction_file(paper_file).choose("NER")
    for row, record in zip(rows, records):
        assert Record.from_json(row["record"]) == record
        example = format_view("NER", record, folder.labels(), instruction)
        assert (row["inputs"], row["targets"], row["ground_truth"], row["instruction"]) == (
            example.inputs,
            example.targets,
            example.ground_truth,
            example.instruction,
        )
    assert rows[0]["inputs"] == (
        'Please list all entity words in the text that fit the category.Output format is "type1: word1; '
        'type2: word2". \nOption: location, miscellaneous, organization, person \n'
        "Text: SOCCER - JAPAN GET LUCKY WIN , CHINA IN SURPRISE DEFEAT . \nAnswer:"
    )


def test_auxiliary_views_read_their_source_folder(ie_instructions, capsys):
    rc = main(
        ["format", str(ie_instructions), "--task", "EPR", "--dataset", "conll04", "--split", "dev", "--limit", "3"]
    )
    assert rc == 0
    captured = capsys.readouterr()
    rows = [json.loads(line) for line in captured.out.splitlines()]
    assert [r["index"] for r in rows] == [0, 1, 2]
    assert all(r["task"] == "EPR" and " \n Entity Pairs:  " in r["inputs"] for r in rows)
    assert "RE/conll04/dev.json: kept 3 of 3 records" in captured.err


def test_multiple_strategy_is_reproducible_and_independent_of_limit(ie_instructions, tmp_path):
    def run(seed, limit, name):
        out = tmp_path / name
        assert (
            main(
                [
                    "format",
                    str(ie_instructions),
                    "--task",
                    "RE",
                    "--dataset",
                    "conll04",
                    "--strategy",
                    "multiple",
                    "--seed",
                    str(seed),
                    "--limit",
                    str(limit),
                    "-o",
                    str(out),
                ]
            )
            == 0
        )
        return [r["instruction"] for r in read_lines(out)]

    first = run(1, 40, "a.jsonl")
    assert first == run(1, 40, "b.jsonl")
    assert first[:10] == run(1, 10, "c.jsonl")
    assert len(set(first)) == len(DEFAULT_INSTRUCTIONS.get("RE"))
    assert run(2, 40, "d.jsonl") != first
    # The documented derivation: "{seed}:{view}:{dataset}:{split}:{index}".
    expected = DEFAULT_INSTRUCTIONS.choose("RE", "multiple", example_rng(1, "RE", "conll04", "test", 7))
    assert first[7].startswith(expected)


# ---------------------------------------------------------------------------------------------------------
# Lenient and strict loading
# ---------------------------------------------------------------------------------------------------------


def test_lenient_loading_skips_bad_records_and_keeps_file_indices(toy_root, tmp_path, capsys):
    out = tmp_path / "out.jsonl"
    assert main(["format", str(toy_root), "--task", "NER", "--dataset", "toy", "--output", str(out)]) == 0
    rows = read_lines(out)
    assert [r["index"] for r in rows] == [0, 2, 3]
    assert [r["targets"] for r in rows] == [" person: Alice; person: Bob", " location: Paris", " None"]
    err = capsys.readouterr().err
    assert "kept 3 of 4 records" in err and "mention not in sentence" in err
    assert "record 1" in err and "--strict" in err
    assert "wrote 3 NER examples to" in err


def test_strict_mode_stops_at_the_first_bad_record(toy_root, tmp_path, capsys):
    out = tmp_path / "out.jsonl"
    rc = main(["format", str(toy_root), "--task", "NER", "--dataset", "toy", "--strict", "--output", str(out)])
    assert rc == 2
    err = capsys.readouterr().err
    assert "iuie format: error:" in err
    assert str(toy_root / "NER" / "toy" / "test.json") in err
    assert "record 1" in err and "entities[0].pos" in err
    assert not out.exists()


def test_limit_reads_only_the_first_records(toy_root, capsys):
    assert main(["format", str(toy_root), "--task", "es", "--dataset", "toy", "--limit", "1"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [(r["index"], r["targets"]) for r in rows] == [(0, " Alice, Bob")]


def test_reference_quirks_flag(tmp_path, capsys):
    sentence = "The bug wasn't fixed ."
    record = {
        "sentence": sentence,
        "events": [
            {
                "trigger": "wasn't fixed",
                "type": "patch",
                "pos": [8, 20],
                "arguments": [{"name": "The bug", "role": "issue", "pos": [0, 7]}],
            }
        ],
    }
    root = tmp_path / "data"
    write_dataset(root, "EET", "toy", [record], {"patch": ["issue"]})
    for flags, target in (([], " patch: wasn't fixed"), (["--reference-quirks"], " patch: wasn#$%#t fixed")):
        assert main(["format", str(root), "--task", "EET", "--dataset", "toy", *flags]) == 0
        assert json.loads(capsys.readouterr().out)["targets"] == target


def test_newlines_and_braces_survive_the_json_lines(tmp_path):
    sentence = "line {one}\nline {0} two"
    root = tmp_path / "data"
    write_dataset(root, "NER", "toy", [ner(sentence, ("{one}", "a{b}"))], ["a{b}"])
    out = tmp_path / "out.jsonl"
    assert main(["format", str(root), "--task", "NER", "--dataset", "toy", "-o", str(out)]) == 0
    assert len(out.read_text(encoding="utf-8").splitlines()) == 1
    row = read_lines(out)[0]
    assert row["inputs"].endswith("Option: a{b} \nText: line {one}\nline {0} two \nAnswer:")
    assert row["targets"] == " a{b}: {one}"


# ---------------------------------------------------------------------------------------------------------
# Errors
# ---------------------------------------------------------------------------------------------------------


def test_missing_data_dir(tmp_path, capsys):
    missing = tmp_path / "nowhere"
    assert main(["format", str(missing), "--task", "NER", "--dataset", "toy"]) == 2
    assert f"data directory not found: {missing}" in capsys.readouterr().err


def test_missing_dataset_names_the_expected_path_and_lists_the_datasets(toy_root, capsys):
    write_dataset(toy_root, "NER", "other", TOY[:1], ["person"])
    write_dataset(toy_root, "RE", "rel", [], ["r"])
    assert main(["format", str(toy_root), "--task", "ET", "--dataset", "TOY"]) == 2
    err = capsys.readouterr().err
    assert str(toy_root / "NER" / "TOY") in err
    assert "NER datasets in" in err and "other, toy" in err and "did you mean 'toy'" in err
    assert "rel" not in err


def test_missing_task_folder_points_at_the_ie_instructions_root(ie_instructions, capsys):
    assert main(["format", str(ie_instructions.parent), "--task", "NER", "--dataset", "CoNLL 2003"]) == 2
    err = capsys.readouterr().err
    assert "there are no NER datasets" in err and f"did you mean {ie_instructions}" in err


def test_missing_split(toy_root, capsys):
    assert main(["format", str(toy_root), "--task", "NER", "--dataset", "toy", "--split", "train"]) == 2
    err = capsys.readouterr().err
    assert "train.json not found" in err and "splits in" in err and ": test" in err


def test_unknown_view_is_a_usage_error(toy_root, capsys):
    with pytest.raises(SystemExit) as info:
        main(["format", str(toy_root), "--task", "RC", "--dataset", "toy"])
    assert info.value.code == 2
    assert "unknown task view 'RC'" in capsys.readouterr().err


def test_instruction_file_without_the_view(toy_root, tmp_path, capsys):
    path = tmp_path / "i.json"
    path.write_text(json.dumps({"NER": [{"instruction_type": "zero-shot", "instruction": "x"}]}))
    assert main(["format", str(toy_root), "--task", "ES", "--dataset", "toy", "--instructions", str(path)]) == 2
    err = capsys.readouterr().err
    assert str(path) in err and "'ES'" in err
    assert "kept" not in err  # Checked before any data is read.


def test_bad_instruction_type(toy_root, tmp_path, capsys):
    path = tmp_path / "i.json"
    path.write_text(json.dumps({"NER": [{"instruction_type": "many-shot", "instruction": "x"}]}))
    assert main(["format", str(toy_root), "--task", "NER", "--dataset", "toy", "--instructions", str(path)]) == 2
    assert "task 'NER' entry 0: unknown instruction_type 'many-shot'" in capsys.readouterr().err


def test_help_line():
    from iuie.cli import _summary
    from iuie.commands import format_views

    assert _summary(format_views).startswith("Format one dataset split as one task view")
