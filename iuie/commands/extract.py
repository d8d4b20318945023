"""Extract entities, relations or events from texts with a checkpoint (zero-shot: any labels), as JSONL.

Input (``--input FILE``, or ``-``/nothing for stdin): plain text, one document per line, or JSONL with a
``"text"`` field per line (detected per line: a line that parses as a JSON object with ``text`` is JSONL;
other fields of that object are kept in the output). Output (``--output FILE`` or stdout): one JSON object per
document with the text, the typed results with character offsets into it (``start``/``end`` null for a
mention found nowhere in the text), the windows read and the raw model outputs. Blank lines are skipped.

Example::

    iuie extract --checkpoint /tmp/iuie_demo --task ner --labels "person,location" --input texts.txt

See docs/extract.md (windows over long texts, constrained decoding).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Iterable
from typing import Any

from iuie.extraction.extractor import TASKS

# Documents per call of Extractor.extract: results are written as they come, and the progress line moves.
CHUNK = 64


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--checkpoint", required=True, help="an iuie MODEL_DIR or checkpoint folder, a Hugging Face or a T5X checkpoint"
    )
    parser.add_argument("--task", required=True, help=f"one of {', '.join(TASKS)}")
    parser.add_argument(
        "--labels",
        required=True,
        help="comma-separated label names (ner/re: types; ee: event types, or a JSON [types, roles] / {type: [roles]})",
    )
    parser.add_argument("--input", default="-", help="plain text or JSONL file; '-' (default) is stdin")
    parser.add_argument("--output", default="-", help="JSONL file; '-' (default) is stdout")
    parser.add_argument("--vocab", default=None, help="SentencePiece model (default: IUIE_VOCAB or the project's)")
    parser.add_argument("--max-input-tokens", type=int, default=512)
    parser.add_argument("--max-decode-length", type=int, default=50)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument(
        "--constrained", action="store_true", help="constrained decoding: only option labels and mentions from the text"
    )
    parser.add_argument(
        "--strict", action="store_true", help="fail on a sentence longer than the input budget instead of cutting it"
    )
    parser.add_argument("--instructions", default=None, help="instruction file (default: the project's wording)")
    parser.add_argument("--no-progress", action="store_true", help="no progress line on stderr")


def _labels(value: str, task: str) -> Any:
    value = value.strip()
    if task == "ee" and value[:1] in "[{":
        try:
            return json.loads(value)
        except json.JSONDecodeError as e:
            raise ValueError(f"--labels is not valid JSON: {e}") from None
    return [part.strip() for part in value.split(",") if part.strip()]


def _read(lines: Iterable[str]) -> list[dict[str, Any]]:
    docs = []
    for number, line in enumerate(lines, 1):
        line = line.rstrip("\r\n")
        if not line.strip():
            continue
        doc = None
        if line.lstrip().startswith("{"):
            try:
                obj = json.loads(line)
            except json.JSONDecodeError:
                obj = None
            if isinstance(obj, dict):
                if not isinstance(obj.get("text"), str):
                    raise ValueError(f"input line {number}: a JSON object without a string 'text' field")
                doc = obj
        docs.append(doc if doc is not None else {"text": line})
    return docs


class _Progress:
    """``extract: 128/1000 documents (12.8%) 3.1 docs/s`` on stderr: rewritten in place on a terminal, one
    line per update otherwise (logs stay readable)."""

    def __init__(self, total: int, enabled: bool):
        self.total, self.enabled, self.start = total, enabled and total > 0, time.monotonic()
        self.tty = sys.stderr.isatty()

    def update(self, done: int) -> None:
        if not self.enabled:
            return
        rate = done / max(time.monotonic() - self.start, 1e-9)
        line = f"extract: {done}/{self.total} documents ({100 * done / self.total:.1f}%) {rate:.1f} docs/s"
        sys.stderr.write(("\r" + line) if self.tty else line + "\n")
        if self.tty and done >= self.total:
            sys.stderr.write("\n")
        sys.stderr.flush()


def run(args: argparse.Namespace) -> int:
    import os

    task = args.task.strip().lower()
    if task not in TASKS:
        print(f"iuie extract: unknown task {args.task!r}; choose one of {', '.join(TASKS)}", file=sys.stderr)
        return 2
    try:
        labels = _labels(args.labels, task)
    except ValueError as e:
        print(f"iuie extract: {e}", file=sys.stderr)
        return 2
    if not labels:
        print("iuie extract: the label list is empty: name at least one label with --labels", file=sys.stderr)
        return 2
    if not os.path.exists(args.checkpoint):
        print(f"iuie extract: checkpoint {args.checkpoint!r} does not exist", file=sys.stderr)
        return 2
    try:
        if args.input == "-":
            docs = _read(sys.stdin)
        else:
            with open(args.input, encoding="utf-8") as f:
                docs = _read(f)
    except (OSError, ValueError) as e:
        print(f"iuie extract: {e}", file=sys.stderr)
        return 2

    import warnings

    from iuie.extraction.extractor import Extractor, InputTooLongError, WindowWarning
    from iuie.interop.hf import CheckpointError

    try:
        extractor = Extractor.from_checkpoint(
            args.checkpoint,
            args.vocab,
            max_input_tokens=args.max_input_tokens,
            max_decode_length=args.max_decode_length,
            batch_size=args.batch_size,
            constrained=args.constrained,
            instructions=args.instructions,
            strict=args.strict,
        )
    except (FileNotFoundError, CheckpointError, ValueError) as e:
        print(f"iuie extract: cannot load checkpoint {args.checkpoint!r}: {e}", file=sys.stderr)
        return 2

    progress = _Progress(len(docs), not args.no_progress and len(docs) > CHUNK)
    out = sys.stdout if args.output == "-" else open(args.output, "w", encoding="utf-8")
    totals = {"documents": 0, "unaligned": 0, "cut_sentences": 0, "cut_outputs": 0}
    try:
        for begin in range(0, len(docs), CHUNK):
            chunk = docs[begin : begin + CHUNK]
            try:
                # Cuts are summed over the chunks and reported once, in the summary line.
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", WindowWarning)
                    results = extractor.extract([d["text"] for d in chunk], task, labels)
            except (InputTooLongError, ValueError) as e:  # --strict: a sentence over --max-input-tokens
                print(f"iuie extract: {e}", file=sys.stderr)
                return 2
            for doc, result in zip(chunk, results):
                record = {k: v for k, v in doc.items() if k != "text"}
                record.update(result.to_json())
                out.write(json.dumps(record, ensure_ascii=False) + "\n")
                totals["unaligned"] += result.unaligned
            totals["cut_sentences"] += extractor.last_stats["cut_sentences"]
            totals["cut_outputs"] += extractor.last_stats["cut_outputs"]
            totals["documents"] += len(chunk)
            out.flush()
            progress.update(begin + len(chunk))
    finally:
        if out is not sys.stdout:
            out.close()
    print(
        f"iuie extract: {totals['documents']} documents, {totals['unaligned']} mentions not found in their "
        f"text; {totals['cut_sentences']} sentences over --max-input-tokens cut into pieces, "
        f"{totals['cut_outputs']} outputs reached --max-decode-length",
        file=sys.stderr,
    )
    return 0
