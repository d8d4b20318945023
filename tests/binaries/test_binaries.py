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


def test_extract_reads_a_relative_checkpoint_path(trained):
    """`iuie extract --checkpoint <relative MODEL_DIR>` reads the run like its absolute path (it crashed with
    "'NoneType' object is not subscriptable" inside Orbax); the reference is the absolute path's output."""
    outputs = []
    for checkpoint in (trained.name, str(trained)):
        done = subprocess.run(
            [sys.executable, "-m", "iuie.cli", "extract", "--checkpoint", checkpoint, "--task", "ner",
             "--labels", "person,location", "--no-progress"],
            cwd=trained.parent,
            env=subprocess_env(),
            input="Elena Olsen visited Zurich .\n",
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr[-3000:]
        outputs.append([json.loads(line) for line in done.stdout.splitlines()])
    assert len(outputs[0]) == 1 and outputs[0] == outputs[1]


def _eval_args(trained, out):
    return [
        "--gin_file=t5x_configs/demo_cpu/eval.gin",
        f"--gin.CHECKPOINT_PATH='{trained}'",
        f"--gin.EVAL_OUTPUT_DIR='{out}'",
        *TINY,
        "--gin.EVAL_NUM_EXAMPLES=4",
        # 8 rows per batch over 4 data shards: 4 real rows and 4 padding rows per Task.
        "--gin.EVAL_BATCH_SIZE=8",
    ]


def _results(out):
    rows = (out / "predict_eval_predictions.jsonl").read_text(encoding="utf-8").splitlines()
    reports = {mode: json.loads((out / f"report_{mode}.json").read_text()) for mode in ("strict", "reference")}
    return json.loads((out / "metrics.json").read_text()), reports, [json.loads(r) for r in rows]


def test_sharded_evaluation_equals_the_one_device_result(trained, evaluated, tmp_path):
    """1 process x 4 devices and 2 processes x 2 devices (jax.distributed on 127.0.0.1, Gloo) give the
    metrics, reports and predictions (same rows, same order, no padding row) of the 1-device evaluation."""
    import socket

    expected = _results(evaluated)
    assert len(expected[2]) == 8
    four = tmp_path / "x4"
    done, _ = run("iuie.eval", _eval_args(trained, four), env={"XLA_FLAGS": "--xla_force_host_platform_device_count=4"})
    assert done.returncode == 0, done.stderr[-5000:]
    assert "sorted into length buckets (4 examples, 1 batches of 8, 4 padding rows)" in done.stderr
    assert _results(four) == expected

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    two = tmp_path / "x2x2"
    env = subprocess_env(XLA_FLAGS="--xla_force_host_platform_device_count=2")
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "iuie.eval",
                *_eval_args(trained, two),
                f"--coordinator_address=127.0.0.1:{port}",
                "--process_count=2",
                f"--process_index={i}",
                "--distributed_timeout=240",
            ],
            cwd=REPO,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )  # fmt: skip
        for i in range(2)
    ]
    outs = [p.communicate(timeout=600) for p in procs]
    for p, (_, err) in zip(procs, outs):
        assert p.returncode == 0, err[-5000:]
    assert "process 0 of 2" in outs[0][1] and "process 1 of 2" in outs[1][1]
    assert _results(two) == expected


def test_a_loss_that_diverges_between_log_steps_stops_before_the_evaluation(tmp_path):
    """EVAL_PERIOD=3 with logging and checkpoints only at step 6: a learning rate of 1e12 makes step 3
    non-finite (the warmup starts at 0, so step 2 takes the first huge update), and the check before the
    evaluation at step 3 stops the run (exit 3) instead of evaluating NaN parameters; no evaluation and no
    checkpoint are written. (Before the check, step 3 was evaluated and the run stopped only at step 6.)"""
    done, _ = run(
        "iuie.train",
        [
            "--gin_file=t5x_configs/demo_cpu.gin",
            f"--gin.MODEL_DIR='{tmp_path}'",
            *TINY,
            "--gin.TRAIN_STEPS=6",
            "--gin.BATCH_SIZE=4",
            "--gin.LOG_PERIOD=100",
            "--gin.CHECKPOINT_PERIOD=100",
            "--gin.EVAL_PERIOD=3",
            "--gin.TRAIN_EVAL_NUM_EXAMPLES=2",
            "--gin.EVAL_BATCH_SIZE=2",
            "--gin.configs.ScheduleConfig.warmup_steps=1",
            "--gin.configs.ScheduleConfig.learning_rate=1e12",
        ],
    )
    assert done.returncode == 3, done.stderr[-5000:]
    stopped = [line for line in done.stderr.splitlines() if line.startswith("stopped: ")]
    assert len(stopped) == 1 and "at step 3:" in stopped[0], done.stderr[-3000:]
    assert not (tmp_path / "eval").exists()
    assert not [p for p in (tmp_path / "checkpoints").iterdir() if p.name.isdigit()]
