"""CoNLL-style column files with BIO, IOB1, BIOES (IOBES, BILOU) or IO tags -> NER records.

One token per line, a token column and a tag column (by default the first and the last), separated by
whitespace (default) or by tabs (``separator="tab"``, for tokens that hold spaces). Blank lines end a
sentence; ``-DOCSTART-`` lines end one too and are counted as ignored. The sentence text is the tokens
joined by one space, so entity offsets are exact sums of token lengths.

Tag schemes (``scheme``): ``BIO`` (IOB2), ``IOB1``, ``BIOES`` (also read as IOBES, and BILOU with ``L`` =
``E`` and ``U`` = ``S``), ``IO`` (bare types allowed, consecutive tokens of one type are one entity), and
``auto`` (per file: BIOES when any ``E-``/``S-``/``L-``/``U-`` tag occurs, else BIO). A tag is ``O`` or
``<prefix>-<type>``; the type may itself contain ``-`` (``B-creative-work``). Any other tag is an error
naming the file and line.

The rule for ill-formed sequences (what each scheme's reader does, and counts as "changed"):

* ``I-X`` that does not continue an entity of type X starts a new entity (BIO, BIOES). In IOB1 this is how
  an entity normally starts, so it is not counted there.
* ``E-X`` that does not close an entity of type X is a one-token entity (BIOES).
* an entity that ``B-X``/``I-X`` opened and no ``E-X`` closed ends at its last tagged token (BIOES).

Decoding is otherwise the textbook one, so a well-formed sequence re-encodes to the same tags.

With tab separators a token may carry surrounding whitespace: it is stripped (counted). A token that is
empty after stripping is removed: counted as "changed" when tagged ``O``, as "dropped" otherwise.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

from iuie.convert.report import ConversionError, ConversionReport
from iuie.ie.records import Entity, Record

SCHEMES = ("auto", "BIO", "IOB1", "BIOES", "IO")
SEPARATORS = ("whitespace", "tab")
DOCSTART = "-DOCSTART-"

_TAG = re.compile(r"^([BIESLU])-(.+)$")

REASON_I_WITHOUT_B = "I- tag not continuing an entity of its type: starts a new entity"
REASON_E_WITHOUT_B = "E- tag not closing an entity of its type: one-token entity"
REASON_NOT_CLOSED = "entity not closed by E-: ends at its last tagged token"


class _Sentence:
    """Tokens and tags of one sentence, with the line of each token (for messages)."""

    def __init__(self):
        self.tokens: list[str] = []
        self.tags: list[str] = []
        self.lines: list[int] = []


def _read_sentences(
    path: str, token_column: int, tag_column: int, separator: str, report: ConversionReport
) -> list[_Sentence]:
    sentences = []
    current = _Sentence()

    def end_sentence():
        nonlocal current
        if current.tokens or current.tags:
            sentences.append(current)
        current = _Sentence()

    try:
        f = open(path, encoding="utf-8", newline="")
    except OSError as e:
        raise ConversionError(path, None, f"cannot read: {e.strerror}") from None
    with f:
        try:
            lines = f.read().splitlines()
        except UnicodeDecodeError as e:
            raise ConversionError(path, None, f"not UTF-8 text ({e.reason} at byte {e.start})") from None
    for lineno, line in enumerate(lines, 1):
        if not line.strip():
            end_sentence()
            continue
        cols = line.split("\t") if separator == "tab" else line.split()
        need = (
            max(
                token_column if token_column >= 0 else -token_column - 1,
                tag_column if tag_column >= 0 else -tag_column - 1,
            )
            + 1
        )
        if cols[0].strip() == DOCSTART:
            report.ignore("-DOCSTART- line", path, lineno)
            end_sentence()
            continue
        if len(cols) < need or len(cols) < 2:
            raise ConversionError(
                path,
                lineno,
                f"expected a token column and a tag column "
                f"(at least {max(need, 2)} columns), found {len(cols)}: {line!r}",
            )
        token, tag = cols[token_column], cols[tag_column].strip()
        if token.strip() and token != token.strip():
            report.change("token whitespace stripped", path, lineno, repr(token), section="NER")
        token = token.strip()
        if not token:
            if tag == "O":
                report.change("whitespace-only token removed (tag O)", path, lineno, section="NER")
            else:
                report.drop("whitespace-only token with an entity tag removed", path, lineno, tag, section="NER")
            continue
        current.tokens.append(token)
        current.tags.append(tag)
        current.lines.append(lineno)
    end_sentence()
    return sentences


def _parse_tag(tag: str, scheme: str, path: str, line: int) -> tuple[str | None, str | None]:
    """``(prefix, type)``; ``(None, None)`` for ``O``. L/U read as E/S."""
    if tag == "O":
        return None, None
    m = _TAG.match(tag)
    if m is None:
        if scheme == "IO" and tag:
            return "I", tag
        raise ConversionError(
            path, line, f"tag {tag!r} is neither O nor <prefix>-<type> (prefix one of B, I, E, S, L, U)"
        )
    prefix = {"L": "E", "U": "S"}.get(m.group(1), m.group(1))
    if scheme in ("BIO", "IOB1") and prefix in ("E", "S"):
        raise ConversionError(path, line, f"tag {tag!r} does not belong to the {scheme} scheme (use --scheme BIOES)")
    if scheme == "IO" and prefix != "I":
        raise ConversionError(path, line, f"tag {tag!r} does not belong to the IO scheme")
    return prefix, m.group(2)


def detect_scheme(tags: Iterable[str]) -> str:
    """BIOES when any E-/S-/L-/U- tag occurs, else BIO (IOB1 and IO must be named)."""
    return "BIOES" if any(t[:2] in ("E-", "S-", "L-", "U-") for t in tags) else "BIO"


def decode(
    tags: Sequence[tuple[str | None, str | None]],
    scheme: str,
    report: ConversionReport,
    path: str = "<tags>",
    lines: Sequence[int] | None = None,
) -> list[tuple[int, int, str]]:
    """Token spans ``(first, last + 1, type)`` of parsed tags, by the rules in the module docstring."""
    spans: list[tuple[int, int, str]] = []
    open_: list | None = None  # [first token, type, last token + 1]

    def line(i: int) -> int | None:
        return lines[i] if lines is not None else None

    def close() -> None:
        nonlocal open_
        if open_ is not None:
            if scheme == "BIOES":
                report.change(REASON_NOT_CLOSED, path, line(open_[2] - 1), open_[1], section="NER")
            spans.append((open_[0], open_[2], open_[1]))
            open_ = None

    for i, (prefix, etype) in enumerate(tags):
        continues = open_ is not None and open_[1] == etype
        if prefix is None:
            close()
        elif prefix == "I" and continues:
            open_[2] = i + 1
        elif prefix == "I":
            close()
            if scheme in ("BIO", "BIOES"):
                report.change(REASON_I_WITHOUT_B, path, line(i), f"I-{etype}", section="NER")
            open_ = [i, etype, i + 1]
        elif prefix == "B":
            close()
            open_ = [i, etype, i + 1]
        elif prefix == "E" and continues:
            spans.append((open_[0], i + 1, etype))
            open_ = None
        elif prefix == "E":
            close()
            report.change(REASON_E_WITHOUT_B, path, line(i), f"E-{etype}", section="NER")
            spans.append((i, i + 1, etype))
        else:  # S
            close()
            spans.append((i, i + 1, etype))
    close()
    return spans


def sentence_record(tokens: Sequence[str], spans: Iterable[tuple[int, int, str]]) -> Record:
    """The record of tokens joined by one space, with exact character offsets for token spans."""
    starts = []
    pos = 0
    for token in tokens:
        starts.append(pos)
        pos += len(token) + 1
    sentence = " ".join(tokens)
    entities = []
    for first, stop, etype in spans:
        start, end = starts[first], starts[stop - 1] + len(tokens[stop - 1])
        entities.append(Entity(sentence[start:end], etype, start, end))
    return Record(sentence, entities=tuple(entities))


def read(
    paths: Sequence[str],
    report: ConversionReport,
    *,
    scheme: str = "auto",
    token_column: int = 0,
    tag_column: int = -1,
    separator: str = "whitespace",
) -> list[Record]:
    """NER records of the column files, in file and sentence order."""
    if scheme not in SCHEMES:
        raise ValueError(f"scheme must be one of {SCHEMES}, got {scheme!r}")
    if separator not in SEPARATORS:
        raise ValueError(f"separator must be one of {SEPARATORS}, got {separator!r}")
    records = []
    for path in paths:
        sentences = _read_sentences(path, token_column, tag_column, separator, report)
        file_scheme = scheme
        if scheme == "auto":
            file_scheme = detect_scheme(t for s in sentences for t in s.tags)
        report.notes.setdefault("tag scheme", {})[path] = file_scheme
        for s in sentences:
            if not s.tokens:
                continue
            parsed = [_parse_tag(t, file_scheme, path, ln) for t, ln in zip(s.tags, s.lines)]
            spans = decode(parsed, file_scheme, report, path, s.lines)
            records.append(sentence_record(s.tokens, spans))
    return records
