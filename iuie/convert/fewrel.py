"""FewRel JSON -> RE records, one per instance.

FewRel's files (``train_wiki.json``, ``val_wiki.json``, ``val_pubmed.json``) map a relation code to its
instances::

    {"P931": [{"tokens": ["Merpati", "flight", "106", "departed", "Jakarta", "(", "CGK", ")", ...],
               "h": ["tjq", "Q1331049", [[16]]],        # name, Wikidata id, token positions per mention
               "t": ["tanjung pandan", "Q3056359", [[13, 14]]]}, ...]}

A list of instances that each carry their code under ``"relation"`` is read too. The sentence is the
tokens joined by one space; an entity is the character span from its first to its last token. FewRel's
names are lower-cased, so the name written is the sentence slice (a slice that differs other than in case
is counted). Only the first mention of an entity is used (others counted). Positions that are not
consecutive are covered by one span from the first to the last (counted). Entity types are ``""``
(FewRel has none). The relation code is named by the label map (FewRel's ``pid2name.json`` is one).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from iuie.convert.report import ConversionError, ConversionReport
from iuie.ie.records import Entity, Record, Relation


def _load(path: str) -> Any:
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except OSError as e:
        raise ConversionError(path, None, f"cannot read: {e.strerror}") from None
    except json.JSONDecodeError as e:
        raise ConversionError(path, e.lineno, f"not valid JSON: {e.msg} (column {e.colno})") from None


def _instances(data: Any, path: str):
    """``(where, relation code, instance)`` in file order."""
    if isinstance(data, dict):
        for code, items in data.items():
            if not isinstance(items, list):
                raise ConversionError(path, None, f"relation {code!r}: expected a list of instances")
            for i, inst in enumerate(items):
                yield f"relation {code!r}, instance {i}", code, inst
    elif isinstance(data, list):
        for i, inst in enumerate(data):
            code = inst.get("relation") if isinstance(inst, dict) else None
            if not isinstance(code, str):
                raise ConversionError(
                    path, None, f"instance {i}: missing 'relation' (a list of instances must name each one's relation)"
                )
            yield f"instance {i}", code, inst
    else:
        raise ConversionError(path, None, "expected {relation: [instances]} or a list of instances")


def _entity(
    value: Any, tokens: list[str], starts: list[int], sentence: str, path: str, where: str, report: ConversionReport
) -> Entity | None:
    if not (isinstance(value, list) and len(value) >= 3 and isinstance(value[2], list) and value[2]):
        raise ConversionError(path, None, f"{where}: expected [name, id, [[token positions], ...]], got {value!r}")
    mentions = value[2]
    if len(mentions) > 1:
        report.change("entity with several mentions: the first is used", path, None, where, section="RE")
    positions = mentions[0]
    if (
        not isinstance(positions, list)
        or not positions
        or not all(isinstance(p, int) and not isinstance(p, bool) and 0 <= p < len(tokens) for p in positions)
    ):
        raise ConversionError(
            path, None, f"{where}: token positions {positions!r} are not indices into the {len(tokens)} tokens"
        )
    first, last = min(positions), max(positions)
    if sorted(positions) != list(range(first, last + 1)):
        report.change(
            "non-consecutive token positions: one span from the first to the last",
            path,
            None,
            f"{where}: {positions}",
            section="RE",
        )
    start, end = starts[first], starts[last] + len(tokens[last])
    name = sentence[start:end]
    if not name.strip():
        report.drop("relation: entity made of empty tokens", path, None, where, section="RE")
        return None
    given = value[0]
    if isinstance(given, str) and given.lower() != name.lower():
        report.change(
            "entity name differs from its tokens (tokens written)",
            path,
            None,
            f"{where}: {given!r} vs {name!r}",
            section="RE",
        )
    return Entity(name, "", start, end)


def read(paths: Sequence[str], report: ConversionReport) -> list[Record]:
    """RE records of the FewRel files, in file order (relation by relation)."""
    records = []
    for path in paths:
        for where, code, inst in _instances(_load(path), path):
            tokens = inst.get("tokens") if isinstance(inst, dict) else None
            if not isinstance(tokens, list) or not tokens or not all(isinstance(t, str) for t in tokens):
                raise ConversionError(path, None, f"{where}: 'tokens' must be a non-empty list of strings")
            starts, pos = [], 0
            for token in tokens:
                starts.append(pos)
                pos += len(token) + 1
            sentence = " ".join(tokens)
            head = _entity(inst.get("h"), tokens, starts, sentence, path, f"{where}, h", report)
            tail = _entity(inst.get("t"), tokens, starts, sentence, path, f"{where}, t", report)
            if head is None or tail is None:
                continue
            records.append(Record(sentence, relations=(Relation(head, code, tail),)))
    return records
