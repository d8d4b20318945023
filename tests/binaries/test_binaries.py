"""End-to-end checks of the binaries ``python -m iuie.train``, ``iuie.eval`` and ``iuie.infer``.

Each binary runs in its own process, as a user runs it, on ``t5x_configs/demo_cpu.gin`` shrunk by
``--gin.X=V`` overrides (emb 32, a few steps, 4 examples per evaluation Task). The reference for the
evaluation numbers is ``iuie score`` (the InstructUIE evaluator's numbers, and strict mode) run on the
predictions file the eval binary wrote: both must agree exactly.
"""

from __future__ import annotations

import json
import pathlib
import subprocess
import sys
import time

import pytest

from tests.tiny_runs import TINY_MODEL_BINDINGS, subprocess_env

REPO = pathlib.Path(__file__).resolve().parents[2]
STEPS = 6
TINY = TINY_MODEL_BINDINGS
TRAIN_TINY = TINY + [
    f"--gin.TRAIN_STEPS={STEPS}",
    "--gin.BATCH_SIZE=8",
    "--gin.LOG_PERIOD=2",
    "--gin.CHECKPOINT_PERIOD=3",
    "--gin.configs.ScheduleConfig.warmup_steps=2",
    "--gin.TRAIN_EVAL_NUM_EXAMPLES=2",
    "--gin.EVAL_BATCH_SIZE=4",
    "--gin.PACKING_WINDOW=32",
]
EVAL_TINY = TINY + ["--gin.EVAL_NUM_EXAMPLES=4", "--gin.EVAL_BATCH_SIZE=4"]


def run(module: str, args: list[str], *, env: dict | None = None, timeout: int = 300):
    full_env = subprocess_env(**(env or {}))
    start = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", module, *args],
        cwd=REPO,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    return done, time.monotonic() - start


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    model_dir = tmp_path_factory.mktemp("train")
    done, _ = run("iuie.train", ["--gin_file=t5x_configs/demo_cpu.gin", f"--gin.MODEL_DIR='{model_dir}'", *TRAIN_TINY])
    assert done.returncode == 0, done.stderr[-5000:]
    return model_dir


@pytest.fixture(scope="module")
def evaluated(trained):
    out = trained / "test"
    done, _ = run(
        "iuie.eval",
        [
            "--gin_file=t5x_configs/demo_cpu/eval.gin",
            f"--gin.CHECKPOINT_PATH='{trained}'",
            f"--gin.EVAL_OUTPUT_DIR='{out}'",
            *EVAL_TINY,
        ],
    )
    assert done.returncode == 0, done.stderr[-5000:]
    return out


def test_train_writes_config_checkpoints_and_evaluation(trained):
    config = (trained / "config.gin").read_text(encoding="utf-8")
    assert "MIXTURE_OR_TASK_NAME = 'iuie_synthetic_ner_re'" in config
    assert f"TRAIN_STEPS = {STEPS}" in config
    assert sorted(p.name for p in (trained / "checkpoints").iterdir() if p.name.isdigit()) == ["3", str(STEPS)]
    assert json.loads((trained / "train_done.json").read_text())["step"] == STEPS
    report = json.loads((trained / "eval" / f"step_{STEPS}" / "report_strict.json").read_text())
    assert {"NER", "RE"} <= set(report)  # the demo evaluates iuie_synthetic_ner_re_eval


def test_train_resumes_at_the_checkpoint(trained):
    """A second run on the same MODEL_DIR resumes from step 6 and trains to the new TRAIN_STEPS."""
    done, _ = run(
        "iuie.train",
        [
            "--gin_file=t5x_configs/demo_cpu.gin",
            f"--gin.MODEL_DIR='{trained}'",
            *TRAIN_TINY,
            f"--gin.TRAIN_STEPS={STEPS + 2}",
            "--gin.EVAL_AT_END=False",
        ],
    )
    assert done.returncode == 0, done.stderr[-5000:]
    assert f"resumed from {trained / 'checkpoints'} step {STEPS}" in done.stderr
    assert (trained / "checkpoints" / str(STEPS + 2)).is_dir()


def test_mistyped_macro_fails_fast(tmp_path):
    done, seconds = run(
        "iuie.train", ["--gin_file=t5x_configs/demo_cpu.gin", f"--gin.MODEL_DIR='{tmp_path}'", "--gin.TRAIN_STEP=10"]
    )
    assert done.returncode == 2, done.stderr[-3000:]
    assert "unknown gin macro 'TRAIN_STEP'" in done.stderr and "did you mean TRAIN_STEPS?" in done.stderr
    assert seconds < 30
    assert not (tmp_path / "checkpoints").exists()


def test_unknown_binding_fails_fast(tmp_path):
    done, seconds = run(
        "iuie.train",
        ["--gin_file=t5x_configs/demo_cpu.gin", f"--gin.MODEL_DIR='{tmp_path}'", "--gin.network.T5Config.emb_dimm=8"],
    )
    assert done.returncode == 2
    assert "emb_dimm" in done.stderr
    assert seconds < 30


def test_missing_data_path_fails_fast(tmp_path):
    missing = tmp_path / "no_such_data"
    done, seconds = run(
        "iuie.train",
        [
            "--gin_file=t5x_configs/demo_cpu.gin",
            f"--gin.MODEL_DIR='{tmp_path}'",
            "--gin.MIXTURE_OR_TASK_NAME='iuie_ner_conll_2003'",
        ],
        env={"IUIE_DATA_DIR": str(missing)},
    )
    assert done.returncode == 2, done.stderr[-3000:]
    assert str(missing) in done.stderr and "train.json" in done.stderr
    assert seconds < 30


def test_eval_predictions_rescore_to_the_same_numbers(evaluated, tmp_path):
    rows = [json.loads(line) for line in (evaluated / "predict_eval_predictions.jsonl").read_text().splitlines()]
    assert len(rows) == 2 * 4  # the two Tasks of iuie_synthetic_ner_re_eval (NER, RE), 4 examples each
    for row in rows:
        assert set(row) == {"Task", "Dataset", "Instance", "Prediction", "record"}
        assert set(row["Instance"]) == {"id", "sentence", "label", "ground_truth", "instruction", "options"}
    for mode in ("reference", "strict"):
        scored = tmp_path / f"{mode}.json"
        done, _ = run(
            "iuie.cli",
            ["score", str(evaluated / "predict_eval_predictions.jsonl"), "--mode", mode, "--json", str(scored)],
        )
        assert done.returncode == 0, done.stderr[-3000:]
        assert json.loads(scored.read_text()) == json.loads((evaluated / f"report_{mode}.json").read_text())


def test_infer_writes_structures_with_offsets(trained, tmp_path):
    texts = [
        {"text": "Elena Olsen visited Zurich .", "task": "NER", "labels": ["person", "location"]},
        {"text": "Elena Olsen works for Acme .", "task": "RE", "labels": ["work for", "live in"]},
    ]
    source = tmp_path / "in.jsonl"
    source.write_text("".join(json.dumps(t) + "\n" for t in texts), encoding="utf-8")
    out = tmp_path / "infer"
    done, _ = run(
        "iuie.infer",
        [
            "--gin_file=t5x_configs/demo_cpu/infer.gin",
            f"--gin.CHECKPOINT_PATH='{trained}'",
            f"--gin.INFER_OUTPUT_DIR='{out}'",
            f"--gin.INPUT_FILE='{source}'",
            "--gin.INFER_BATCH_SIZE=4",
            *TINY,
        ],
    )
    assert done.returncode == 0, done.stderr[-5000:]
    rows = [json.loads(line) for line in (out / "predictions.jsonl").read_text().splitlines()]
    assert [(r["text"], r["task"]) for r in rows] == [(t["text"], t["task"]) for t in texts]
    for row in rows:
        assert isinstance(row["prediction"], str)
        _check_offsets(row[{"NER": "entities", "RE": "relations"}[row["task"]]], row["text"])


def _check_offsets(node, text):
    if isinstance(node, dict):
        mention = node.get("name", node.get("trigger"))
        if "pos" in node and node["pos"] is not None:
            start, end = node["pos"]
            assert text[start:end].lower().replace(" ", "") == mention.lower().replace(" ", "")
        for value in node.values():
            _check_offsets(value, text)
    elif isinstance(node, list):
        for value in node:
            _check_offsets(value, text)


def test_structures_carry_offsets_into_the_text():
    """The offsets part of iuie.infer without a model: parsed items of each view shape, aligned."""
    from iuie import infer
    from iuie.ie import parsing

    text = "Elena Olsen met Elena Olsen in Zurich ."
    parsed = parsing.parse(
        "NER",
        "person: Elena Olsen; person: Elena Olsen; location: Zurich; location: Paris",
        ["person", "location"],
        sentence=text,
    )
    got = infer.structures("NER", parsed.items, text)["entities"]
    spans = [(s["type"], *(s["pos"] or (None, None))) for s in got]
    assert spans == [("person", 0, 11), ("person", 16, 27), ("location", 31, 37), ("location", None, None)]
    relation = infer.structures("RE", [("work for", "Elena Olsen", "Zurich")], text)["relations"][0]
    assert text[slice(*relation["head"]["pos"])] == "Elena Olsen"
    assert text[slice(*relation["tail"]["pos"])] == "Zurich"
    event = infer.structures("EE", [("attack", "met", (("place", "Zurich"),))], text)["events"][0]
    assert text[slice(*event["pos"])] == "met"
    assert event["arguments"][0]["name"] == "Zurich"
