"""Every sub-command of ``iuie`` and every binary, walked through its documented user errors: exactly one line
on stderr and exit status 2, never a traceback (docs/architecture.md; each command's docs page).

What counts as a line: every non-empty line a command writes to stderr, except the start-up noise of the
native libraries under it, which no Python code of iuie can silence, matched exactly:

* the banner absl's C++ logging prints before it is initialised
  (``WARNING: All log messages before absl::InitializeLog() is called are written to STDERR``);
* lines in the glog/absl C++ format whose source is a C or C++ file
  (``I0000 00:00:1796.123 4711 cudart_stub.cc:31] ...``, ``E0000 ... cuda_platform.cc:52] ...``).

Python warnings, logging lines and tracebacks all count. Most cases run in this process (``cli.main`` and
the binaries' ``main``, with the process's file descriptors captured, C-level writes included), because the
commands' imports (TensorFlow, JAX) dominate a fresh process's time; the strict-record case of
``python -m iuie.train`` also runs as a real subprocess, for the real exit status.

To add a command (plan, serve, report, ...): add its rows to ``CASES``; ``test_every_command_has_a_case``
fails until every name in ``iuie.cli.COMMANDS`` and every binary has one.
"""

from __future__ import annotations

import dataclasses
import json
import pathlib
import re
import subprocess
import sys
from collections.abc import Callable

import pytest

from iuie import cli
from tests.tiny_runs import REPO, subprocess_env

NATIVE_BANNER = "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR"
NATIVE_LOG = re.compile(r"^[IWEF]\d{4} [\d:.]+\s+\d+ [\w.\-/]+\.(cc|cpp|c|h):\d+\] ")
BINARIES = ("train", "eval", "infer")


# The binaries' own log format (``%(asctime)s %(name)s: %(message)s``): progress a run logged before it failed.
RUN_LOG = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} [\w.]+: ")


def error_lines(stderr: str) -> list[str]:
    """For a binary that fails after it has started working (e.g. at restore, after the data pipeline logged
    what it counted): the counted lines that are not the run's own log lines. A logged traceback still
    counts (its lines are not in the log format)."""
    return [line for line in counted_lines(stderr) if not RUN_LOG.match(line)]


def counted_lines(stderr: str) -> list[str]:
    return [
        line
        for line in stderr.splitlines()
        if line.strip() and line.strip() != NATIVE_BANNER and not NATIVE_LOG.match(line)
    ]


def test_the_noise_filter_is_exact():
    noise = [
        NATIVE_BANNER,
        "I0000 00:00:1796221487.517474    5235 cudart_stub.cc:31] Could not find cuda drivers on your machine.",
        "E0000 00:00:1796221566.314023    5235 cuda_platform.cc:52] failed call to cuInit: INTERNAL",
    ]
    kept = [
        "error: something",
        "Traceback (most recent call last):",
        '  File "/x/iuie/train.py", line 3, in <module>',
        "I0000 00:00:1796221487.517474    5235 train.py:31] a Python file is not native noise",
        "/x/y.py:3: UserWarning: counted",
    ]
    assert counted_lines("\n".join(noise + kept)) == kept


# ------------------------------------------------------------------------------------------------------------
# Inputs the cases need (each a function of a fresh tmp folder)


def _ner_root(tmp: pathlib.Path, *, bad: bool) -> pathlib.Path:
    """An IE INSTRUCTIONS root with NER/CoNLL 2003; ``bad``: train.json's last record's offsets are wrong."""
    folder = tmp / "data" / "NER" / "CoNLL 2003"
    folder.mkdir(parents=True)
    # Distinct sentences: duplicated records would be counted and reported (a log line of their own).
    good = [
        {"sentence": f"EU rejects call {i} .", "entities": [{"name": "EU", "type": "organization", "pos": [0, 2]}]}
        for i in range(8)
    ]
    wrong = [{"sentence": "Peter Blackburn", "entities": [{"name": "Peter", "type": "person", "pos": [3, 9]}]}]
    (folder / "labels.json").write_text(json.dumps(["location", "miscellaneous", "organization", "person"]))
    (folder / "train.json").write_text(json.dumps(good + (wrong if bad else [])))
    (folder / "dev.json").write_text(json.dumps(good[:2]))
    (folder / "test.json").write_text(json.dumps(good[:1] + (wrong if bad else [])))
    return tmp / "data"


def _non_utf8(tmp: pathlib.Path) -> pathlib.Path:
    path = tmp / "predictions.jsonl"
    path.write_bytes(b'{"prediction": "caf\xe9"}\n')
    return path


def _not_json(tmp: pathlib.Path) -> pathlib.Path:
    path = tmp / "predictions.jsonl"
    path.write_text("{not json\n")
    return path


def _conll_with_a_broken_line(tmp: pathlib.Path) -> pathlib.Path:
    path = tmp / "train.txt"
    path.write_text("EU B-ORG\nrejects\tO\tX\tY\tZ\tW\n")
    return path


@dataclasses.dataclass(frozen=True)
class Case:
    """``command``: an ``iuie`` sub-command or ``python -m iuie.<binary>``; ``args(tmp)``: its arguments;
    ``expect``: a fragment the one line must contain; ``env(tmp)``: environment variables to set."""

    name: str
    command: str
    args: Callable[[pathlib.Path], list[str]]
    expect: str
    env: Callable[[pathlib.Path], dict[str, str]] = lambda tmp: {}


DEMO_GIN = "--gin_file=t5x_configs/demo_cpu.gin"
STRICT = "--gin.iuie.pipeline.seqio_data.data_options.strict_records=True"
CONLL = ["--gin.MIXTURE_OR_TASK_NAME='iuie_ner_conll_2003'", "--gin.EVAL_MIXTURE_OR_TASK_NAME='iuie_ner_conll_2003'"]

CASES = [
    # --- iuie sub-commands ---------------------------------------------------------------------------------
    Case("bad argument", "score", lambda t: ["--mode", "exact", "x.jsonl"], "argument --mode: invalid choice"),
    Case("missing file", "score", lambda t: [str(t / "nope.jsonl")], "nope.jsonl:0: cannot open"),
    Case("non-UTF-8 bytes", "score", lambda t: [str(_non_utf8(t))], "predictions.jsonl:1: not UTF-8 text (byte 0xe9"),
    Case("not JSON", "score", lambda t: [str(_not_json(t))], "predictions.jsonl:1: not valid JSON"),
    Case(
        "missing dataset",
        "format",
        lambda t: [str(t), "--task", "NER", "--dataset", "CoNLL 2003"],
        "CoNLL 2003",
    ),
    Case(
        "strict bad record",
        "format",
        lambda t: [str(_ner_root(t, bad=True)), "--task", "NER", "--dataset", "CoNLL 2003", "--strict"],
        "test.json: record 1: field 'entities[0].pos'",
    ),
    Case(
        "missing source",
        "convert-checkpoint",
        lambda t: [str(t / "nope"), str(t / "out"), "--from", "hf", "--to", "iuie"],
        "nope",
    ),
    Case("missing source", "zeroshot-splits", lambda t: [str(t / "nope"), str(t / "out"), "--name", "x"], "nope"),
    Case("unknown name", "mixtures", lambda t: ["show", "iuie_no_such_mixture"], "no Mixture or Task named"),
    Case(
        "malformed input",
        "convert-data",
        lambda t: ["conll", str(_conll_with_a_broken_line(t)), str(t / "out"), "--task", "NER"],
        "train.txt",
    ),
    Case("no T5X", "t5x", lambda t: ["train", "--gin_file=t5x_configs/t5x/tiny/finetune.gin"], "t5x is not importable"),
    Case("extra arguments", "t5x", lambda t: ["paths", "extra"], "takes no further arguments"),
    Case(
        "unknown task",
        "extract",
        lambda t: ["--checkpoint", str(t), "--task", "XX", "--labels", "a"],
        "unknown task 'XX'",
    ),
    Case(
        "missing checkpoint",
        "extract",
        lambda t: ["--checkpoint", str(t / "ckpt"), "--task", "NER", "--labels", "a"],
        "does not exist",
    ),
    Case("bad gin binding", "demo", lambda t: ["--workdir", str(t), "--gin", "TRAIN_STEP = 3"], "TRAIN_STEP"),
    Case("missing checkpoint", "serve", lambda t: ["--checkpoint", str(t / "no")], "does not exist"),
    Case("not a folder", "report", lambda t: [str(t / "no")], "is not a folder"),
    Case("missing gin file", "plan", lambda t: [f"--gin_file={t / 'nope.gin'}", "--topology", "v5e:2x2"], "nope.gin"),
    Case(
        "comma in a Beam option",
        "cache",
        lambda t: ["iuie_ner_synthetic", "--output-dir", str(t), "--pipeline-option=--a=1,2", "--print-command"],
        "contains a comma",
    ),
    # --- binaries ------------------------------------------------------------------------------------------
    Case("no gin file", "train", lambda t: [], "no --gin_file given"),
    Case("unset required macro", "train", lambda t: [DEMO_GIN], "required gin macro not set: MODEL_DIR"),
    Case(
        "warmup over the run",
        "train",
        lambda t: [DEMO_GIN, f"--gin.MODEL_DIR='{t}'", "--gin.TRAIN_STEPS=30"],
        "configs.ScheduleConfig.warmup_steps = 50",
    ),
    Case(
        "strict bad record",
        "train",
        lambda t: [DEMO_GIN, f"--gin.MODEL_DIR='{t / 'm'}'", STRICT, *CONLL, "--gin.TRAIN_STEPS=60"],
        "train.json: record 8: field 'entities[0].pos'",
        env=lambda t: {"IUIE_DATA_DIR": str(_ner_root(t, bad=True))},
    ),
    Case(
        "mixed run gins",
        "eval",
        lambda t: [
            "--gin_file=runs/eval.gin",
            DEMO_GIN,
            f"--gin.CHECKPOINT_PATH='{t}'",
            f"--gin.EVAL_OUTPUT_DIR='{t}'",
        ],
        "t5x_configs/demo_cpu/eval.gin",
    ),
    Case(
        "missing checkpoint",
        "eval",
        lambda t: [
            "--gin_file=t5x_configs/demo_cpu/eval.gin",
            f"--gin.CHECKPOINT_PATH='{t / 'no'}'",
            f"--gin.EVAL_OUTPUT_DIR='{t}'",
        ],
        "does not exist",
    ),
    Case(
        "missing checkpoint",
        "infer",
        lambda t: [
            "--gin_file=t5x_configs/demo_cpu/infer.gin",
            f"--gin.CHECKPOINT_PATH='{t / 'no'}'",
            f"--gin.INFER_OUTPUT_DIR='{t}'",
        ],
        "does not exist",
    ),
]
# Run as a real process as well: the case the docs promise for python -m iuie.train (the three binaries share
# one entry, so the in-process cases cover eval and infer).
SUBPROCESS = {("train", "strict bad record")}


def _case_id(case: Case) -> str:
    return f"{case.command}: {case.name}"


def test_every_command_has_a_case():
    covered = {case.command for case in CASES}
    missing = sorted((set(cli.COMMANDS) | set(BINARIES)) - covered)
    assert not missing, f"commands without a user-error case in CASES: {missing}"


def _run_in_process(case: Case, tmp: pathlib.Path, monkeypatch) -> int:
    import importlib

    for key, value in case.env(tmp).items():
        monkeypatch.setenv(key, value)
    monkeypatch.chdir(REPO)
    args = case.args(tmp)
    try:
        if case.command in BINARIES:
            return importlib.import_module(f"iuie.{case.command}").main(args)
        return cli.main([case.command, *args])
    except SystemExit as e:  # argparse
        return e.code if isinstance(e.code, int) else 1


@pytest.mark.parametrize("case", CASES, ids=_case_id)
def test_user_error_is_one_line_and_exit_2(case, tmp_path, monkeypatch, capfd):
    import gin

    try:
        status = _run_in_process(case, tmp_path, monkeypatch)
    finally:
        gin.clear_config(clear_constants=True)
    stderr = capfd.readouterr().err
    lines = counted_lines(stderr)
    assert status == 2, stderr[-3000:]
    assert len(lines) == 1, lines
    assert case.expect in lines[0], lines[0]


@pytest.mark.parametrize("case", [c for c in CASES if (c.command, c.name) in SUBPROCESS], ids=_case_id)
def test_binary_user_error_is_one_line_and_exit_2_in_a_real_process(case, tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", f"iuie.{case.command}", *case.args(tmp_path)],
        cwd=REPO,
        env=subprocess_env(**case.env(tmp_path)),
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    lines = counted_lines(done.stderr)
    assert done.returncode == 2, done.stderr[-3000:]
    assert len(lines) == 1, lines
    assert case.expect in lines[0], lines[0]
