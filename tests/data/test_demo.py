"""The demo (README's first command until training lands): runs end to end on the synthetic corpus.

Checked against: the metric modes' rules (gold targets parsed back score 100 in strict mode for every view;
in reference mode every view but RE/EPR scores 100, and RE/EPR miss exactly the NA pairs the reference's
ground truth lists, FORMATS.md's NA remark) and the perturbations the demo applies (they must cost F1).
"""

from __future__ import annotations

import io

from iuie import cli
from iuie.commands import demo
from iuie.ie import instructions
from iuie.ie import records as R


def test_demo_scores_gold_at_100_and_perturbed_below(tmp_path):
    out = io.StringIO()
    reports = demo.run_demo(str(tmp_path), seed=0, test_size=120, out=out)
    strict, reference = reports["strict"].to_json(), reports["reference"].to_json()
    for view in instructions.VIEWS:
        key = "trigger_f1" if view == "EE" else "f1"
        assert strict[view]["synthetic (gold)"][key] == 100.0, view
        assert strict[view]["synthetic (perturbed)"][key] < 100.0, view
    na_pairs = sum(
        rel.type == "NA"
        for rec in R.DatasetFolder(str(tmp_path), "RE", "synthetic").load("test")[0]
        for rel in rec.relations
    )
    assert na_pairs > 0
    for view in instructions.VIEWS:
        gold = reference[view]["synthetic (gold)"]
        if view in ("EE", "EET"):
            assert gold["accuracy"] == 100.0
        elif view in ("RE", "EPR"):
            assert (gold["fp"], gold["fn"]) == (0, na_pairs)
        else:
            assert gold["f1"] == 100.0, view
    text = out.getvalue()
    assert "==== strict mode ====" in text and "==== reference mode ====" in text


def test_demo_command_writes_json(tmp_path):
    assert (
        cli.main(
            [
                "demo",
                "--quick",
                "--workdir",
                str(tmp_path / "w"),
                "--test-size",
                "40",
                "--json",
                str(tmp_path / "s.json"),
            ]
        )
        == 0
    )
    import json

    scores = json.loads((tmp_path / "s.json").read_text())
    assert scores["strict"]["NER"]["synthetic (gold)"]["f1"] == 100.0
    for mode in ("strict", "reference"):  # the figures of `iuie report`, beside the tables
        assert (tmp_path / "w" / f"f1_{mode}.png").stat().st_size > 8_000


def test_demo_refuses_an_older_demo_workdir(tmp_path, capsys):
    """A workdir whose corpus has no stamp was written by an older demo (test names seen in training): training
    on there would report F1 on seen names as F1 on unseen ones, so the demo stops in one line, exit 2."""
    from iuie.ie import synthetic

    synthetic.generate(tmp_path / "synthetic", sizes={"train": 5, "dev": 2, "test": 2})
    assert cli.main(["demo", "--workdir", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and str(tmp_path / "synthetic") in err and "corpus.json" in err
    assert not (tmp_path / "model").exists()
