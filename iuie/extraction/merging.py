"""One document's results from overlapping windows, merged: what two windows found is reported once.

Overlapping windows (:class:`iuie.extraction.extractor.Extractor`, ``window_overlap``) read the text near
each boundary twice, so a mention there is usually found by both windows, at the same document offsets
(each window's offsets are shifted to the document before merging). The rules, on aligned results only:

* **Duplicates.** Entities with equal ``(type, start, end)``, relations with equal type and head and tail
  offsets, events with equal ``(type, trigger start, trigger end)`` are one result: the first is kept (an
  event keeps the union of both arguments lists, by ``(role, start, end)``).
* **Edge fragments.** A window that ends (or starts) inside a name sees only part of it: an entity that
  touches such an interior edge of its window and lies strictly inside an entity of the same type that
  another window found is that name's fragment, and is dropped.

A mention with no offsets (found nowhere in its window) is never merged: it cannot be told apart from
another. Everything merged or dropped is counted (``Extraction.merged``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from iuie.ie.records import Argument, Entity, Event, Relation


def _span(mention: Entity | Event | Argument) -> tuple[int, int] | None:
    return (mention.start, mention.end) if mention.start is not None and mention.end is not None else None


def merge_entities(
    found: Sequence[tuple[int, Entity]], windows: Sequence[tuple[int, int]], text_length: int
) -> tuple[list[Entity], int]:
    """``found``: ``(window number, entity)`` in reading order. Returns the merged entities and how many
    were merged away (duplicates and edge fragments)."""
    kept: list[tuple[int, Entity]] = []
    seen: set[tuple[str, int, int]] = set()
    for window, entity in found:
        span = _span(entity)
        if span is not None:
            key = (entity.type, *span)
            if key in seen:
                continue
            seen.add(key)
        kept.append((window, entity))

    def fragment(window: int, entity: Entity) -> bool:
        span = _span(entity)
        if span is None:
            return False
        start, end = windows[window]
        # Only an edge inside the document can cut a name.
        at_edge = (span[0] == start and start > 0) or (span[1] == end and end < text_length)
        if not at_edge:
            return False
        return any(
            other_window != window
            and other.type == entity.type
            and (o := _span(other)) is not None
            and o[0] <= span[0]
            and span[1] <= o[1]
            and o != span
            for other_window, other in kept
        )

    out = [entity for window, entity in kept if not fragment(window, entity)]
    return out, len(found) - len(out)


def merge_relations(found: Sequence[Relation]) -> tuple[list[Relation], int]:
    """Relations with equal type and head and tail offsets once (those with an unaligned end all kept)."""
    out, seen = [], set()
    for relation in found:
        head, tail = _span(relation.head), _span(relation.tail)
        if head is not None and tail is not None:
            key = (relation.type, head, tail)
            if key in seen:
                continue
            seen.add(key)
        out.append(relation)
    return out, len(found) - len(out)


def merge_events(found: Sequence[Event]) -> tuple[list[Event], int]:
    """Events with equal type and trigger offsets once, with the union of their arguments."""
    out: list[Event] = []
    at: dict[tuple[str, int, int], int] = {}
    merged = 0
    for event in found:
        span = _span(event)
        if span is None or (event.type, *span) not in at:
            if span is not None:
                at[(event.type, *span)] = len(out)
            out.append(event)
            continue
        merged += 1
        index = at[(event.type, *span)]
        first = out[index]
        have = {_argument_key(a) for a in first.arguments}
        extra = tuple(a for a in event.arguments if _argument_key(a) not in have)
        out[index] = dataclasses.replace(first, arguments=first.arguments + extra)
    return out, merged


def _argument_key(argument: Argument) -> tuple:
    span = _span(argument)
    return (argument.role, span) if span is not None else (argument.role, argument.name, id(argument))
