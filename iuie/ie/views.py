"""The nine task views as one declarative table: everything the rest of iuie needs to know about a view.

Each :class:`View` says which task family it belongs to, which layout folder it reads, the shape of the items
its answers hold (label slots and mention slots), its separators, and which functions build its target,
parse its answers, score them (reference and strict mode) and constrain its decoding, plus its report
section. Modules look a view up here (:func:`get`) instead of testing view strings.

Functions are named ``"module:function"`` and resolved on first use (:meth:`View.function`), so this module
stays at the bottom of the data chain (it imports only :mod:`iuie.ie.records` and :mod:`iuie.ie.alignment`)
while the functions live next to the rules they implement (:mod:`iuie.ie.formats`, :mod:`iuie.ie.parsing`,
:mod:`iuie.ie.metrics`). Adding a tenth view is one :class:`View` entry plus its functions
(docs/architecture.md, "Adding a task view").

Items and offsets. A parsed item (:mod:`iuie.ie.parsing`) holds strings only. :func:`mentions` lists the
mention strings of an item in slot order (EE: trigger, then each argument); :func:`locate` aligns all the
mentions of one answer in a single :func:`iuie.ie.alignment.align` call (so two equal strings take two
occurrences when the text has them: ``"meet: Anna, Anna"`` over ``"Anna met Anna"`` gives (0, 4) and (9, 13))
and puts the offsets back, giving the result types of :mod:`iuie.ie.records`. The strict metric (gold rebuilt
from text), ``iuie.infer`` and the Extractor all use this pair.
"""

from __future__ import annotations

import dataclasses
import functools
import importlib
from collections.abc import Callable, Sequence
from typing import Any

from iuie.ie import alignment
from iuie.ie.records import Argument, Entity, Event, Relation

Span = tuple[int, int]


@dataclasses.dataclass(frozen=True)
class View:
    """One task view (module docstring). Function fields are ``"module:function"`` names.

    ``family``: NER, RE or EE. ``source``: the layout folder its records and labels.json come from.
    ``section``: the :class:`~iuie.ie.records.Record` section its items become (``entities``,
    ``relations``, ``events``). ``label_slots`` / ``mention_slots``: positions of the item tuple holding
    labels (types, roles) and mention strings; ``argument_slot``: position of EE's ``((role, argument), ...)``.
    ``item_separator`` / ``mention_separator``: how the target joins items and the mentions of one item.
    ``options``: what the option list gives the parser: ``"types"``, ``"roles"`` (EEA) or None (untyped).
    ``options_in_input``: how the input writes the options: ``"line"`` (``Option: a, b``) or ``"lists"``
    (EE's two Python lists). ``quote_substitute``: the reference writes ``'`` as ``#$%#`` in its targets.
    ``target``: ``(record, labels, instruction, reference_quirks) -> (template, target, ground_truth)``.
    ``parser``: ``(text, options, sentence) -> (items, malformed)``. ``reference``: ``(ground_truth,
    prediction) -> (truth set, prediction set)``; ``na_rule``: RE's NA rule applies; ``accuracy``: the
    reference number is sentence accuracy by ``"sets"`` (equal sets) or ``"text"`` (equal normalised text).
    ``gold`` / ``predicted``: the strict item sets of a record and of a parsed item list, per group of
    ``strict_groups``. ``grammar``: the constrained-decoding grammar kind, or None (no grammar).
    ``mixing_weight``: the reference keeps an auxiliary view's examples with probability 0.3.
    ``title`` / ``report_order``: the report section.
    """

    name: str
    family: str
    source: str
    main: bool
    section: str
    label_slots: tuple[int, ...]
    mention_slots: tuple[int, ...]
    item_separator: str
    mention_separator: str
    options: str | None
    target: str
    parser: str
    reference: str
    gold: str
    predicted: str
    title: str
    report_order: int
    argument_slot: int | None = None
    options_in_input: str = "line"
    quote_substitute: bool = False
    na_rule: bool = False
    accuracy: str | None = None
    strict_groups: tuple[str, ...] = ("",)
    grammar: str | None = None
    mixing_weight: float = 1.0
    one_event: bool = False

    def function(self, role: str) -> Callable[..., Any]:
        """The function named in field ``role`` (``"target"``, ``"parser"``, ...), imported on first use."""
        return _resolve(getattr(self, role))


@functools.cache
def _resolve(reference: str) -> Callable[..., Any]:
    module, _, name = reference.partition(":")
    return getattr(importlib.import_module(module), name)


_F = "iuie.ie.formats:"
_P = "iuie.ie.parsing:"
_M = "iuie.ie.metrics:"

# The table, in the paper's order: three main views, each followed by its auxiliary views' family order.
TABLE: tuple[View, ...] = (
    View(
        "NER", "NER", "NER", True, "entities", (0,), (1,), "; ", "", "types",
        _F + "build_ner", _P + "parse_typed_mentions", _M + "reference_item_sets",
        _M + "gold_typed_entities", _M + "predicted_typed", "Named entity recognition", 0, grammar="NER",
    ),
    View(
        "ES", "NER", "NER", False, "entities", (), (0,), ", ", "", None,
        _F + "build_es", _P + "parse_spans", _M + "reference_span_sets",
        _M + "gold_spans", _M + "predicted_spans", "Entity span (aux)", 5, mixing_weight=0.3,
    ),
    View(
        "ET", "NER", "NER", False, "entities", (0,), (1,), "; ", "", "types",
        _F + "build_et", _P + "parse_typed_mentions", _M + "reference_item_sets",
        _M + "gold_typed_entities", _M + "predicted_typed", "Entity typing (aux)", 6, mixing_weight=0.3,
    ),
    View(
        "RE", "RE", "RE", True, "relations", (0,), (1, 2), "; ", ", ", "types",
        _F + "build_re", _P + "parse_relations", _M + "reference_relation_sets",
        _M + "gold_relations", _M + "predicted_relations", "Relation extraction", 1, na_rule=True, grammar="RE",
    ),
    View(
        "EP", "RE", "RE", False, "relations", (), (0, 1), "; ", ", ", None,
        _F + "build_ep", _P + "parse_pairs", _M + "reference_item_sets",
        _M + "gold_pairs", _M + "predicted_pairs", "Entity pair (aux)", 7, mixing_weight=0.3,
    ),
    View(
        "EPR", "RE", "RE", False, "relations", (0,), (1, 2), "; ", ", ", "types",
        _F + "build_epr", _P + "parse_relations", _M + "reference_relation_sets",
        _M + "gold_relations", _M + "predicted_relations", "Entity pair relation (aux)", 8,
        na_rule=True, mixing_weight=0.3,
    ),
    View(
        "EE", "EE", "EE", True, "events", (0,), (1,), ",", ", ", "types",
        _F + "build_ee", _P + "parse_events", _M + "reference_event_sets",
        _M + "gold_events", _M + "predicted_events", "Event extraction", 2,
        argument_slot=2, options_in_input="lists", quote_substitute=True, accuracy="sets",
        strict_groups=("trigger", "argument"), grammar="EE",
    ),
    View(
        "EET", "EE", "EET", False, "events", (0,), (1,), "; ", "", "types",
        _F + "build_eet", _P + "parse_typed_mentions", _M + "reference_item_sets",
        _M + "gold_triggers", _M + "predicted_typed", "Event trigger extraction", 3,
        quote_substitute=True, accuracy="text",
    ),
    View(
        "EEA", "EE", "EEA", False, "events", (0,), (1,), ";", "", "roles",
        _F + "build_eea", _P + "parse_arguments", _M + "reference_argument_sets",
        _M + "gold_arguments", _M + "predicted_arguments", "Event argument extraction", 4, one_event=True,
    ),
)  # fmt: skip

BY_NAME: dict[str, View] = {v.name: v for v in TABLE}
# The view names in table order (the paper's).
NAMES: tuple[str, ...] = tuple(BY_NAME)
# Task families, each with its views (main view first), and the layout folders.
FAMILIES: dict[str, tuple[str, ...]] = {}
for _view in TABLE:
    FAMILIES[_view.family] = FAMILIES.get(_view.family, ()) + (_view.name,)
del _view
SOURCE_TASK: dict[str, str] = {v.name: v.source for v in TABLE}
# Report order: main views first (NER, RE, EE, EET, EEA), then the auxiliary ones.
REPORT_ORDER: tuple[str, ...] = tuple(v.name for v in sorted(TABLE, key=lambda v: v.report_order))


class UnknownViewError(ValueError):
    """A view name that is not in the table."""


def canonical(name: Any) -> str:
    """The view name in its canonical upper-case spelling; UnknownViewError for an unknown one."""
    view = str(name).strip().upper()
    if view not in BY_NAME:
        raise UnknownViewError(f"unknown task view {name!r}; expected one of {', '.join(NAMES)}")
    return view


def get(name: Any) -> View:
    """The table entry of a view name (any case)."""
    return BY_NAME[canonical(name)]


# --------------------------------------------------------------------------------------------------------
# Mentions of an item, and putting offsets back
# --------------------------------------------------------------------------------------------------------


def mentions(view: str | View, item: Sequence[Any]) -> tuple[str, ...]:
    """The mention strings of one parsed item, in slot order (EE: the trigger, then each argument)."""
    v = view if isinstance(view, View) else get(view)
    out = [item[i] for i in v.mention_slots]
    if v.argument_slot is not None:
        out.extend(argument for _, argument in item[v.argument_slot])
    return tuple(out)


def _offsets(sentence: str, text: str, span: Span | None, shift: int) -> tuple[str, int | None, int | None]:
    """``(name, start, end)``: an aligned mention takes the text's own characters, shifted by ``shift``."""
    if span is None:
        return text, None, None
    return sentence[span[0] : span[1]], span[0] + shift, span[1] + shift


def with_offsets(
    view: str | View, item: Sequence[Any], spans: Sequence[Span | None], sentence: str, shift: int = 0
) -> Entity | Relation | Event:
    """One parsed item as a result type, its mentions placed at ``spans`` (one per :func:`mentions` entry,
    None for a mention found nowhere). Offsets are shifted by ``shift`` (a window's start in its document)."""
    v = view if isinstance(view, View) else get(view)
    placed = iter(_offsets(sentence, text, span, shift) for text, span in zip(mentions(v, item), spans))
    label = item[v.label_slots[0]] if v.label_slots else ""
    if v.section == "entities":
        return _entity(next(placed), label)
    if v.section == "relations":
        head, tail = next(placed), next(placed)
        return Relation(_entity(head, ""), label, _entity(tail, ""))
    if v.one_event:  # EEA: an argument of the one given event
        name, start, end = next(placed)
        return Event("", "", None, None, (Argument(name, label, start, end),))
    trigger, start, end = next(placed)
    arguments = ()
    if v.argument_slot is not None:
        arguments = tuple(
            Argument(name, role, a_start, a_end)
            for (role, _), (name, a_start, a_end) in zip(item[v.argument_slot], placed)
        )
    return Event(trigger, label, start, end, arguments)


def _entity(placed: tuple[str, int | None, int | None], label: str) -> Entity:
    name, start, end = placed
    return Entity(name, label, start, end)


def locate(
    view: str | View, items: Sequence[Sequence[Any]], sentence: str, shift: int = 0
) -> tuple[list[Entity | Relation | Event], int]:
    """The items of one answer as result types, with offsets; and how many mentions occur nowhere.

    All mentions are aligned in one :func:`iuie.ie.alignment.align` call (module docstring). For EEA the
    arguments are gathered into one :class:`~iuie.ie.records.Event` (empty trigger, no offsets).
    """
    v = view if isinstance(view, View) else get(view)
    per_item = [mentions(v, item) for item in items]
    spans = alignment.align(sentence, [m for ms in per_item for m in ms])
    out: list[Entity | Relation | Event] = []
    position = 0
    for item, ms in zip(items, per_item):
        out.append(with_offsets(v, item, spans[position : position + len(ms)], sentence, shift))
        position += len(ms)
    if v.one_event:
        arguments = tuple(a for e in out for a in e.arguments)  # type: ignore[union-attr]
        out = [Event("", "", None, None, arguments)] if arguments else []
    return out, sum(span is None for span in spans)
