"""``iuie extract`` end to end on a checkpoint written by ``python -m iuie.train``, and its clear errors.

Reference: the input texts themselves (offsets index them) and the JSONL contract in the command's help."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from iuie import cli
from iuie.commands.extract import split_lines
from tests.tiny_runs import REPO, subprocess_env

TEXTS = ["Anna Berg lives in Oslo .", "Felix Dahl works for Atlas Motors . He lives in Vienna ."]


def iuie(*args, stdin=None):
    return subprocess.run(
        [sys.executable, "-m", "iuie.cli", "extract", *args],
        cwd=REPO,
        env=subprocess_env(),
        input=stdin,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


def check_lines(lines, texts, field):
    records = [json.loads(line) for line in lines]
    assert [r["text"] for r in records] == texts
    for record in records:
        assert record["outputs"] and record["windows"]
        for item in record[field]:
            spans = [item] if field == "entities" else [item["head"], item["tail"]]
            for span in spans:
                if span["pos"] is not None:
                    assert record["text"][span["pos"][0] : span["pos"][1]] == span["name"]
    return records


def test_plain_text_file_to_jsonl_file(trained_checkpoint, tmp_path):
    source = tmp_path / "texts.txt"
    source.write_text("\n".join(TEXTS) + "\n\n", encoding="utf-8")
    out = tmp_path / "out.jsonl"
    done = iuie(
        "--checkpoint",
        str(trained_checkpoint),
        "--task",
        "ner",
        "--labels",
        "person, location",
        "--input",
        str(source),
        "--output",
        str(out),
        "--max-decode-length",
        "12",
        "--constrained",
    )
    assert done.returncode == 0, done.stderr[-3000:]
    # Row i is line i: the blank last line is a row too (an empty text), not dropped.
    records = check_lines(out.read_text(encoding="utf-8").splitlines(), [*TEXTS, ""], "entities")
    assert all(e["type"] in ("person", "location") for r in records for e in r["entities"])
    assert "3 documents" in done.stderr and "outputs reached --max-decode-length" in done.stderr


def test_jsonl_stdin_to_stdout_keeps_extra_fields(trained_checkpoint):
    lines = "".join(json.dumps({"id": i, "text": t}) + "\n" for i, t in enumerate(TEXTS))
    done = iuie(
        "--checkpoint",
        str(trained_checkpoint / "checkpoints"),
        "--task",
        "re",
        "--labels",
        "work for,live in",
        "--max-decode-length",
        "12",
        stdin=lines,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    records = check_lines(done.stdout.splitlines(), TEXTS, "relations")
    assert [r["id"] for r in records] == [0, 1]
    assert all(r["task"] == "re" for r in records)


@pytest.mark.parametrize(
    "args,message",
    [
        (["--checkpoint", "/nonexistent/ckpt", "--task", "ner", "--labels", "person"], "does not exist"),
        (["--checkpoint", ".", "--task", "srl", "--labels", "person"], "unknown task 'srl'"),
        (["--checkpoint", ".", "--task", "ner", "--labels", " , "], "label list is empty"),
        # Refused by the flag's type before the checkpoint is read (it used to say "cannot load checkpoint").
        (
            ["--checkpoint", ".", "--task", "ner", "--labels", "person", "--window-overlap", "-1"],
            "argument --window-overlap: expected a count >= 0, got -1",
        ),
    ],
)
def test_clear_errors(args, message, capsys):
    try:
        status = cli.main(["extract", *args])
    except SystemExit as e:  # a flag refused by argparse ends there, with its usual status 2
        status = e.code
    assert status == 2
    assert message in capsys.readouterr().err


def test_folder_without_a_checkpoint_is_a_clear_error(tmp_path, capsys):
    assert (
        cli.main(["extract", "--checkpoint", str(tmp_path), "--task", "ner", "--labels", "a", "--input", "/dev/null"])
        == 2
    )
    assert "cannot load checkpoint" in capsys.readouterr().err


def test_strict_sentence_over_the_budget_is_one_line_and_exit_2(trained_checkpoint, tmp_path, capsys):
    """docs/extract.md: errors exit with status 2 and one line (``--strict`` refuses to cut a sentence)."""
    text = tmp_path / "long.txt"
    text.write_text(" ".join(f"word{i}" for i in range(200)) + ".\n", encoding="utf-8")
    args = ["--checkpoint", str(trained_checkpoint), "--task", "ner", "--labels", "thing", "--input", str(text)]
    # 110 tokens hold the instruction and options (71) but not the 200-word sentence.
    status = cli.main(["extract", *args, "--strict", "--max-input-tokens", "110", "--no-progress"])
    err = capsys.readouterr().err
    assert status == 2, err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("iuie extract: "), lines
    assert "strict mode does not cut sentences" in lines[0], lines


def test_lines_end_at_newline_only():
    """Hand-worked: a lone \\r is text (universal newlines made 3 rows of "a\\rb\\nc"), CRLF ends a line, a
    blank line is a row, a final newline starts no row."""
    assert split_lines("a\rb\nc") == ["a\rb", "c"]
    assert split_lines("x\r\ny\r\n") == ["x", "y"]
    assert split_lines("p\n\nq\n") == ["p", "", "q"]
    assert split_lines("one \u2028 line\x0c too") == ["one \u2028 line\x0c too"]
    assert split_lines("") == [] and split_lines("\n") == [""]


def test_row_i_is_line_i_and_windows_default_to_the_trained_length(trained_checkpoint, tmp_path, capsys):
    source = tmp_path / "mixed.txt"
    source.write_bytes(b"Anna\rBerg lives in Oslo .\nFelix Dahl .\r\n\r\nVienna")
    out = tmp_path / "out.jsonl"
    args = ["--checkpoint", str(trained_checkpoint), "--task", "ner", "--labels", "person,location"]
    status = cli.main(["extract", *args, "--input", str(source), "--output", str(out), "--max-decode-length", "6"])
    err = capsys.readouterr().err
    assert status == 0, err
    rows = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert [r["text"] for r in rows] == ["Anna\rBerg lives in Oslo .", "Felix Dahl .", "", "Vienna"]
    # tests/tiny_runs.py trained it on 128-token inputs, which run_info.json records.
    assert "4 documents in 4 windows of 128 tokens (trained length, " in err and "run_info.json)" in err


def test_progress_of_one_long_document(trained_checkpoint, tmp_path, capsys):
    """One document of many windows: a window progress line after each decode batch (here 2 windows)."""
    text = " ".join(f"Sentence {i} says that Anna Berg met Felix Dahl in Oslo." for i in range(12))
    source = tmp_path / "long.txt"
    source.write_text(text + "\n", encoding="utf-8")
    args = ["--checkpoint", str(trained_checkpoint), "--task", "ner", "--labels", "person", "--input", str(source)]
    status = cli.main(["extract", *args, "--max-input-tokens", "110", "--batch-size", "2", "--max-decode-length", "4"])
    captured = capsys.readouterr()
    assert status == 0, captured.err
    [row] = [json.loads(line) for line in captured.out.splitlines()]
    total = len(row["windows"])
    assert total > 4
    lines = [line for line in captured.err.splitlines() if line.startswith("extract: document 1/1: window ")]
    done = [int(line.split("window ")[1].split("/")[0]) for line in lines]
    assert done == [*range(2, total + 1, 2), *([total] if total % 2 else [])]
    assert all(f"/{total} (" in line for line in lines)
    assert f"1 documents in {total} windows of 110 tokens (given)" in captured.err

    quiet = cli.main(
        [
            "extract",
            *args,
            "--max-input-tokens",
            "110",
            "--batch-size",
            "2",
            "--max-decode-length",
            "4",
            "--no-progress",
        ]
    )
    assert quiet == 0 and "window" not in capsys.readouterr().err.replace("windows of", "")
