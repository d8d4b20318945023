"""``iuie report``: PNG figures written beside the tables and in the run folder, non-trivial (size, pixel
dimensions, more than one colour), from inputs written the way the binaries write them: report JSON of
:class:`iuie.ie.report.Report` and TensorBoard summaries through clu's writer (``iuie.training.metrics_logging``).

Reference: hand-made metrics (which number each bar shows is fixed by hand), and PNG's own header and pixels
read back with Pillow."""

from __future__ import annotations

import json

import pytest
from PIL import Image

from iuie import cli
from iuie.ie.report import Report
from iuie.reporting import plots


def _run_dir(tmp_path):
    run = tmp_path / "run"
    for step, f1 in ((100, 40.0), (200, 75.5)):
        folder = run / "eval" / f"step_{step}"
        folder.mkdir(parents=True)
        for mode in ("strict", "reference"):
            rep = Report(mode)
            rep.add("NER", "conll03", {"precision": f1, "recall": f1, "f1": f1, "tp": 3, "fp": 1, "fn": 1})
            rep.add("NER", "synthetic", {"precision": 90.0, "recall": 90.0, "f1": 90.0, "tp": 9, "fp": 1, "fn": 1})
            if mode == "strict":
                rep.add("EE", "ace05", {"trigger_f1": 50.0, "argument_f1": 20.0, "trigger_precision": 50.0})
            else:
                rep.add("EE", "ace05", {"accuracy": 33.0, "correct": 1, "examples": 3})
            (folder / f"report_{mode}.json").write_text(json.dumps(rep.to_json()))
    from iuie.training.metrics_logging import create_writer

    writer = create_writer(str(run / "train"), asynchronous=False)
    for step in (50, 100, 150, 200):
        writer.write_scalars(step, {"loss_per_token": 4.0 / step, "accuracy": step / 250, "learning_rate": 1e-3})
    writer.flush()
    writer.close()
    return run


def _check_png(path, min_width=500):
    assert path.stat().st_size > 8_000, path
    width, height = plots.image_size(str(path))
    with Image.open(path) as image:
        assert image.size == (width, height) and width >= min_width and height >= 300
        assert len(set(image.convert("RGB").resize((64, 64)).get_flattened_data())) > 8  # not a blank canvas


def test_headline_numbers():
    """F1 where there is one, strict EE's trigger and argument F1, reference EE's accuracy."""
    assert plots.headline({"f1": 12.5, "accuracy": 3}) == [("F1", 12.5)]
    assert plots.headline({"trigger_f1": 1.0, "argument_f1": 2.0}) == [("trigger F1", 1.0), ("argument F1", 2.0)]
    assert plots.headline({"accuracy": 7.0}) == [("accuracy", 7.0)]
    assert plots.headline({"tp": 1}) == []


def test_read_scalars_and_eval_curve(tmp_path):
    run = _run_dir(tmp_path)
    scalars = plots.read_scalars(str(run / "train"))
    assert [s for s, _ in scalars["loss_per_token"]] == [50, 100, 150, 200]
    assert scalars["accuracy"][-1][1] == pytest.approx(0.8)
    curve = plots.eval_curve(str(run))
    assert curve["strict NER"] == [(100, pytest.approx((40 + 90) / 2)), (200, pytest.approx((75.5 + 90) / 2))]
    assert curve["strict EE"] == [(100, 20.0), (200, 20.0)]  # the argument F1 of strict EE
    assert curve["reference EE"] == [(100, 33.0), (200, 33.0)]


def test_report_command_writes_every_figure(tmp_path, capsys):
    run = _run_dir(tmp_path)
    assert cli.main(["report", str(run)]) == 0
    printed = capsys.readouterr().out.split()
    expected = [run / "eval" / f"step_{s}" / f"f1_{m}.png" for s in (100, 200) for m in ("strict", "reference")]
    expected.append(run / "training_curves.png")
    assert printed == [str(p) for p in expected]
    for path in expected:
        _check_png(path)


def test_report_of_an_eval_folder_and_bad_folders(tmp_path, capsys):
    run = _run_dir(tmp_path)
    folder = run / "eval" / "step_200"
    assert cli.main(["report", str(folder)]) == 0
    _check_png(folder / "f1_strict.png")
    empty = tmp_path / "empty"
    empty.mkdir()
    assert cli.main(["report", str(empty)]) == 2
    assert cli.main(["report", str(tmp_path / "missing")]) == 2
    assert "not a folder" in capsys.readouterr().err
