"""Label maps: corpus codes (``PER``, ``P931``, ``Live_In``) to the natural-language names of the layout.

InstructUIE renamed every corpus label to words (``PER`` -> ``person``, ``OrgBased_In`` -> ``organization
based in``) because the labels appear in the instruction and the target text. A label map is a JSON object
``{code: name}``; FewRel's ``pid2name.json`` shape ``{code: [name, description]}`` is accepted too (the first
item is the name). One map covers entity types, relation types, event types and argument roles.

A code missing from the map is, by default, *normalized*: camelCase is split, ``_`` and ``-`` become spaces,
runs of spaces collapse, and the result is lower-cased (``OrgBased_In`` -> ``org based in``,
``creative-work`` -> ``creative work``, ``PER`` -> ``per``). With ``unknown="keep"`` it is written as is.
Either way every code is counted in the report, and the codes the map did not name are listed there, so a
user can see what to add to the map. Mapping a relation code to ``NA`` marks "no relation" (the benchmark's
convention; ``NA`` is left out of ``labels.json``).
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Mapping, Sequence
from typing import Any

from iuie.convert.report import ConversionError, ConversionReport
from iuie.ie.records import Argument, Entity, Event, Record, Relation

UNKNOWN_POLICIES = ("normalize", "keep")

_CAMEL = re.compile(r"(?<=[a-z])(?=[A-Z])")
_SEPARATORS = re.compile(r"[\s_\-]+")


def normalize_label(code: str) -> str:
    """``OrgBased_In`` -> ``org based in``: the rule for codes a label map does not name."""
    return _SEPARATORS.sub(" ", _CAMEL.sub(" ", code)).strip().lower() or code


@dataclasses.dataclass(frozen=True)
class LabelMap:
    """``{code: name}`` plus the policy for codes it does not hold."""

    names: Mapping[str, str] = dataclasses.field(default_factory=dict)
    unknown: str = "normalize"

    def __post_init__(self):
        if self.unknown not in UNKNOWN_POLICIES:
            raise ValueError(f"unknown-label policy must be one of {UNKNOWN_POLICIES}, got {self.unknown!r}")

    def name(self, code: str) -> tuple[str, bool]:
        """The layout name of a code, and whether the map named it."""
        if code in self.names:
            return self.names[code], True
        return (normalize_label(code) if self.unknown == "normalize" else code), False


def parse_label_map(raw: Any, path: str = "<label map>", unknown: str = "normalize") -> LabelMap:
    """Reads ``{code: name}`` or ``{code: [name, description, ...]}`` (FewRel's ``pid2name.json``)."""
    if not isinstance(raw, dict):
        raise ConversionError(path, None, f"a label map is a JSON object {{code: name}}, got {type(raw).__name__}")
    names = {}
    for code, value in raw.items():
        if isinstance(value, list) and value:
            value = value[0]
        if not isinstance(value, str) or not value.strip():
            raise ConversionError(
                path,
                None,
                f"label map entry {code!r}: expected a non-empty name or [name, description], got {raw[code]!r}",
            )
        names[code] = value.strip()
    return LabelMap(names, unknown)


def load_label_map(path: str | None, unknown: str = "normalize") -> LabelMap:
    """The map in a JSON file; with no file, an empty map (every code follows ``unknown``)."""
    if path is None:
        return LabelMap({}, unknown)
    try:
        with open(path, encoding="utf-8") as f:
            raw = json.load(f)
    except FileNotFoundError:
        raise ConversionError(path, None, "label map file not found") from None
    except json.JSONDecodeError as e:
        raise ConversionError(path, e.lineno, f"label map is not valid JSON: {e.msg}") from None
    return parse_label_map(raw, path, unknown)


class _Renamer:
    """Applies a map to every label of a record, noting each code's name and use in the report."""

    def __init__(self, label_map: LabelMap, report: ConversionReport):
        self.label_map, self.report = label_map, report

    def __call__(self, code: str) -> str:
        if code in ("", "NA"):
            # Already the layout's "no type" / "no relation" markers; nothing to name.
            return code
        name, known = self.label_map.name(code)
        self.report.label_counts[code] += 1
        (self.report.labels_mapped if known else self.report.labels_unmapped)[code] = name
        return name

    def entity(self, e: Entity) -> Entity:
        return dataclasses.replace(e, type=self(e.type))

    def record(self, r: Record) -> Record:
        return Record(
            r.sentence,
            tuple(self.entity(e) for e in r.entities),
            tuple(Relation(self.entity(x.head), self(x.type), self.entity(x.tail)) for x in r.relations),
            tuple(
                Event(
                    ev.trigger,
                    self(ev.type),
                    ev.start,
                    ev.end,
                    tuple(Argument(a.name, self(a.role), a.start, a.end) for a in ev.arguments),
                )
                for ev in r.events
            ),
        )


def apply_label_map(records: Sequence[Record], label_map: LabelMap, report: ConversionReport) -> list[Record]:
    """Renames entity, relation and event types and roles; the report learns every code it saw."""
    rename = _Renamer(label_map, report)
    return [rename.record(r) for r in records]
