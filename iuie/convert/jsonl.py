"""JSON Lines with character spans -> NER, RE or EE records, one per line.

The schema (one JSON object per line; blank lines are skipped)::

    {"text": "Alice works for Acme .",                       # or "sentence"
     "entities": [{"start": 0, "end": 5, "label": "PER"},   # or "spans" (Prodigy); "type" for "label";
                  {"start": 16, "end": 20, "label": "ORG"}], #   an optional "text" is checked
     "relations": [{"head": 0, "tail": 1, "label": "works_for"}],
     "events": [{"type": "Attack",                            # or "label"
                 "trigger": {"start": 0, "end": 5},           # or an index into "entities"
                 "arguments": [{"role": "Attacker", "start": 6, "end": 9},
                               {"role": "Target", "entity": 1}]}]}

Offsets are character offsets into the text, end exclusive. A relation's ``head`` and ``tail`` are indices
into the entity list, or span objects ``{"start", "end"}`` (Prodigy's ``head_span``/``child_span`` and
``child`` are read too); a span object takes its type from its own ``label``/``type``, else from the entity
with the same offsets, else ``""``. Mention text is always the slice of the text at the offsets: a given
``text`` that differs is counted (the slice is written). An empty span (``start == end``) is dropped and
counted; offsets outside the text, a missing field or a bad index are errors naming the file and line.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from iuie.convert.report import ConversionError, ConversionReport
from iuie.ie.records import Argument, Entity, Event, Record, Relation


class _Line:
    """Reads one line's object, raising errors that name the file, line and field."""

    def __init__(self, obj: Any, path: str, lineno: int, report: ConversionReport):
        self.path, self.lineno, self.report = path, lineno, report
        if not isinstance(obj, dict):
            self.fail("", f"expected a JSON object, got {type(obj).__name__}")
        self.obj = obj
        text = obj.get("text", obj.get("sentence"))
        if not isinstance(text, str):
            self.fail("text", "missing, or not a string")
        self.text: str = text

    def fail(self, field: str, message: str):
        raise ConversionError(self.path, self.lineno, f"{field + ': ' if field else ''}{message}")

    def list_field(self, *keys: str) -> list[Any]:
        for key in keys:
            if key in self.obj and self.obj[key] is not None:
                value = self.obj[key]
                if not isinstance(value, list):
                    self.fail(key, f"expected a list, got {type(value).__name__}")
                return value
        return []

    def label(self, obj: dict, field: str, *keys: str, required: bool = True) -> str:
        for key in keys:
            if key in obj:
                if not isinstance(obj[key], str):
                    self.fail(f"{field}.{key}", "expected a string")
                return obj[key]
        if required:
            self.fail(field, f"missing {' or '.join(repr(k) for k in keys)}")
        return ""

    def span(self, obj: Any, field: str, section: str) -> tuple[int, int] | None:
        """Checked ``(start, end)``; None (counted) for an empty span."""
        if not isinstance(obj, dict):
            self.fail(field, f"expected an object with start and end, got {obj!r}")
        start, end = obj.get("start"), obj.get("end")
        if not all(isinstance(v, int) and not isinstance(v, bool) for v in (start, end)):
            self.fail(field, f"start and end must be integers, got {start!r} and {end!r}")
        if not 0 <= start <= end <= len(self.text):
            self.fail(field, f"offsets [{start}, {end}) outside the text (length {len(self.text)})")
        if start == end:
            self.report.drop("empty span (start == end)", self.path, self.lineno, field, section=section)
            return None
        given = obj.get("text")
        if isinstance(given, str) and given != self.text[start:end]:
            self.report.change(
                "given mention text differs from the offsets' slice (slice written)",
                self.path,
                self.lineno,
                f"{field}: {given!r} vs {self.text[start:end]!r}",
                section=section,
            )
        return start, end

    def entity_at(self, span: tuple[int, int], type_: str) -> Entity:
        return Entity(self.text[span[0] : span[1]], type_, span[0], span[1])

    def entities(self, section: str) -> list[Entity | None]:
        """Every entry of the entity list, None where it was dropped (indices stay those of the input)."""
        key = "entities" if "entities" in self.obj else "spans"
        out = []
        for i, e in enumerate(self.list_field("entities", "spans")):
            field = f"{key}[{i}]"
            span = self.span(e, field, section)
            type_ = self.label(e, field, "label", "type")
            out.append(None if span is None else self.entity_at(span, type_))
        return out

    def endpoint(
        self, rel: dict, field: str, keys: Sequence[str], entities: list[Entity | None], section: str
    ) -> Entity | None:
        for key in keys:
            if key not in rel:
                continue
            ref = rel[key]
            if isinstance(ref, int) and not isinstance(ref, bool):
                if not 0 <= ref < len(entities):
                    self.fail(f"{field}.{key}", f"entity index {ref} out of range ({len(entities)} entities)")
                if entities[ref] is None:
                    self.report.drop(
                        "dropped with an empty entity it refers to",
                        self.path,
                        self.lineno,
                        f"{field}.{key}",
                        section=section,
                    )
                return entities[ref]
            if isinstance(ref, dict):
                span = self.span(ref, f"{field}.{key}", section)
                if span is None:
                    return None
                type_ = self.label(ref, f"{field}.{key}", "label", "type", required=False)
                if not type_:
                    type_ = next((e.type for e in entities if e is not None and (e.start, e.end) == span), "")
                return self.entity_at(span, type_)
        self.fail(field, f"missing {' or '.join(repr(k) for k in keys)}")

    def record(self) -> Record:
        entities = self.entities("NER")
        # The RE and EE sections count their own losses of entities, so resolve them again per section.
        re_entities = self.entities("RE") if self.list_field("relations") else entities
        relations = []
        for i, rel in enumerate(self.list_field("relations")):
            field = f"relations[{i}]"
            if not isinstance(rel, dict):
                self.fail(field, "expected an object")
            type_ = self.label(rel, field, "label", "type")
            head = self.endpoint(rel, field, ("head_span", "head"), re_entities, "RE")
            tail = self.endpoint(rel, field, ("child_span", "tail_span", "tail", "child"), re_entities, "RE")
            if head is not None and tail is not None:
                relations.append(Relation(head, type_, tail))
        ee_entities = self.entities("EE") if self.list_field("events") else entities
        events = []
        for i, ev in enumerate(self.list_field("events")):
            field = f"events[{i}]"
            if not isinstance(ev, dict):
                self.fail(field, "expected an object")
            type_ = self.label(ev, field, "type", "label")
            trigger = self.endpoint(ev, field, ("trigger",), ee_entities, "EE")
            args = ev.get("arguments", [])
            if not isinstance(args, list):
                self.fail(f"{field}.arguments", "expected a list")
            arguments = []
            for j, arg in enumerate(args):
                a_field = f"{field}.arguments[{j}]"
                if not isinstance(arg, dict):
                    self.fail(a_field, "expected an object")
                role = self.label(arg, a_field, "role", "label", "type")
                if "entity" in arg:
                    target = self.endpoint(arg, a_field, ("entity",), ee_entities, "EE")
                else:
                    span = self.span(arg, a_field, "EE")
                    target = None if span is None else self.entity_at(span, "")
                if target is not None:
                    arguments.append(Argument(target.name, role, target.start, target.end))
            if trigger is None:
                self.report.drop("event dropped with its empty trigger", self.path, self.lineno, field, section="EE")
                continue
            events.append(Event(trigger.name, type_, trigger.start, trigger.end, tuple(arguments)))
        return Record(self.text, tuple(e for e in entities if e is not None), tuple(relations), tuple(events))


def _objects(path: str):
    try:
        f = open(path, encoding="utf-8")
    except OSError as e:
        raise ConversionError(path, None, f"cannot read: {e.strerror}") from None
    with f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                yield lineno, json.loads(line)
            except json.JSONDecodeError as e:
                raise ConversionError(path, lineno, f"not valid JSON: {e.msg} (column {e.colno})") from None


def read(paths: Sequence[str], report: ConversionReport) -> list[Record]:
    """Records of the JSON Lines files, in file and line order."""
    return [_Line(obj, path, lineno, report).record() for path in paths for lineno, obj in _objects(path)]


def infer_task(paths: Sequence[str]) -> str:
    """EE when any line has an event, else RE when any has a relation, else NER."""
    found = set()
    for path in paths:
        for _, obj in _objects(path):
            if isinstance(obj, dict):
                found.update(k for k in ("events", "relations") if obj.get(k))
    return "EE" if "events" in found else "RE" if "relations" in found else "NER"
