"""BRAT standoff (``doc.txt`` + ``doc.ann``) -> NER, RE or EE records, one per sentence.

Annotation lines read (https://brat.nlplab.org/standoff.html):

* ``T1<TAB>Type 0 5<TAB>text``: a text-bound mention; ``Type 0 5;9 14`` is discontinuous. Fragments that
  touch (``0 5;5 9``) are one span. Other discontinuous spans are skipped (``discontinuous="skip"``,
  the default) or replaced by the one span from the first fragment's start to the last fragment's end
  (``"merge"``); either way each use is counted. The text field is checked against the ``.txt`` slice (a
  mismatch makes the mention unusable: counted). Surrounding whitespace inside a span is trimmed (counted).
* ``R1<TAB>Type Arg1:T1 Arg2:T2``: a relation, head ``Arg1``, tail ``Arg2`` (other argument names: the
  first is the head, counted).
* ``E1<TAB>Type:T3 Role:T1 Role2:T2``: an event with trigger ``T3``. Numbered roles (``Theme2``) lose their
  number, as BRAT numbers repeated roles (counted). An argument that is itself an event is written as that
  event's trigger span (counted). An argument in another sentence than its trigger is dropped (counted).
* ``A``/``M`` (attributes), ``N`` (normalizations), ``*`` (equivalences) and ``#`` (notes) lines are
  ignored and counted. Any other line is an error naming the file and line.

For NER, the ``T`` mentions that serve as event triggers are not entities (counted as ignored); entities
with the same span and type are written once (the duplicate counted).

Sentence splitting (the default; ``sentence_split=False`` gives one record per document): every line break
ends a sentence, and inside a line a sentence ends after ``.``, ``!`` or ``?`` (and any closing quotes or
brackets) when whitespace and an upper-case letter, a digit or an opening quote or bracket follow, except
after a single letter (initials) or a common abbreviation (``Dr.``, ``e.g.``, ``Inc.``: ``ABBREVIATIONS``).
Sentences are stripped of surrounding whitespace and offsets are re-based to the sentence. A mention (or a
relation's two arguments) that does not lie inside one sentence is dropped and counted.

The ``.txt`` file is read as is (no newline translation), because BRAT offsets count every character,
``\\r`` included.
"""

from __future__ import annotations

import bisect
import dataclasses
import os
import re
from collections.abc import Sequence

from iuie.convert.report import ConversionError, ConversionReport
from iuie.ie.records import Argument, Entity, Event, Record, Relation

DISCONTINUOUS = ("skip", "merge")

ABBREVIATIONS = frozenset(
    """
    mr mrs ms dr prof st jr sr vs etc e.g i.e cf fig figs al no nos vol inc ltd co corp dept est approx
    jan feb mar apr jun jul aug sep sept oct nov dec u.s u.k
""".split()
)

_BOUNDARY = re.compile(r"[.!?]+[\"')\]\u201d\u2019]*(?=\s+[\"'(\[\u201c\u2018]?[A-Z0-9])")
_LINE = re.compile(r"[^\r\n]+")
_ROLE_NUMBER = re.compile(r"^(.*\D)\d+$")


def split_sentences(text: str) -> list[tuple[int, int]]:
    """``(start, end)`` of each sentence of a document, by the rule in the module docstring."""
    spans = []
    for line in _LINE.finditer(text):
        base, body, cut = line.start(), line.group(), 0
        for m in _BOUNDARY.finditer(body):
            if m.group().startswith("."):
                before = re.search(r"(\S+)$", body[: m.start()])
                word = before.group(1).lower() if before else ""
                if len(word) == 1 and word.isalpha() or word.lstrip("(\"'") in ABBREVIATIONS:
                    continue
            spans.append((base + cut, base + m.end()))
            cut = m.end()
        spans.append((base + cut, base + len(body)))
    return [s for s in (_strip(text, a, b) for a, b in spans) if s[0] < s[1]]


def _strip(text: str, start: int, end: int) -> tuple[int, int]:
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return start, end


# --------------------------------------------------------------------------------------------------------
# The .ann file
# --------------------------------------------------------------------------------------------------------


@dataclasses.dataclass
class _TextBound:
    id: str
    type: str
    fragments: list[tuple[int, int]]
    text: str | None
    line: int


@dataclasses.dataclass
class _Relation:
    id: str
    type: str
    args: list[tuple[str, str]]
    line: int


@dataclasses.dataclass
class _Event:
    id: str
    type: str
    trigger: str
    args: list[tuple[str, str]]
    line: int


IGNORED_KINDS = {
    "A": "attribute (A) line",
    "M": "attribute (M) line",
    "N": "normalization (N) line",
    "*": "equivalence (*) line",
    "#": "note (#) line",
}


@dataclasses.dataclass
class Annotations:
    """The parsed content of one ``.ann`` file."""

    path: str
    textbounds: dict[str, _TextBound] = dataclasses.field(default_factory=dict)
    relations: list[_Relation] = dataclasses.field(default_factory=list)
    events: dict[str, _Event] = dataclasses.field(default_factory=dict)


def _arg(part: str, path: str, lineno: int) -> tuple[str, str]:
    role, sep, ref = part.partition(":")
    if not sep or not role or not ref:
        raise ConversionError(path, lineno, f"expected Role:ID, got {part!r}")
    return role, ref


def parse_ann(path: str, report: ConversionReport) -> Annotations:
    """Reads a ``.ann`` file; malformed lines raise :class:`ConversionError` naming the file and line."""
    ann = Annotations(path)
    seen: set[str] = set()
    with open(path, encoding="utf-8", newline="") as f:
        lines = f.read().splitlines()
    for lineno, line in enumerate(lines, 1):
        if not line.strip():
            continue
        kind = line[0]
        if kind in IGNORED_KINDS:
            report.ignore(IGNORED_KINDS[kind], path, lineno)
            continue
        fields = line.split("\t", 2)
        ident = fields[0].strip()
        if kind not in "TRE" or len(fields) < 2 or not ident[1:].isdigit():
            raise ConversionError(path, lineno, f"not a BRAT annotation line (T, R, E, A, M, N, *, #): {line!r}")
        if ident in seen:
            raise ConversionError(path, lineno, f"annotation id {ident} used twice")
        seen.add(ident)
        body = fields[1].split()
        if not body:
            raise ConversionError(path, lineno, f"{ident} has no type")
        if kind == "T":
            type_, _, rest = fields[1].partition(" ")
            fragments = []
            for frag in rest.split(";"):
                numbers = frag.split()
                if len(numbers) != 2 or not all(n.isdigit() for n in numbers) or int(numbers[0]) > int(numbers[1]):
                    raise ConversionError(
                        path, lineno, f"{ident}: expected 'Type start end[;start end]', got {fields[1]!r}"
                    )
                fragments.append((int(numbers[0]), int(numbers[1])))
            text = fields[2] if len(fields) > 2 else None
            ann.textbounds[ident] = _TextBound(ident, type_, fragments, text, lineno)
        elif kind == "R":
            args = [_arg(p, path, lineno) for p in body[1:]]
            if len(args) != 2:
                raise ConversionError(path, lineno, f"{ident}: a relation needs two arguments, got {len(args)}")
            ann.relations.append(_Relation(ident, body[0], args, lineno))
        else:
            type_, trigger = _arg(body[0], path, lineno)
            ann.events[ident] = _Event(ident, type_, trigger, [_arg(p, path, lineno) for p in body[1:]], lineno)
    return ann


# --------------------------------------------------------------------------------------------------------
# One document -> sentence records
# --------------------------------------------------------------------------------------------------------


class _Document:
    """Resolves mentions of one document to sentence-relative spans, counting everything it cannot use."""

    def __init__(
        self,
        text: str,
        ann: Annotations,
        sentences: list[tuple[int, int]],
        discontinuous: str,
        report: ConversionReport,
    ):
        self.text, self.ann, self.sentences = text, ann, sentences
        self.starts = [s for s, _ in sentences]
        self.discontinuous, self.report = discontinuous, report
        self.path = ann.path

    def _check_ref(self, ref: str, line: int) -> None:
        if ref not in self.ann.textbounds and ref not in self.ann.events:
            raise ConversionError(self.path, line, f"reference to unknown annotation {ref!r}")

    def span(self, tid: str, what: str, section: str) -> tuple[int, int] | None:
        """Document span of a T mention; None (counted, for ``what`` in ``section``) when it is unusable."""
        tb = self.ann.textbounds[tid]
        if tb.fragments[-1][1] > len(self.text):
            raise ConversionError(
                self.path,
                tb.line,
                f"{tid}: offset {tb.fragments[-1][1]} beyond the end of the .txt file ({len(self.text)} characters)",
            )
        slices = [self.text[s:e] for s, e in tb.fragments]
        if tb.text is not None and tb.text not in ("".join(slices), " ".join(slices)):
            self.report.drop(
                f"{what}: T text differs from the .txt slice",
                self.path,
                tb.line,
                f"{tid} {tb.text!r} vs {' '.join(slices)!r}",
                section=section,
            )
            return None
        merged = [list(tb.fragments[0])]
        for s, e in tb.fragments[1:]:
            if s == merged[-1][1]:
                merged[-1][1] = e
            else:
                merged.append([s, e])
        start, end = merged[0][0], merged[-1][1]
        if len(merged) > 1:
            if self.discontinuous == "skip":
                self.report.drop(f"{what}: discontinuous span skipped", self.path, tb.line, tid, section=section)
                return None
            self.report.change(
                f"{what}: discontinuous span merged into one covering span", self.path, tb.line, tid, section=section
            )
        trimmed = _strip(self.text, start, end)
        if trimmed[0] == trimmed[1]:
            self.report.drop(f"{what}: empty or whitespace-only span", self.path, tb.line, tid, section=section)
            return None
        if trimmed != (start, end):
            self.report.change(f"{what}: surrounding whitespace trimmed", self.path, tb.line, tid, section=section)
        return trimmed

    def sentence_of(self, span: tuple[int, int]) -> int | None:
        i = bisect.bisect_right(self.starts, span[0]) - 1
        if i >= 0 and span[1] <= self.sentences[i][1]:
            return i
        return None

    def locate(self, tid: str, what: str, section: str) -> tuple[int, int, int] | None:
        """``(sentence index, start, end)`` re-based to the sentence, or None (counted)."""
        span = self.span(tid, what, section)
        if span is None:
            return None
        i = self.sentence_of(span)
        if i is None:
            self.report.drop(
                f"{what}: crosses a sentence boundary",
                self.path,
                self.ann.textbounds[tid].line,
                f"{tid} {self.text[span[0] : span[1]]!r}",
                section=section,
            )
            return None
        base = self.sentences[i][0]
        return i, span[0] - base, span[1] - base

    def resolve(self, ref: str, line: int, what: str, section: str) -> tuple[str, tuple[int, int, int] | None]:
        """A relation or event argument: a T id, or an E id standing for its trigger."""
        self._check_ref(ref, line)
        if ref in self.ann.events:
            self.report.change(f"{what}: an event, written as its trigger span", self.path, line, ref, section=section)
            ref = self.ann.events[ref].trigger
            self._check_ref(ref, line)
        return ref, self.locate(ref, what, section)

    def records(self) -> list[Record]:
        sentences = [self.text[s:e] for s, e in self.sentences]
        entities: list[list[Entity]] = [[] for _ in sentences]
        relations: list[list[Relation]] = [[] for _ in sentences]
        events: list[list[Event]] = [[] for _ in sentences]

        triggers = {ev.trigger for ev in self.ann.events.values()}
        for ev in self.ann.events.values():
            self._check_ref(ev.trigger, ev.line)
            if ev.trigger not in self.ann.textbounds:
                raise ConversionError(self.path, ev.line, f"{ev.id}: trigger {ev.trigger} is not a T annotation")
        seen = set()
        for tid, tb in self.ann.textbounds.items():
            if tid in triggers:
                self.report.ignore("T used as an event trigger: not an entity", self.path, tb.line, tid, section="NER")
                continue
            loc = self.locate(tid, "entity", "NER")
            if loc is None:
                continue
            i, s, e = loc
            if (i, s, e, tb.type) in seen:
                self.report.drop("entity: duplicate (same span and type)", self.path, tb.line, tid, section="NER")
                continue
            seen.add((i, s, e, tb.type))
            entities[i].append(Entity(sentences[i][s:e], tb.type, s, e))

        for rel in self.ann.relations:
            names = [role for role, _ in rel.args]
            if names == ["Arg2", "Arg1"]:
                rel_args = rel.args[::-1]
            else:
                rel_args = rel.args
                if names != ["Arg1", "Arg2"]:
                    self.report.change(
                        "relation: arguments not named Arg1/Arg2, the first is the head",
                        self.path,
                        rel.line,
                        rel.id,
                        section="RE",
                    )
            located = [self.resolve(ref, rel.line, "relation argument", "RE") for _, ref in rel_args]
            if any(loc is None for _, loc in located):
                self.report.drop(
                    "relation: dropped with its unusable argument", self.path, rel.line, rel.id, section="RE"
                )
                continue
            (h_id, (hi, hs, he)), (t_id, (ti, ts, te)) = located
            if hi != ti:
                self.report.drop(
                    "relation: arguments in different sentences", self.path, rel.line, rel.id, section="RE"
                )
                continue
            s = sentences[hi]
            relations[hi].append(
                Relation(
                    Entity(s[hs:he], self.ann.textbounds[h_id].type, hs, he),
                    rel.type,
                    Entity(s[ts:te], self.ann.textbounds[t_id].type, ts, te),
                )
            )

        for ev in self.ann.events.values():
            loc = self.locate(ev.trigger, "event trigger", "EE")
            if loc is None:
                self.report.drop("event: dropped with its unusable trigger", self.path, ev.line, ev.id, section="EE")
                continue
            i, s, e = loc
            arguments = []
            for role, ref in ev.args:
                m = _ROLE_NUMBER.match(role)
                if m:
                    self.report.change("event argument: role number removed", self.path, ev.line, role, section="EE")
                    role = m.group(1)
                _, arg_loc = self.resolve(ref, ev.line, "event argument", "EE")
                if arg_loc is None:
                    continue
                ai, a_s, a_e = arg_loc
                if ai != i:
                    self.report.drop(
                        "event argument: outside the trigger's sentence",
                        self.path,
                        ev.line,
                        f"{ev.id} {role}:{ref}",
                        section="EE",
                    )
                    continue
                arguments.append(Argument(sentences[i][a_s:a_e], role, a_s, a_e))
            events[i].append(Event(sentences[i][s:e], ev.type, s, e, tuple(arguments)))

        return [
            Record(
                sentence,
                tuple(sorted(entities[i], key=lambda x: (x.start, x.end, x.type))),
                tuple(sorted(relations[i], key=lambda r: (r.head.start, r.head.end, r.tail.start, r.tail.end, r.type))),
                tuple(sorted(events[i], key=lambda x: (x.start, x.end, x.type))),
            )
            for i, sentence in enumerate(sentences)
        ]


# --------------------------------------------------------------------------------------------------------
# Files and folders
# --------------------------------------------------------------------------------------------------------


def ann_files(path: str) -> list[str]:
    """The ``.ann`` files of a folder (recursively, in path order), or the one ``.ann`` file named."""
    if os.path.isfile(path):
        return [path]
    found = []
    for dirpath, dirnames, filenames in os.walk(path):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        found.extend(os.path.join(dirpath, n) for n in sorted(filenames) if n.endswith(".ann"))
    return found


def has_ann(path: str) -> bool:
    return os.path.isdir(path) and bool(ann_files(path))


def _read_text(path: str) -> str:
    try:
        with open(path, encoding="utf-8", newline="") as f:
            return f.read()
    except FileNotFoundError:
        raise ConversionError(path, None, "the .txt file of this .ann file is missing") from None
    except UnicodeDecodeError as e:
        raise ConversionError(path, None, f"not UTF-8 text ({e.reason} at byte {e.start})") from None


def read(
    paths: Sequence[str], report: ConversionReport, *, sentence_split: bool = True, discontinuous: str = "skip"
) -> list[Record]:
    """Records of every document under the given folders (or ``.ann`` files), in path order."""
    if discontinuous not in DISCONTINUOUS:
        raise ValueError(f"discontinuous must be one of {DISCONTINUOUS}, got {discontinuous!r}")
    report.notes["sentence split"] = "lines and sentence punctuation" if sentence_split else "one per document"
    records = []
    for folder in paths:
        anns = ann_files(folder)
        if os.path.isdir(folder):
            stems = {os.path.splitext(p)[0] for p in anns}
            for dirpath, _, filenames in os.walk(folder):
                for n in sorted(filenames):
                    if n.endswith(".txt") and os.path.join(dirpath, n[:-4]) not in stems:
                        report.ignore(".txt file without an .ann file", os.path.join(dirpath, n))
        for ann_path in anns:
            text = _read_text(os.path.splitext(ann_path)[0] + ".txt")
            ann = parse_ann(ann_path, report)
            sentences = (
                split_sentences(text) if sentence_split else [s for s in [_strip(text, 0, len(text))] if s[0] < s[1]]
            )
            records.extend(_Document(text, ann, sentences, discontinuous, report).records())
    return records


def infer_task(paths: Sequence[str]) -> str:
    """EE when any ``.ann`` file has an event, else RE when any has a relation, else NER."""
    kinds = set()
    for folder in paths:
        for ann_path in ann_files(folder):
            with open(ann_path, encoding="utf-8", newline="") as f:
                kinds.update(line[:1] for line in f)
    return "EE" if "E" in kinds else "RE" if "R" in kinds else "NER"
