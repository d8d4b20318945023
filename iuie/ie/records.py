"""Typed IE records and the loader for the IE INSTRUCTIONS layout.

A dataset folder looks like ``<root>/<TASK>/<dataset name>/{train,dev,test}.json`` plus ``labels.json``,
with TASK one of NER, RE, EE, EET, EEA. Each split file is a JSON list of records::

    {"sentence": str,
     "entities": [{"name", "type", "pos": [start, end]}],                     # NER
     "relations": [{"head": {"name", "type", "pos"}, "type", "tail": {...}}],   # RE
     "events": [{"trigger", "type", "pos", "arguments": [{"name", "role", "pos"}]}]}  # EE, EET, EEA

Offsets are character offsets into ``sentence``, end exclusive. The reference implementation never reads
``pos``, and released benchmark files carry missing or token-based offsets, so this loader does not trust
them: a mention whose ``pos`` is absent or does not match its text is re-aligned by searching the text in
the sentence (the occurrence nearest the given start wins) and counted. ``strict=True`` refuses instead.

Validation errors are :class:`RecordError` (file, record index, field). With ``strict=False`` a bad record
is skipped and counted per reason in the :class:`LoadReport`; nothing is dropped without being counted.

This is a leaf module: it imports nothing else from iuie.
"""

from __future__ import annotations

import collections
import dataclasses
import json
import os
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

TASKS = ("NER", "RE", "EE", "EET", "EEA")
SPLITS = ("train", "dev", "test")
LABELS_FILE = "labels.json"

# Types that mark "no entity / no relation / no event" in the benchmark (FORMATS.md: a mention "counts"
# when its type is neither of these).
NON_COUNTING_TYPES = frozenset({"NA", ""})


def counts(label: str) -> bool:
    """Whether a mention with this type takes part in targets (not ``NA`` and not empty)."""
    return label not in NON_COUNTING_TYPES


class RecordError(ValueError):
    """A record (or a whole file) that cannot be loaded. Names the file, the record index and the field."""

    def __init__(self, path: str, index: int | None, field: str | None, message: str, reason: str = ""):
        self.path = str(path)
        self.index = index
        self.field = field
        self.message = message
        # A short, stable category used to count skipped records in lenient mode.
        self.reason = reason or message
        where = self.path
        if index is not None:
            where += f": record {index}"
        if field:
            where += f": field '{field}'"
        super().__init__(f"{where}: {message}")


# --------------------------------------------------------------------------------------------------------
# Records
# --------------------------------------------------------------------------------------------------------


def _pos_json(start: int | None, end: int | None) -> list[int] | None:
    return None if start is None or end is None else [start, end]


def _result_field(obj: Any, key: str, kind: type, where: str, required: bool = True) -> Any:
    if not isinstance(obj, Mapping):
        raise RecordError(
            "<json>", None, where.rstrip(".") or None, "expected a JSON object", reason="wrong field type"
        )
    if key not in obj:
        if required:
            raise RecordError("<json>", None, f"{where}{key}", "missing", reason="missing field")
        return kind()
    value = obj[key]
    if not isinstance(value, kind) or isinstance(value, bool):
        raise RecordError(
            "<json>",
            None,
            f"{where}{key}",
            f"expected {kind.__name__}, got {type(value).__name__}",
            reason="wrong field type",
        )
    return value


def _result_pos(obj: Mapping[str, Any], where: str) -> tuple[int | None, int | None]:
    """``pos`` of a result mention: ``[start, end]`` or null (a mention found nowhere in the text)."""
    pos = obj.get("pos")
    if pos is None:
        return None, None
    if (
        not isinstance(pos, list)
        or len(pos) != 2
        or not all(isinstance(p, int) and not isinstance(p, bool) for p in pos)
        or not 0 <= pos[0] <= pos[1]
    ):
        raise RecordError(
            "<json>", None, f"{where}pos", f"expected [start, end] or null, got {pos!r}", reason="malformed pos"
        )
    return pos[0], pos[1]


# The result vocabulary (docs/extract.md, "Results"): gold records, iuie.infer's rows, the Extractor and the
# server all use these four types and their JSON (the layout's own shape). Offsets are optional: a predicted
# mention found nowhere in its text keeps its string with ``start = end = None`` (JSON ``"pos": null``).


@dataclasses.dataclass(frozen=True)
class Entity:
    """A typed mention. ``sentence[start:end] == name``; no offsets when the mention is not in the text."""

    name: str
    type: str
    start: int | None = None
    end: int | None = None

    @property
    def aligned(self) -> bool:
        """Whether the mention has offsets (a prediction found nowhere in its text has none)."""
        return self.start is not None

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "type": self.type, "pos": _pos_json(self.start, self.end)}

    @classmethod
    def from_json(cls, obj: Any, where: str = "") -> Entity:
        """Reads :meth:`to_json` output (``pos`` may be null); RecordError naming the field otherwise."""
        name = _result_field(obj, "name", str, where)
        return cls(name, _result_field(obj, "type", str, where, required=False), *_result_pos(obj, where))


@dataclasses.dataclass(frozen=True)
class Relation:
    head: Entity
    type: str
    tail: Entity

    def to_json(self) -> dict[str, Any]:
        return {"head": self.head.to_json(), "type": self.type, "tail": self.tail.to_json()}

    @classmethod
    def from_json(cls, obj: Any, where: str = "") -> Relation:
        head = Entity.from_json(_result_field(obj, "head", dict, where), f"{where}head.")
        tail = Entity.from_json(_result_field(obj, "tail", dict, where), f"{where}tail.")
        return cls(head, _result_field(obj, "type", str, where), tail)


@dataclasses.dataclass(frozen=True)
class Argument:
    name: str
    role: str
    start: int | None = None
    end: int | None = None

    @property
    def aligned(self) -> bool:
        return self.start is not None

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "role": self.role, "pos": _pos_json(self.start, self.end)}

    @classmethod
    def from_json(cls, obj: Any, where: str = "") -> Argument:
        name = _result_field(obj, "name", str, where)
        return cls(name, _result_field(obj, "role", str, where), *_result_pos(obj, where))


@dataclasses.dataclass(frozen=True)
class Event:
    """An event: its trigger mention (``sentence[start:end] == trigger``) and arguments.

    An EEA answer names arguments only: its event has an empty trigger and no offsets."""

    trigger: str
    type: str
    start: int | None = None
    end: int | None = None
    arguments: tuple[Argument, ...] = ()

    @property
    def aligned(self) -> bool:
        return self.start is not None

    def to_json(self) -> dict[str, Any]:
        return {
            "trigger": self.trigger,
            "type": self.type,
            "pos": _pos_json(self.start, self.end),
            "arguments": [a.to_json() for a in self.arguments],
        }

    @classmethod
    def from_json(cls, obj: Any, where: str = "") -> Event:
        trigger = _result_field(obj, "trigger", str, where)
        start, end = _result_pos(obj, where)
        arguments = tuple(
            Argument.from_json(a, f"{where}arguments[{i}].")
            for i, a in enumerate(_result_field(obj, "arguments", list, where, required=False))
        )
        return cls(trigger, _result_field(obj, "type", str, where, required=False), start, end, arguments)


# The record sections and the type of their items.
SECTIONS = {"entities": Entity, "relations": Relation, "events": Event}


def structures_from_json(obj: Mapping[str, Any]) -> dict[str, tuple[Any, ...]]:
    """The ``entities`` / ``relations`` / ``events`` lists of a result object (each optional), typed;
    offsets may be null. RecordError naming the field for anything else."""
    out: dict[str, tuple[Any, ...]] = {}
    for key, kind in SECTIONS.items():
        items = _result_field(obj, key, list, "", required=False)
        out[key] = tuple(kind.from_json(item, f"{key}[{i}].") for i, item in enumerate(items))
    return out


@dataclasses.dataclass(frozen=True)
class Record:
    """One sentence with its gold structures. Which tuple is filled depends on the task."""

    sentence: str
    entities: tuple[Entity, ...] = ()
    relations: tuple[Relation, ...] = ()
    events: tuple[Event, ...] = ()

    def to_json(self) -> dict[str, Any]:
        """The layout's JSON form, with verified offsets. ``Record.from_json`` reads it back."""
        out: dict[str, Any] = {"sentence": self.sentence}
        if self.entities:
            out["entities"] = [e.to_json() for e in self.entities]
        if self.relations:
            out["relations"] = [r.to_json() for r in self.relations]
        if self.events:
            out["events"] = [e.to_json() for e in self.events]
        return out

    def to_json_string(self) -> str:
        return json.dumps(self.to_json(), ensure_ascii=False, sort_keys=True)

    @classmethod
    def from_json(cls, obj: Mapping[str, Any] | str | bytes, *, unaligned_ok: bool = False) -> Record:
        """Reads :meth:`to_json` output (e.g. the pass-through feature of a seqio example) strictly.

        ``unaligned_ok=True`` reads a record of predictions: ``"pos": null`` is kept as a mention without
        offsets, and every other mention must still satisfy ``sentence[start:end] == name``."""
        if isinstance(obj, (str, bytes)):
            obj = json.loads(obj)
        if unaligned_ok:
            sentence = _result_field(obj, "sentence", str, "")
            sections = structures_from_json(obj)
            record = cls(sentence, sections["entities"], sections["relations"], sections["events"])
            for where, name, start, end in _mentions_of_record(record):
                if start is not None and not (0 <= start <= end <= len(sentence) and sentence[start:end] == name):
                    raise RecordError(
                        "<json>",
                        None,
                        f"{where}pos",
                        f"[{start}, {end}] gives {sentence[start:end]!r}, not {name!r}",
                        reason="pos does not match text",
                    )
            return record
        present = [t for t, key in (("NER", "entities"), ("RE", "relations"), ("EE", "events")) if key in obj]
        record, _ = parse_record(
            obj, task=None, labels=None, path="<json>", index=0, strict=True, sections=tuple(present)
        )
        return record


def _mentions_of_record(record: Record) -> Iterable[tuple[str, str, int | None, int | None]]:
    """``(field, text, start, end)`` of every mention of a record (for offset checks)."""
    for i, e in enumerate(record.entities):
        yield f"entities[{i}].", e.name, e.start, e.end
    for i, r in enumerate(record.relations):
        yield f"relations[{i}].head.", r.head.name, r.head.start, r.head.end
        yield f"relations[{i}].tail.", r.tail.name, r.tail.start, r.tail.end
    for i, ev in enumerate(record.events):
        if ev.trigger or ev.start is not None:
            yield f"events[{i}].", ev.trigger, ev.start, ev.end
        for j, a in enumerate(ev.arguments):
            yield f"events[{i}].arguments[{j}].", a.name, a.start, a.end


# --------------------------------------------------------------------------------------------------------
# Labels
# --------------------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Labels:
    """A dataset's ``labels.json``, in its original order and shape.

    ``raw`` keeps the file's exact JSON (the task views need it: EE prints ``str()`` of its two lists,
    EET/EEA use the dict's key order). ``types`` are the entity, relation or event types; ``roles`` maps
    an event type to its argument roles (EET/EEA); ``all_roles`` lists every role (EE's second list).
    """

    task: str
    raw: Any
    types: tuple[str, ...]
    roles: Mapping[str, tuple[str, ...]] = dataclasses.field(default_factory=dict)
    all_roles: tuple[str, ...] = ()

    @classmethod
    def from_json(cls, raw: Any, task: str, path: str = LABELS_FILE) -> Labels:
        def bad(field: str, message: str) -> RecordError:
            return RecordError(path, None, field, message, reason="bad labels.json")

        def str_list(value: Any, field: str, nonempty: bool = False) -> tuple[str, ...]:
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise bad(field, f"expected a list of strings for a {task} dataset")
            if nonempty and not value:
                # Records would keep an empty "Option:" list and training would proceed on nothing.
                raise bad(field, f"the label list is empty: a {task} dataset needs at least one label")
            repeated = [v for v, n in collections.Counter(value).items() if n > 1]
            if repeated:
                raise bad(field, f"duplicate label {repeated[0]!r} (listed {value.count(repeated[0])} times)")
            return tuple(value)

        if task in ("NER", "RE"):
            return cls(task, raw, str_list(raw, "labels", nonempty=True))
        if task == "EE":
            if not isinstance(raw, list) or len(raw) != 2:
                raise bad("labels", "expected [event types, argument roles] for EE")
            return cls(task, raw, str_list(raw[0], "labels[0]", nonempty=True), {}, str_list(raw[1], "labels[1]"))
        if task in ("EET", "EEA"):
            if not isinstance(raw, dict):
                raise bad("labels", f"expected {{event type: [roles]}} for {task}")
            if not raw:
                raise bad("labels", f"the label list is empty: a {task} dataset needs at least one event type")
            roles = {k: str_list(v, f"labels[{k!r}]") for k, v in raw.items()}
            ordered = tuple(dict.fromkeys(r for rs in roles.values() for r in rs))
            return cls(task, raw, tuple(raw), roles, ordered)
        raise RecordError(path, None, None, f"unknown task {task!r}; expected one of {', '.join(TASKS)}")

    def roles_for(self, event_type: str) -> tuple[str, ...]:
        """Roles allowed for an event type (every role where the file lists roles for all types)."""
        if self.roles:
            return self.roles.get(event_type, ())
        return self.all_roles


def load_labels(dataset_dir: str | os.PathLike, task: str) -> Labels:
    path = os.path.join(dataset_dir, LABELS_FILE)

    def no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        # json.load keeps the last of two equal keys silently: an EET/EEA event type listed twice.
        keys = [k for k, _ in pairs]
        repeated = [k for k, n in collections.Counter(keys).items() if n > 1]
        if repeated:
            raise RecordError(
                path,
                None,
                "labels",
                f"duplicate label {repeated[0]!r} (listed {keys.count(repeated[0])} times)",
                reason="bad labels.json",
            )
        return dict(pairs)

    return Labels.from_json(_read_json(path, object_pairs_hook=no_duplicate_keys), task, path)


# --------------------------------------------------------------------------------------------------------
# Parsing one record
# --------------------------------------------------------------------------------------------------------

# Which sections of a record a task reads.
TASK_SECTIONS = {"NER": ("NER",), "RE": ("RE",), "EE": ("EE",), "EET": ("EE",), "EEA": ("EE",)}

REASON_POS_MISSING = "pos missing: re-aligned by text"
REASON_POS_MISMATCH = "pos does not match text: re-aligned by text"
REASON_RELATION_MENTION = "relation head or tail not among the record's entities"
REASON_DUPLICATE = "duplicate record (kept)"


class _RecordParser:
    """Parses one JSON record, collecting re-alignment counts; raises RecordError on the first problem."""

    def __init__(self, obj: Any, task: str | None, labels: Labels | None, path: str, index: int, strict: bool):
        self.obj, self.task, self.labels = obj, task, labels
        self.path, self.index, self.strict = path, index, strict
        self.realigned: collections.Counter[str] = collections.Counter()
        # Problems counted without dropping the record (lenient mode).
        self.notes: collections.Counter[str] = collections.Counter()
        self.sentence = ""

    def error(self, field: str, message: str, reason: str) -> RecordError:
        return RecordError(self.path, self.index, field, message, reason)

    def field(self, obj: Mapping[str, Any], key: str, kind: type, where: str) -> Any:
        if key not in obj:
            raise self.error(f"{where}{key}", "missing", reason="missing field")
        value = obj[key]
        if not isinstance(value, kind) or isinstance(value, bool):
            raise self.error(
                f"{where}{key}", f"expected {kind.__name__}, got {type(value).__name__}", reason="wrong field type"
            )
        return value

    def span(self, obj: Mapping[str, Any], text_key: str, where: str) -> tuple[str, int, int]:
        """Returns (text, start, end), re-aligning ``pos`` when it is absent or does not match the text."""
        text = self.field(obj, text_key, str, where)
        if not text:
            raise self.error(f"{where}{text_key}", "empty mention", reason="empty mention")
        pos = obj.get("pos")
        hint = None
        if pos is None:
            problem = REASON_POS_MISSING
        elif (
            not isinstance(pos, list)
            or len(pos) != 2
            or not all(isinstance(p, int) and not isinstance(p, bool) for p in pos)
        ):
            raise self.error(f"{where}pos", f"expected [start, end] integers, got {pos!r}", reason="malformed pos")
        else:
            start, end = pos
            if self.sentence[start:end] == text and 0 <= start <= end <= len(self.sentence):
                return text, start, end
            hint = start
            problem = REASON_POS_MISMATCH
            if not (0 <= start <= end <= len(self.sentence)):
                problem = "pos out of range: re-aligned by text"
        if self.strict:
            if pos is None:
                detail = "missing"
            elif not (0 <= pos[0] <= pos[1] <= len(self.sentence)):
                # Say what is wrong with the offsets: slicing a negative or reversed span shows nothing useful.
                what = "negative" if min(pos) < 0 else "reversed (start > end)" if pos[0] > pos[1] else "past the end"
                detail = (
                    f"{pos!r} is not a span of the sentence: start {pos[0]}, end {pos[1]} {what} "
                    f"(sentence length {len(self.sentence)}), for {text!r}"
                )
            else:
                detail = (
                    f"{pos!r} gives {self.sentence[pos[0] : pos[1]]!r}, not {text!r} "
                    f"(sentence length {len(self.sentence)})"
                )
            raise self.error(f"{where}pos", detail, reason=problem.split(":")[0])
        found = _find_nearest(self.sentence, text, hint)
        if found is None:
            raise self.error(
                f"{where}{text_key}", f"{text!r} does not occur in the sentence", reason="mention not in sentence"
            )
        self.realigned[problem] += 1
        return text, found, found + len(text)

    def check_label(self, label: str, allowed: Sequence[str], field: str) -> None:
        if counts(label) and label not in allowed:
            raise self.error(field, f"label {label!r} is not in {LABELS_FILE}", reason="label not in labels.json")

    def entity(self, obj: Any, where: str, check_type: bool) -> Entity:
        if not isinstance(obj, dict):
            raise self.error(where.rstrip("."), "expected an object", reason="wrong field type")
        name, start, end = self.span(obj, "name", where)
        etype = obj.get("type", "")
        if not isinstance(etype, str):
            raise self.error(f"{where}type", "expected str", reason="wrong field type")
        if check_type and self.labels is not None:
            self.check_label(etype, self.labels.types, f"{where}type")
        return Entity(name, etype, start, end)

    def items(self, key: str) -> list[Any]:
        return self.field(self.obj, key, list, "")

    def parse(self, sections: Sequence[str]) -> Record:
        if not isinstance(self.obj, dict):
            raise self.error("", "expected a JSON object", reason="record is not an object")
        self.sentence = self.field(self.obj, "sentence", str, "")
        entities: tuple[Entity, ...] = ()
        relations: tuple[Relation, ...] = ()
        events: tuple[Event, ...] = ()
        if "NER" in sections:
            entities = tuple(
                self.entity(e, f"entities[{i}].", check_type=True) for i, e in enumerate(self.items("entities"))
            )
        if "RE" in sections:
            if "NER" not in sections and "entities" in self.obj:
                # An RE record listing its entities: its relations must join two of them.
                entities = tuple(
                    self.entity(e, f"entities[{i}].", check_type=False) for i, e in enumerate(self.items("entities"))
                )
            relations = tuple(self.relation(r, f"relations[{i}].") for i, r in enumerate(self.items("relations")))
            if "entities" in self.obj:
                self.check_relation_mentions(entities, relations)
        if "EE" in sections:
            events = tuple(self.event(e, f"events[{i}].") for i, e in enumerate(self.items("events")))
            if self.task == "EEA" and len(events) != 1:
                raise self.error(
                    "events",
                    f"an EEA record needs exactly one event, found {len(events)}",
                    reason="EEA record without exactly one event",
                )
        return Record(self.sentence, entities, relations, events)

    def check_relation_mentions(self, entities: Sequence[Entity], relations: Sequence[Relation]) -> None:
        """Each relation's head and tail must be one of the record's entities (same text and offsets): an
        error in strict mode, counted in lenient mode (the record is kept)."""
        known = {(e.name, e.start, e.end) for e in entities}
        for i, relation in enumerate(relations):
            for part in ("head", "tail"):
                m = getattr(relation, part)
                if (m.name, m.start, m.end) in known:
                    continue
                if self.strict:
                    raise self.error(
                        f"relations[{i}].{part}",
                        f"{m.name!r} at [{m.start}, {m.end}] is not among the record's entities",
                        reason=REASON_RELATION_MENTION,
                    )
                self.notes[REASON_RELATION_MENTION] += 1

    def relation(self, obj: Any, where: str) -> Relation:
        if not isinstance(obj, dict):
            raise self.error(where.rstrip("."), "expected an object", reason="wrong field type")
        rtype = self.field(obj, "type", str, where)
        if self.labels is not None:
            self.check_label(rtype, self.labels.types, f"{where}type")
        head = self.entity(self.field(obj, "head", dict, where), f"{where}head.", check_type=False)
        tail = self.entity(self.field(obj, "tail", dict, where), f"{where}tail.", check_type=False)
        return Relation(head, rtype, tail)

    def event(self, obj: Any, where: str) -> Event:
        if not isinstance(obj, dict):
            raise self.error(where.rstrip("."), "expected an object", reason="wrong field type")
        etype = self.field(obj, "type", str, where)
        if self.labels is not None:
            self.check_label(etype, self.labels.types, f"{where}type")
        trigger, start, end = self.span(obj, "trigger", where)
        arguments = []
        for j, arg in enumerate(self.field(obj, "arguments", list, where)):
            arg_where = f"{where}arguments[{j}]."
            if not isinstance(arg, dict):
                raise self.error(arg_where.rstrip("."), "expected an object", reason="wrong field type")
            role = self.field(arg, "role", str, arg_where)
            if self.labels is not None and counts(etype):
                self.check_label(role, self.labels.roles_for(etype), f"{arg_where}role")
            name, a_start, a_end = self.span(arg, "name", arg_where)
            arguments.append(Argument(name, role, a_start, a_end))
        return Event(trigger, etype, start, end, tuple(arguments))


def _find_nearest(sentence: str, text: str, hint: int | None) -> int | None:
    """Start of the occurrence of ``text`` nearest ``hint`` (the first one without a hint)."""
    starts = []
    i = sentence.find(text)
    while i != -1:
        starts.append(i)
        i = sentence.find(text, i + 1)
    if not starts:
        return None
    if hint is None:
        return starts[0]
    return min(starts, key=lambda s: (abs(s - hint), s))


def parse_record(
    obj: Any,
    task: str | None,
    labels: Labels | None,
    *,
    path: str,
    index: int,
    strict: bool,
    sections: Sequence[str] | None = None,
    notes: collections.Counter[str] | None = None,
) -> tuple[Record, collections.Counter[str]]:
    """Validates one JSON record. Returns the record and its re-alignment counts; raises RecordError.

    ``notes``, when given, receives the problems counted without refusing the record (lenient mode)."""
    if sections is None:
        if task not in TASK_SECTIONS:
            raise RecordError(path, index, None, f"unknown task {task!r}; expected one of {', '.join(TASKS)}")
        sections = TASK_SECTIONS[task]
    parser = _RecordParser(obj, task, labels, path, index, strict)
    record = parser.parse(sections)
    if notes is not None:
        notes.update(parser.notes)
    return record, parser.realigned


# --------------------------------------------------------------------------------------------------------
# Loading files and folders
# --------------------------------------------------------------------------------------------------------


@dataclasses.dataclass
class LoadReport:
    """What loading one split did: records read and kept, skips and re-alignments by reason."""

    path: str
    total: int = 0
    kept: int = 0
    skipped: collections.Counter[str] = dataclasses.field(default_factory=collections.Counter)
    realigned: collections.Counter[str] = dataclasses.field(default_factory=collections.Counter)
    # Problems counted in kept records: duplicate records, relation mentions not among the entities.
    notes: collections.Counter[str] = dataclasses.field(default_factory=collections.Counter)
    # Position in the file of each kept record (records[i] came from kept_indices[i]).
    kept_indices: list[int] = dataclasses.field(default_factory=list)
    # The first few skip messages in full (file, record, field), to show a user where to look.
    examples: list[str] = dataclasses.field(default_factory=list)

    MAX_EXAMPLES = 5

    @property
    def num_skipped(self) -> int:
        return sum(self.skipped.values())

    def summary(self) -> str:
        parts = [f"{self.path}: kept {self.kept} of {self.total} records"]
        if self.skipped:
            parts.append("skipped " + ", ".join(f"{n} ({r})" for r, n in sorted(self.skipped.items())))
        if self.realigned:
            parts.append(
                "re-aligned "
                + ", ".join(f"{n} mentions ({r.split(':')[0]})" for r, n in sorted(self.realigned.items()))
            )
        if self.notes:
            parts.append("counted " + ", ".join(f"{n} ({r})" for r, n in sorted(self.notes.items())))
        return "; ".join(parts)

    def to_json(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "total": self.total,
            "kept": self.kept,
            "skipped": dict(self.skipped),
            "realigned": dict(self.realigned),
            "notes": dict(self.notes),
            "examples": list(self.examples),
        }


def _read_json(path: str, object_pairs_hook: Any = None) -> Any:
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f, object_pairs_hook=object_pairs_hook)
    except FileNotFoundError:
        raise RecordError(path, None, None, "file not found", reason="file not found") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise RecordError(path, None, None, f"unreadable JSON: {e}", reason="unreadable JSON") from None


def parse_records(
    data: Any, task: str, labels: Labels | None, *, path: str, strict: bool = False, limit: int | None = None
) -> tuple[list[Record], LoadReport]:
    """Validates a list of JSON records (the content of one split file)."""
    if not isinstance(data, list):
        raise RecordError(
            path, None, None, f"expected a JSON list of records, got {type(data).__name__}", reason="not a list"
        )
    report = LoadReport(path=path)
    records = []
    seen: dict[str, int] = {}
    for index, obj in enumerate(data[:limit] if limit is not None else data):
        report.total += 1
        try:
            record, realigned = parse_record(
                obj, task, labels, path=path, index=index, strict=strict, notes=report.notes
            )
        except RecordError as e:
            if strict:
                raise
            report.skipped[e.reason] += 1
            if len(report.examples) < LoadReport.MAX_EXAMPLES:
                report.examples.append(str(e))
            continue
        report.realigned.update(realigned)
        # A record repeated in its split is counted and reported, not refused (benchmark files hold some).
        key = record.to_json_string()
        if key in seen:
            report.notes[REASON_DUPLICATE] += 1
            if len(report.examples) < LoadReport.MAX_EXAMPLES:
                report.examples.append(f"{path}: record {index}: duplicate of record {seen[key]} (kept)")
        else:
            seen[key] = index
        report.kept += 1
        report.kept_indices.append(index)
        records.append(record)
    return records, report


def load_split(
    dataset_dir: str | os.PathLike,
    task: str,
    split: str,
    *,
    labels: Labels | None = None,
    strict: bool = False,
    limit: int | None = None,
) -> tuple[list[Record], LoadReport]:
    """Loads ``<dataset_dir>/<split>.json``. ``limit`` keeps the first N records (the reference's cap)."""
    if labels is None:
        labels = load_labels(dataset_dir, task)
    path = os.path.join(dataset_dir, f"{split}.json")
    return parse_records(_read_json(path), task, labels, path=path, strict=strict, limit=limit)


@dataclasses.dataclass(frozen=True)
class DatasetFolder:
    """One dataset of the layout: ``<root>/<task>/<name>``."""

    root: str
    task: str
    name: str

    @property
    def path(self) -> str:
        return os.path.join(self.root, self.task, self.name)

    @property
    def splits(self) -> tuple[str, ...]:
        return tuple(s for s in SPLITS if os.path.isfile(os.path.join(self.path, f"{s}.json")))

    def labels(self) -> Labels:
        return load_labels(self.path, self.task)

    def load(self, split: str, *, strict: bool = False, limit: int | None = None) -> tuple[list[Record], LoadReport]:
        if not os.path.isdir(self.path):
            raise RecordError(self.path, None, None, "dataset folder not found", reason="folder not found")
        return load_split(self.path, self.task, split, labels=self.labels(), strict=strict, limit=limit)


def find_datasets(root: str | os.PathLike, tasks: Iterable[str] = TASKS) -> list[DatasetFolder]:
    """Every dataset folder under ``root`` (those holding a labels.json), sorted by task then name."""
    found = []
    for task in tasks:
        task_dir = os.path.join(root, task)
        if not os.path.isdir(task_dir):
            continue
        for name in sorted(os.listdir(task_dir)):
            if os.path.isfile(os.path.join(task_dir, name, LABELS_FILE)):
                found.append(DatasetFolder(str(root), task, name))
    return found
