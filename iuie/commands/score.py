"""Score a predictions file (the reference's predict_eval_predictions.jsonl shape) in reference or strict mode.

Each line is one JSON object, as InstructUIE's ``run_uie.py`` writes them::

    {"Task": "NER", "Dataset": "CoNLL 2003",
     "Instance": {"sentence": ..., "label": ..., "ground_truth": ..., "instruction": ...},
     "Prediction": " person: ...",
     "record": {...}}          # optional: the gold record (Record.to_json), top level or inside Instance

``Task`` is one of the nine views. Rows are scored per (Task, Dataset) with :func:`iuie.ie.metrics.score` and
printed as tables (:mod:`iuie.ie.report`); ``--json FILE`` writes ``{task: {dataset: {metric: value}}}`` with
``precision``, ``recall``, ``f1`` (percent), the counts, ``accuracy`` where the reference reports accuracy
(reference EE and EET), and an ``Average`` entry per task.

``--mode reference`` reproduces the reference evaluator's numbers from ``ground_truth`` and ``Prediction``.
``--mode strict`` scores spans. With a ``record`` the gold offsets are exact. Without one, the gold is
rebuilt by parsing ``ground_truth`` and aligning its mentions to ``sentence`` (iuie.ie.metrics.gold_from_text):
good enough for most rows, but a mention written once for several occurrences may be placed on the wrong
one; a warning says how many rows this concerned. In strict mode the parser splits types and mentions on
each row's option list: ``Instance.options`` (written by ``iuie.eval``; exact), else read back from its
``instruction`` (the ``Option:`` list split at ``", "``; EE's two Python lists), which misreads options
holding ``", "``.

A row that cannot be read stops the command with an error naming the file, the line and the field. Rows that
repeat an earlier row exactly are counted and warned about (they are scored as given).
"""

from __future__ import annotations

import argparse
import ast
import dataclasses
import json
import re
import sys
from typing import Any

from iuie.ie import views
from iuie.ie.instructions import VIEWS
from iuie.ie.metrics import MODES, Gold, gold_from_text, score
from iuie.ie.parsing import parse
from iuie.ie.records import Record, RecordError
from iuie.ie.report import Report


class ScoreInputError(ValueError):
    """A predictions row that cannot be scored: names the file, the line (1-based) and the field."""

    def __init__(self, path: str, line: int, field: str | None, message: str):
        where = f"{path}:{line}"
        if field:
            where += f": field '{field}'"
        super().__init__(f"{where}: {message}")


@dataclasses.dataclass
class Row:
    line: int
    task: str
    dataset: str
    sentence: str | None
    ground_truth: str
    instruction: str
    prediction: str
    record: Record | None
    options: Any = None


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("predictions", help="a JSON-lines file of predictions (predict_eval_predictions.jsonl)")
    parser.add_argument(
        "--mode",
        choices=MODES,
        default="reference",
        help="reference: the InstructUIE evaluator's numbers; strict: span-based micro F1 (default: %(default)s)",
    )
    parser.add_argument("--json", metavar="FILE", help="also write {task: {dataset: {metric: value}}} here")


def _field(
    obj: dict, key: str, kind: type | tuple[type, ...], path: str, line: int, where: str, required: bool = True
) -> Any:
    if key not in obj or obj[key] is None:
        if required:
            raise ScoreInputError(path, line, where + key, "missing")
        return None
    value = obj[key]
    if not isinstance(value, kind):
        expected = kind.__name__ if isinstance(kind, type) else " or ".join(k.__name__ for k in kind)
        raise ScoreInputError(path, line, where + key, f"expected {expected}, got {type(value).__name__}")
    return value


def read_rows(path: str, mode: str, duplicates: list[int] | None = None) -> list[Row]:
    """Reads and validates every row; raises ScoreInputError at the first bad one.

    ``duplicates``, when given, receives the line numbers of rows equal to an earlier row (same JSON object):
    they are scored as given, and :func:`run` warns about them."""
    rows = []
    seen: set[str] = set()
    try:
        handle = open(path, "rb")  # bytes, decoded per line: a non-UTF-8 byte is reported with its line
    except OSError as e:
        raise ScoreInputError(path, 0, None, f"cannot open: {e.strerror or e}") from None
    with handle:
        for line_no, raw in enumerate(handle, start=1):
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as e:
                raise ScoreInputError(
                    path, line_no, None, f"not UTF-8 text (byte 0x{raw[e.start]:02x} at byte {e.start + 1})"
                ) from None
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as e:
                raise ScoreInputError(path, line_no, None, f"not valid JSON: {e.msg}") from None
            if not isinstance(obj, dict):
                raise ScoreInputError(path, line_no, None, f"expected a JSON object, got {type(obj).__name__}")
            rows.append(_read_row(obj, path, line_no, mode))
            key = json.dumps(obj, sort_keys=True, ensure_ascii=False)
            if key in seen and duplicates is not None:
                duplicates.append(line_no)
            seen.add(key)
    return rows


def _read_row(obj: dict, path: str, line: int, mode: str) -> Row:
    task = _field(obj, "Task", str, path, line, "").strip().upper()
    if task not in VIEWS:
        raise ScoreInputError(path, line, "Task", f"unknown task {obj['Task']!r}; expected one of {', '.join(VIEWS)}")
    dataset = _field(obj, "Dataset", str, path, line, "")
    instance = _field(obj, "Instance", dict, path, line, "")
    ground_truth = _field(instance, "ground_truth", str, path, line, "Instance.")
    instruction = _field(instance, "instruction", str, path, line, "Instance.", required=False) or ""
    prediction = _field(obj, "Prediction", str, path, line, "")
    record = None
    record_where = "record" if "record" in obj else "Instance.record"
    raw_record = obj.get("record", instance.get("record"))
    if raw_record is not None:
        if not isinstance(raw_record, (dict, str)):
            raise ScoreInputError(
                path, line, record_where, f"expected a JSON object or string, got {type(raw_record).__name__}"
            )
        try:
            record = Record.from_json(raw_record)
        except (RecordError, ValueError) as e:
            message = e.message if isinstance(e, RecordError) else str(e)
            inner = f"{record_where}.{e.field}" if isinstance(e, RecordError) and e.field else record_where
            raise ScoreInputError(path, line, inner, message) from None
    sentence = _field(instance, "sentence", str, path, line, "Instance.", required=mode == "strict" and record is None)
    options = _field(instance, "options", (list, dict), path, line, "Instance.", required=False)
    return Row(line, task, dataset, sentence, ground_truth, instruction, prediction, record, options)


_EE_OPTIONS = re.compile(r"Event type: (\[.*?\]), Arguments type: (\[.*?\])\.")


def options_from_instruction(view: str, instruction: str) -> Any:
    """The option list the reference wrote into a row's instruction, or None when it cannot be read.

    EE: ``[event types, roles]`` from its two Python lists; other views: the last ``Option:`` line split at
    ``", "`` (exact for options without ``", "`` in them; the parser only uses options to break ties).
    """
    if views.get(view).options_in_input == "lists":
        m = _EE_OPTIONS.search(instruction)
        if not m:
            return None
        try:
            types, roles = ast.literal_eval(m.group(1)), ast.literal_eval(m.group(2))
        except (ValueError, SyntaxError):
            return None
        return [types, roles] if isinstance(types, list) and isinstance(roles, list) else None
    start = instruction.rfind("Option:")
    if start < 0:
        return None
    line = instruction[start + len("Option:") :].split("\n", 1)[0].strip()
    return [o for o in line.split(", ") if o.strip()] or None


def _gold_and_prediction(row: Row, mode: str) -> tuple[Gold, Any, int]:
    """The row's gold, its prediction (parsed in strict mode) and how many gold mentions did not align."""
    if mode == "reference":
        return Gold(row.task, row.record, row.ground_truth), row.prediction, 0
    # The row's own option list (iuie.eval writes it) is exact; reading it back from the instruction is not
    # for options holding ", " (the reference's files have no other source).
    labels = row.options if row.options is not None else options_from_instruction(row.task, row.instruction)
    missing = 0
    if row.record is not None:
        gold = Gold(row.task, row.record, row.ground_truth)
    else:
        gold, missing = gold_from_text(row.task, row.sentence, row.ground_truth, labels)
    parsed = parse(row.task, row.prediction, labels, sentence=gold.record.sentence)
    return gold, parsed, missing


def score_rows(rows: list[Row], mode: str) -> tuple[Report, dict[str, int]]:
    """The report over all rows, and notes: rows without a record and unaligned gold mentions (strict)."""
    groups: dict[tuple[str, str], tuple[list[Gold], list[Any]]] = {}
    notes = {"rows": len(rows), "rows_without_record": 0, "gold_mentions_not_in_sentence": 0}
    for row in rows:
        gold, prediction, missing = _gold_and_prediction(row, mode)
        if row.record is None:
            notes["rows_without_record"] += 1
        notes["gold_mentions_not_in_sentence"] += missing
        golds, preds = groups.setdefault((row.task, row.dataset), ([], []))
        golds.append(gold)
        preds.append(prediction)
    report = Report(mode)
    for (task, dataset), (golds, preds) in groups.items():
        report.add(task, dataset, score(task, golds, preds, mode))
    return report, notes


def run(args: argparse.Namespace) -> int:
    duplicates: list[int] = []
    try:
        rows = read_rows(args.predictions, args.mode, duplicates)
    except ScoreInputError as e:
        print(f"iuie score: error: {e}", file=sys.stderr)
        return 2
    if not rows:
        print(f"iuie score: error: {args.predictions}: no rows to score", file=sys.stderr)
        return 2
    if duplicates:
        shown = ", ".join(map(str, duplicates[:5])) + (", ..." if len(duplicates) > 5 else "")
        print(
            f"iuie score: warning: {args.predictions}: {len(duplicates)} of {len(rows)} rows repeat an earlier row "
            f"exactly (lines {shown}); they are scored as given, so they count twice",
            file=sys.stderr,
        )
    report, notes = score_rows(rows, args.mode)
    if args.mode == "strict" and notes["rows_without_record"]:
        print(
            f"iuie score: warning: {notes['rows_without_record']} of {notes['rows']} rows carry no 'record'; "
            "their gold spans were rebuilt by parsing ground_truth and aligning it to the sentence "
            f"({notes['gold_mentions_not_in_sentence']} gold mentions not found in their sentence count "
            "as misses)",
            file=sys.stderr,
        )
    print(report.to_text(), end="")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(report.to_json(), f, indent=2, ensure_ascii=False)
            f.write("\n")
    return 0
