r"""Extract entities, relations or events from texts with a checkpoint (zero-shot: any labels), as JSONL.

Input (``--input FILE``, or ``-``/nothing for stdin): UTF-8 plain text, one document per line, or JSONL with
a ``"text"`` field per line (detected per line: a line that parses as a JSON object with ``text`` is JSONL;
other fields of that object are kept in the output). Lines end at ``\n`` only (``\r\n`` too: its ``\r`` is
dropped); a lone ``\r`` is part of its line's text. Output (``--output FILE`` or stdout): row i is line i,
blank lines included (an empty text gives an empty result), one JSON object per line with the text, the typed
results with character offsets into it (``start``/``end`` null for a mention found nowhere in the text), the
windows read and the raw model outputs.

Long documents are read in overlapping windows of the input length the checkpoint was trained with
(``--max-input-tokens``, ``--window-overlap``); a progress line shows the windows of a long document.

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

from iuie.commands import arg_types
from iuie.extraction.extractor import DEFAULT_MAX_INPUT_TOKENS, TASKS

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
    parser.add_argument(
        "--max-input-tokens",
        type=int,
        default=None,
        help="window length in tokens, instruction and options included (default: the input length the "
        f"checkpoint was trained with, from its run_info.json or config.gin, else {DEFAULT_MAX_INPUT_TOKENS})",
    )
    parser.add_argument(
        "--window-overlap",
        type=arg_types.count,
        default=None,
        help="tokens of text consecutive windows share (default: a quarter of a window's text room; 0: none)",
    )
    parser.add_argument("--max-decode-length", type=int, default=50)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument(
        "--constrained", action="store_true", help="constrained decoding: only option labels and mentions from the text"
    )
    parser.add_argument(
        "--mentions-inside-words",
        action="store_true",
        help="with --constrained: a mention may start or end inside a word (default: at word boundaries only)",
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


def split_lines(data: str) -> list[str]:
    r"""The lines of a text: split at ``\n`` only, not at the other line ends of ``str.splitlines`` or
    universal newlines (a lone ``\r`` stays in its line: splitting there made 3 rows of 2 lines); one
    ``\r`` before the ``\n`` is dropped (CRLF files). A final ``\n`` ends the last line, it starts none."""
    if not data:
        return []
    lines = data.split("\n")
    if lines[-1] == "":
        lines.pop()
    return [line[:-1] if line.endswith("\r") else line for line in lines]


def _read_text(path: str) -> str:
    """The whole input as text, newlines untranslated (``newline=""``), from a file or stdin."""
    try:
        if path == "-":
            raw = getattr(sys.stdin, "buffer", None)
            return raw.read().decode("utf-8") if raw is not None else sys.stdin.read()
        with open(path, encoding="utf-8", newline="") as f:
            return f.read()
    except UnicodeDecodeError as e:
        raise ValueError(f"{'stdin' if path == '-' else path}: not UTF-8 text ({e})") from None


def _read(lines: Iterable[str]) -> list[dict[str, Any]]:
    """One document per line, blank lines included (row i is line i)."""
    docs = []
    for number, line in enumerate(lines, 1):
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
    """Progress on stderr, rewritten in place on a terminal, one line per update otherwise (logs stay
    readable): ``extract: 128/1000 documents (12.8%) 3.1 docs/s`` after each chunk of documents (over
    ``CHUNK`` documents), and ``extract: document 1/1: window 48/175 (27.4%) 5.1 windows/s`` after each
    decode batch when a chunk holds a document of several windows and more than one batch of windows."""

    def __init__(self, total: int, enabled: bool, batch_size: int):
        self.total, self.enabled, self.batch_size = total, enabled and total > 0, batch_size
        self.documents = self.enabled and total > CHUNK
        self.start = time.monotonic()
        self.tty = sys.stderr.isatty()

    def _write(self, line: str, last: bool) -> None:
        sys.stderr.write(("\r" + line) if self.tty else line + "\n")
        if self.tty and last:
            sys.stderr.write("\n")
        sys.stderr.flush()

    def update(self, done: int) -> None:
        if not self.documents:
            return
        rate = done / max(time.monotonic() - self.start, 1e-9)
        line = f"extract: {done}/{self.total} documents ({100 * done / self.total:.1f}%) {rate:.1f} docs/s"
        self._write(line, done >= self.total)

    def windows(self, first: int, count: int):
        """The ``progress(done, total)`` callback of ``Extractor.extract`` for documents ``first`` to
        ``first + count - 1`` (0-based)."""
        start = time.monotonic()

        def report(done: int, total: int) -> None:
            # More windows than documents: some document has several; one batch only: nothing to wait for.
            if not self.enabled or total <= count or total <= self.batch_size:
                return
            which = f"document {first + 1}" if count == 1 else f"documents {first + 1}-{first + count}"
            rate = done / max(time.monotonic() - start, 1e-9)
            line = (
                f"extract: {which}/{self.total}: window {done}/{total} ({100 * done / total:.1f}%) {rate:.1f} windows/s"
            )
            self._write(line, done >= total)

        return report


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
        docs = _read(split_lines(_read_text(args.input)))
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
            window_overlap=args.window_overlap,
            word_boundaries=not args.mentions_inside_words,
        )
    except (FileNotFoundError, CheckpointError, ValueError) as e:
        print(f"iuie extract: cannot load checkpoint {args.checkpoint!r}: {e}", file=sys.stderr)
        return 2

    progress = _Progress(len(docs), not args.no_progress, extractor.batch_size)
    out = sys.stdout if args.output == "-" else open(args.output, "w", encoding="utf-8")
    totals = {"documents": 0, "windows": 0, "unaligned": 0, "merged": 0, "cut_sentences": 0, "cut_outputs": 0}
    overlap = 0
    began = time.monotonic()
    try:
        for begin in range(0, len(docs), CHUNK):
            chunk = docs[begin : begin + CHUNK]
            try:
                # Cuts are summed over the chunks and reported once, in the summary line.
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", WindowWarning)
                    results = extractor.extract(
                        [d["text"] for d in chunk], task, labels, progress=progress.windows(begin, len(chunk))
                    )
            except (InputTooLongError, ValueError) as e:  # --strict: a sentence over --max-input-tokens
                print(f"iuie extract: {e}", file=sys.stderr)
                return 2
            for doc, result in zip(chunk, results):
                record = {k: v for k, v in doc.items() if k != "text"}
                record.update(result.to_json())
                out.write(json.dumps(record, ensure_ascii=False) + "\n")
                totals["unaligned"] += result.unaligned
            for key in ("windows", "merged", "cut_sentences"):
                totals[key] += extractor.last_stats[key]
            overlap = extractor.last_stats["overlap_tokens"]
            totals["cut_outputs"] += extractor.last_stats["cut_outputs"]
            totals["documents"] += len(chunk)
            out.flush()
            progress.update(begin + len(chunk))
    finally:
        if out is not sys.stdout:
            out.close()
    print(
        f"iuie extract: {totals['documents']} documents in {totals['windows']} windows of "
        f"{extractor.max_input_tokens} tokens ({extractor.window_source}) overlapping by {overlap} tokens, "
        f"{time.monotonic() - began:.1f}s; {totals['unaligned']} mentions not found in their text, "
        f"{totals['merged']} found twice merged; {totals['cut_sentences']} sentences over --max-input-tokens "
        f"cut into pieces, {totals['cut_outputs']} outputs reached --max-decode-length",
        file=sys.stderr,
    )
    return 0
