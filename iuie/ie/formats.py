"""The nine task views: a record, its labels and an instruction become the model's input and target strings.

The strings equal, character for character, those of the InstructUIE reference implementation
(``src/uie_dataset.py`` + ``src/uie_collator.py`` at 339ade6) for the same instruction text; the rules are
written out in ``shared/FORMATS.md`` and ``docs/formats.md``. :data:`iuie.ie.views.TABLE` names each view's
builder here (``build_<view>``) and the layout folder it reads:

====  =================  ======================================================================
view  reads              asks for
====  =================  ======================================================================
NER   NER                typed entities
ES    NER                entity spans, untyped
ET    NER                the types of the listed entities
RE    RE                 relation triples
EP    RE                 the head and tail of each relation, untyped
EPR   RE                 the relations of the listed entity pairs
EE    EE                 events: type, trigger and arguments
EET   EET                event types and triggers
EEA   EEA                the arguments of the one given event
====  =================  ======================================================================

Deliberate differences from the reference (each one a reference bug; docs/formats.md says more):

1. Braces. The reference builds a template ``instruction + options + "Text: {0} ..."`` and calls
   ``template.format(sentence)`` inside ``try: ... finally: return``, so a ``{`` or ``}`` in the instruction, a
   label, an ET entity name or an EPR pair name either raises (and the swallowed error leaves ``{0}`` in the
   input instead of the sentence) or is silently rewritten (``{{`` becomes ``{``). iuie puts the sentence
   literally where the template has ``{0}`` and leaves every other character alone. The returned
   ``instruction`` field is still the reference's template, ``{0}`` included.
2. Single quotes in events. The reference replaces ``'`` with ``#$%#`` in EE and EET event types and triggers
   in targets only, while the options and the sentence keep the quote: the model must learn a spelling found
   nowhere in its input, and an answer copied from the text no longer matches. iuie keeps the quote;
   ``reference_quirks=True`` reproduces the replacement exactly.
3. RE / EPR records without any relation. The reference raises ("No ground truth!"); iuie formats them with
   target and ground truth ``" None"``.
4. EEA records with more than one event. The reference's check is ``raise "Error..."``, itself a TypeError;
   :mod:`iuie.ie.records` rejects such records with a RecordError, and :func:`format_view` raises ValueError.

This module is pure: no I/O, no randomness (the instruction is chosen by the caller, see
:mod:`iuie.ie.instructions`).
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from typing import Any

from iuie.ie import views
from iuie.ie.instructions import canonical_view
from iuie.ie.records import Entity, Labels, Record, counts

# The layout folder (iuie.ie.records task) each view reads its records and labels.json from (iuie.ie.views).
SOURCE_TASK = views.SOURCE_TASK

# Where the reference's template takes the sentence (its str.format slot).
SENTENCE_SLOT = "{0}"
# Every target starts with one space; an empty answer is this.
NONE_ANSWER = " None"
# The reference's stand-in for ' in EE/EET event types and triggers (reproduced with reference_quirks=True).
SINGLE_QUOTE_SUBSTITUTE = "#$%#"
# What the reference writes for a relation that does not count, in RE/EPR ground truth.
NA_RELATION = "NA"


@dataclasses.dataclass(frozen=True)
class FormattedExample:
    """One view of one record.

    ``inputs``: the model input. ``targets``: the training target. ``ground_truth``: what the reference's
    evaluator compares against (differs from ``targets`` only for RE and EPR, where it lists NA relations
    too). ``instruction``: the reference's template, with ``{0}`` standing for the sentence. ``options``:
    the JSON option list of the input (:func:`options_of`).
    """

    inputs: str
    targets: str
    ground_truth: str
    instruction: str
    # The option list the input shows, as JSON (labels.json's shape for the view; EEA: the event type's
    # roles). It travels with the example to the parser (metrics.postprocess, iuie.eval's rows, iuie score),
    # so every path splits answers on the same options. Not compared: it follows from the labels.
    options: str = dataclasses.field(default="", compare=False)


@dataclasses.dataclass(frozen=True)
class _Template:
    """An input as the text before and after the sentence slot, so the sentence is never re-parsed."""

    before: str
    after: str

    def fill(self, sentence: str) -> str:
        return self.before + sentence + self.after

    @property
    def template(self) -> str:
        return self.before + SENTENCE_SLOT + self.after


def _answer(items: Sequence[str], sep: str) -> str:
    return " " + sep.join(items) if items else NONE_ANSWER


def _counting_entities(record: Record) -> list[Entity]:
    return [e for e in record.entities if counts(e.type)]


def _options(labels: Labels) -> str:
    return ", ".join(labels.types)


def _event_text(text: str, reference_quirks: bool) -> str:
    return text.replace("'", SINGLE_QUOTE_SUBSTITUTE) if reference_quirks else text


def _relation_answer(record: Record, with_na: bool) -> str:
    """``" rel: head, tail; ..."``; with ``with_na`` non-counting relations are listed as ``NA``."""
    items = []
    for r in record.relations:
        if counts(r.type):
            items.append(f"{r.type}: {r.head.name}, {r.tail.name}")
        elif with_na:
            items.append(f"{NA_RELATION}: {r.head.name}, {r.tail.name}")
    return _answer(items, "; ")


def build_ner(record: Record, labels: Labels, instruction: str, reference_quirks: bool):
    template = _Template(instruction + "Option: " + _options(labels) + " \nText: ", " \nAnswer:")
    target = _answer([f"{e.type}: {e.name}" for e in _counting_entities(record)], "; ")
    return template, target, target


def build_es(record: Record, labels: Labels, instruction: str, reference_quirks: bool):
    # ES lists every entity, whatever its type: the reference does not filter NA or untyped ones here.
    template = _Template(instruction + "Option: " + _options(labels) + " \nText: ", " \nAnswer:")
    target = _answer([e.name for e in record.entities], ", ")
    return template, target, target


def build_et(record: Record, labels: Labels, instruction: str, reference_quirks: bool):
    entities = _counting_entities(record)
    names = ", ".join(e.name for e in entities)
    template = _Template(
        instruction + "Option: " + _options(labels) + " \nText: ", " \n Entities: " + names + " \nAnswer:"
    )
    target = _answer([f"{e.type}: {e.name}" for e in entities], "; ")
    return template, target, target


def build_re(record: Record, labels: Labels, instruction: str, reference_quirks: bool):
    template = _Template(instruction + "Option: " + _options(labels) + " \nText: ", " \nAnswer:")
    return template, _relation_answer(record, with_na=False), _relation_answer(record, with_na=True)


def build_ep(record: Record, labels: Labels, instruction: str, reference_quirks: bool):
    template = _Template(instruction + "Option: " + _options(labels) + " \nText: ", " \nAnswer:")
    target = _answer([f"{r.head.name}, {r.tail.name}" for r in record.relations if counts(r.type)], "; ")
    return template, target, target


def build_epr(record: Record, labels: Labels, instruction: str, reference_quirks: bool):
    # The reference prefixes the pair list with a space of its own, after "Entity Pairs: ": two spaces.
    pairs = " " + "; ".join(f"{r.head.name}, {r.tail.name}" for r in record.relations if counts(r.type))
    template = _Template(
        instruction + "Option: " + _options(labels) + " \nText: ", " \n Entity Pairs: " + pairs + " \nAnswer:"
    )
    return template, _relation_answer(record, with_na=False), _relation_answer(record, with_na=True)


def build_ee(record: Record, labels: Labels, instruction: str, reference_quirks: bool):
    # str() of Python lists, exactly as the reference's f-string prints labels.json's two lists.
    options = f"Event type: {list(labels.types)}, Arguments type: {list(labels.all_roles)}."
    template = _Template(instruction + " Option: " + options + " \nText: ", " \nAnswer:")
    items = []
    for event in record.events:
        if not counts(event.type):
            continue
        arguments = ",".join(f" {a.name}: {a.role}" for a in event.arguments) or "None"
        items.append(
            f" ( {_event_text(event.type, reference_quirks)}: "
            f"{_event_text(event.trigger, reference_quirks)}, {arguments}) "
        )
    # No leading space of its own: every item starts with " ( ".
    target = ",".join(items) if items else NONE_ANSWER
    return template, target, target


def build_eet(record: Record, labels: Labels, instruction: str, reference_quirks: bool):
    template = _Template(instruction + " Option: " + _options(labels) + " \nText: ", " \nAnswer:")
    target = _answer(
        [
            f"{_event_text(e.type, reference_quirks)}: {_event_text(e.trigger, reference_quirks)}"
            for e in record.events
            if counts(e.type)
        ],
        "; ",
    )
    return template, target, target


def build_eea(record: Record, labels: Labels, instruction: str, reference_quirks: bool):
    if len(record.events) != 1:
        raise ValueError(f"an EEA record needs exactly one event, found {len(record.events)}")
    event = record.events[0]
    if event.type not in labels.roles:
        raise ValueError(
            f"EEA event type {event.type!r} has no roles in labels.json (types: {', '.join(labels.types)})"
        )
    roles = ", ".join(labels.roles[event.type])
    template = _Template(
        instruction + "Event type: " + event.type + " \n  Option: " + roles + " \nText: ", " \nAnswer:"
    )
    # Arguments joined by ";" with no space of their own: each item already starts with one.
    arguments = [f" {a.name}: {a.role}" for a in event.arguments]
    target = ";".join(arguments) if arguments else NONE_ANSWER
    return template, target, target


def options_of(view: str, record: Record, labels: Labels) -> Any:
    """The option list a view's input shows, in labels.json's shape: the raw labels, or for a view that
    asks about one given event (EEA) the roles of that event's type."""
    entry = views.get(view)
    if entry.one_event and record.events and record.events[0].type in labels.roles:
        return list(labels.roles[record.events[0].type])
    return labels.raw


def format_view(
    view: str, record: Record, labels: Labels, instruction: str, *, reference_quirks: bool = False
) -> FormattedExample:
    """Formats one record as one task view.

    ``labels`` must be the labels of the layout folder the view reads (``SOURCE_TASK[view]``): EE wants
    ``[event types, roles]``, EET and EEA ``{event type: [roles]}``. ``instruction`` is used as is (choose it
    with :meth:`iuie.ie.instructions.InstructionSet.choose`). ``reference_quirks=True`` reproduces the reference's
    ``'`` -> ``#$%#`` replacement in EE/EET targets. Raises ValueError for an unknown view, labels of another
    task, or an EEA record without exactly one event.
    """
    entry = views.get(canonical_view(view))
    if labels.task != entry.source:
        raise ValueError(
            f"the {entry.name} view needs the labels of a {entry.source} dataset, got labels of a {labels.task} dataset"
        )
    template, target, ground_truth = entry.function("target")(record, labels, instruction, reference_quirks)
    return FormattedExample(
        inputs=template.fill(record.sentence),
        targets=target,
        ground_truth=ground_truth,
        instruction=template.template,
        options=json.dumps(options_of(entry.name, record, labels), ensure_ascii=False),
    )
