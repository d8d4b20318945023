"""``iuie score`` end to end on a predictions file written here, in the reference's
predict_eval_predictions.jsonl shape (``src/run_uie.py``: Task, Dataset, Instance, Prediction).

Checked against: hand-worked counts for the rows below (reference rules of shared/FORMATS.md and the
strict rules of iuie.ie.metrics), the ``--json`` shape the brief fixes, and errors that name file, line, field.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from iuie import cli
from iuie.commands.score import options_from_instruction
from iuie.ie.records import Entity, Record

S1 = "Bob met Ann in Paris ."
R1 = Record(S1, (Entity("Bob", "person", 0, 3), Entity("Ann", "person", 8, 11), Entity("Paris", "location", 15, 20)))
S2 = "Bob works for ACME ."
NER_INSTRUCTION = "Find entities. Option: person, location \nText: {0} \nAnswer:"
RE_INSTRUCTION = "Find relations. Option: work for, live in \nText: {0} \nAnswer:"
EE_INSTRUCTION = (
    "Find events. Option: Event type: ['attack'], Arguments type: ['attacker', 'victim']. \nText: {0} \nAnswer:"
)


def row(task, dataset, sentence, ground_truth, prediction, instruction="", record=None):
    out = {
        "Task": task,
        "Dataset": dataset,
        "Instance": {
            "id": "0",
            "sentence": sentence,
            "label": ground_truth,
            "ground_truth": ground_truth,
            "instruction": instruction,
        },
        "Prediction": prediction,
    }
    if record is not None:
        out["record"] = record.to_json()
    return out


ROWS = [
    # NER/CoNLL: TP 2 (Bob, Paris), FP 1 (location: Ann), FN 1 (person: Ann), both modes.
    row(
        "NER",
        "CoNLL",
        S1,
        " person: Bob; person: Ann; location: Paris",
        " person: Bob; location: Ann; location: Paris",
        NER_INSTRUCTION,
        R1,
    ),
    # NER/ZZ: a perfect prediction; no record (strict rebuilds the gold from the text).
    row("NER", "zz", S1, " person: Bob", " person: Bob", NER_INSTRUCTION),
    # RE: the NA relation is in ground_truth only. Reference: TP 1, FN 1 (na:...). Strict: TP 1.
    row("RE", "conll04", S2, " work for: Bob, ACME; NA: ACME, Bob", " work for: Bob, ACME", RE_INSTRUCTION),
    # EE: reordered arguments are still correct (accuracy 100); strict: trigger and both arguments match.
    row(
        "EE",
        "CASIE",
        "Hackers attacked the bank .",
        " ( attack: attacked, Hackers: attacker, the bank: victim) ",
        "( attack: attacked, the bank: victim, Hackers: attacker)",
        EE_INSTRUCTION,
    ),
]


@pytest.fixture
def predictions(tmp_path):
    path = tmp_path / "predict_eval_predictions.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in ROWS) + "\n\n", encoding="utf-8")
    return path


def run_score(capsys, *argv):
    rc = cli.main(["score", *map(str, argv)])
    captured = capsys.readouterr()
    return rc, captured.out, captured.err


def test_reference_mode(predictions, tmp_path, capsys):
    out_json = tmp_path / "scores.json"
    rc, out, err = run_score(capsys, predictions, "--mode", "reference", "--json", out_json)
    assert rc == 0, err
    assert "NER: Named entity recognition (reference)" in out and "Average" in out
    assert "CoNLL" in out and "conll04" in out and "CASIE" in out
    scores = json.loads(out_json.read_text())
    assert set(scores) == {"NER", "RE", "EE"}
    assert set(scores["NER"]) == {"CoNLL", "zz", "Average"}
    conll = scores["NER"]["CoNLL"]
    assert {"precision", "recall", "f1"} <= set(conll)
    assert (conll["tp"], conll["fp"], conll["fn"]) == (2, 1, 1)
    assert conll["f1"] == pytest.approx(200 / 3)
    assert scores["NER"]["Average"]["f1"] == pytest.approx((200 / 3 + 100) / 2)
    assert (scores["RE"]["conll04"]["tp"], scores["RE"]["conll04"]["fn"]) == (1, 1)
    assert scores["EE"]["CASIE"]["accuracy"] == 100.0
    assert scores["EE"]["Average"]["accuracy"] == 100.0


def test_strict_mode_warns_once_about_rows_without_a_record(predictions, tmp_path, capsys):
    out_json = tmp_path / "scores.json"
    rc, out, err = run_score(capsys, predictions, "--mode", "strict", "--json", out_json)
    assert rc == 0
    assert err.count("warning") == 1 and "3 of 4 rows carry no 'record'" in err
    scores = json.loads(out_json.read_text())
    conll = scores["NER"]["CoNLL"]
    assert (conll["tp"], conll["fp"], conll["fn"], conll["hallucinated"]) == (2, 1, 1, 0)
    assert scores["NER"]["zz"]["f1"] == 100.0
    assert scores["RE"]["conll04"]["f1"] == 100.0
    casie = scores["EE"]["CASIE"]
    assert casie["trigger_f1"] == 100.0 and casie["argument_f1"] == 100.0 and casie["f1"] == 100.0
    assert "Trig-F1" in out and "Arg-F1" in out


def test_options_are_read_back_from_the_reference_template():
    assert options_from_instruction("NER", NER_INSTRUCTION) == ["person", "location"]
    assert options_from_instruction("EE", EE_INSTRUCTION) == [["attack"], ["attacker", "victim"]]
    assert options_from_instruction("EEA", "Event type: attack \n  Option: attacker, victim \nText: {0}") == [
        "attacker",
        "victim",
    ]
    assert options_from_instruction("NER", "no options here") is None


@pytest.mark.parametrize(
    "line, field, message",
    [
        ("not json", None, "not valid JSON"),
        ("[1, 2]", None, "expected a JSON object"),
        (json.dumps({"Dataset": "d", "Instance": {}, "Prediction": ""}), "Task", "missing"),
        (json.dumps({"Task": "POS", "Dataset": "d", "Instance": {}, "Prediction": ""}), "Task", "unknown task"),
        (
            json.dumps({"Task": "NER", "Dataset": "d", "Instance": {"sentence": "s"}, "Prediction": ""}),
            "Instance.ground_truth",
            "missing",
        ),
        (
            json.dumps(
                {"Task": "NER", "Dataset": "d", "Instance": {"ground_truth": " None", "sentence": "s"}, "Prediction": 3}
            ),
            "Prediction",
            "expected str, got int",
        ),
        (
            json.dumps(
                {
                    "Task": "NER",
                    "Dataset": "d",
                    "Instance": {"ground_truth": " None", "sentence": "Bob"},
                    "Prediction": "",
                    "record": {"sentence": "Bob", "entities": [{"name": "Bob", "type": "person", "pos": [1, 3]}]},
                }
            ),
            "record.entities[0].pos",
            "'ob'",
        ),
    ],
)
def test_bad_row_names_file_line_and_field(tmp_path, capsys, line, field, message):
    path = tmp_path / "bad.jsonl"
    path.write_text(json.dumps(ROWS[0]) + "\n" + line + "\n", encoding="utf-8")
    rc, out, err = run_score(capsys, path, "--mode", "reference")
    assert rc == 2 and out == ""
    assert f"{path}:2" in err and message in err
    if field:
        assert f"field '{field}'" in err


def test_strict_mode_needs_a_sentence_without_a_record(tmp_path, capsys):
    path = tmp_path / "bad.jsonl"
    bad = {"Task": "NER", "Dataset": "d", "Instance": {"ground_truth": " None"}, "Prediction": " None"}
    path.write_text(json.dumps(bad) + "\n", encoding="utf-8")
    assert run_score(capsys, path, "--mode", "reference")[0] == 0
    rc, _, err = run_score(capsys, path, "--mode", "strict")
    assert rc == 2 and f"{path}:1: field 'Instance.sentence': missing" in err


def test_missing_or_empty_file(tmp_path, capsys):
    rc, _, err = run_score(capsys, tmp_path / "nope.jsonl")
    assert rc == 2 and "nope.jsonl" in err
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n", encoding="utf-8")
    rc, _, err = run_score(capsys, empty)
    assert rc == 2 and "no rows" in err


def test_command_line_entry_point(predictions):
    # The real `iuie` dispatcher in a fresh interpreter: help line and a run.
    done = subprocess.run(
        [sys.executable, "-m", "iuie.cli", "score", str(predictions), "--mode", "strict"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert "Relation extraction (strict)" in done.stdout


def test_report_tables_and_average():
    # The paper's averages: the plain mean over datasets of each percentage (not of the counts).
    from iuie.ie.report import Report

    report = Report("reference")
    report.add("RE", "b-set", {"precision": 50.0, "recall": 100.0, "f1": 200 / 3, "tp": 1, "fp": 1, "fn": 0})
    report.add("RE", "A-set", {"precision": 100.0, "recall": 50.0, "f1": 200 / 3, "tp": 1, "fp": 0, "fn": 1})
    report.add("NER", "x", {"precision": 0.0, "recall": 0.0, "f1": 0.0, "tp": 0, "fp": 0, "fn": 0})
    data = report.to_json()
    assert list(data) == ["NER", "RE"]  # main tasks in the paper's order
    assert list(data["RE"]) == ["A-set", "b-set", "Average"]  # datasets sorted ignoring case
    assert data["RE"]["Average"] == {"precision": 75.0, "recall": 75.0, "f1": pytest.approx(200 / 3)}
    text = report.to_text()
    assert text.index("NER:") < text.index("RE:")
    average_line = [line for line in text.splitlines() if line.startswith("Average")][-1]
    assert average_line.split() == ["Average", "75.00", "75.00", "66.67"]
    assert Report("reference", data).to_json() == data  # reads its own JSON back
    with pytest.raises(ValueError, match="Average"):
        report.add("RE", "Average", {})
