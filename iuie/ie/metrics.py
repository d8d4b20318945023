"""Scores for the nine task views in two modes (DESIGN.md decision 5); the rules are in docs/metrics.md.

``reference``: the numbers of the InstructUIE repository's evaluator (``src/evaluation/evaluator.py`` at
339ade6), from strings only (the gold ``ground_truth`` and the raw prediction), quirks included.
``strict``: span-based micro-F1 against the gold :class:`~iuie.ie.records.Record`'s character offsets, each
predicted mention aligned by :mod:`iuie.ie.alignment`.

Per view, :data:`iuie.ie.views.TABLE` names the functions of this module it uses: ``reference_*_sets``
(reference item sets), ``gold_*`` and ``predicted_*`` (strict item sets). Entry points: :class:`Gold`,
:func:`score`, :func:`metric_fn` (a seqio metric function), :func:`postprocess` (the seqio ``postprocess_fn``;
the example's ``options`` feature carries its option list to the parser, so training-time metrics parse as
``iuie score`` does), :func:`gold_from_text` (a gold rebuilt from the ground-truth string when no record is at
hand) and the helpers :func:`reference_normalise`, :func:`reference_example`, :func:`gold_items`,
:func:`predicted_items`, :func:`match_items`. Percentages are in [0, 100]; a ratio with a zero denominator is 0.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from iuie.ie import alignment, views
from iuie.ie.parsing import Parsed, parse, to_text
from iuie.ie.records import Argument, Entity, Event, Record, counts

MODES = ("reference", "strict")
# Views whose reference number is sentence-level accuracy rather than F1.
ACCURACY_VIEWS = tuple(v.name for v in views.TABLE if v.accuracy)
# Cap on the occurrence combinations tried for one predicted item (a relation with two common words).
MAX_COMBINATIONS = 10_000
# The relation type of an EP pair rebuilt from text (EP answers name no relation).
UNTYPED_PAIR = "pair"


@dataclasses.dataclass(frozen=True)
class Gold:
    """What a target postprocesses to: the gold record (strict mode) and ground-truth string (reference)."""

    view: str
    record: Record | None
    ground_truth: str


def _check_view(view: str) -> str:
    return views.canonical(view)  # UnknownViewError, a ValueError, for an unknown name


def _check_mode(mode: str) -> str:
    if mode not in MODES:
        raise ValueError(f"unknown metric mode {mode!r}; expected one of {', '.join(MODES)}")
    return mode


def _prf(tp: int, fp: int, fn: int, prefix: str = "") -> dict[str, float]:
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {
        f"{prefix}precision": 100.0 * precision,
        f"{prefix}recall": 100.0 * recall,
        f"{prefix}f1": 100.0 * f1,
        f"{prefix}tp": tp,
        f"{prefix}fp": fp,
        f"{prefix}fn": fn,
    }


# --------------------------------------------------------------------------------------------------------
# Reference mode
# --------------------------------------------------------------------------------------------------------

_SPACE_AROUND_PUNCT = re.compile(r"\s*([,:().;'_-])\s*")
_REPEATED_COMMA = re.compile(",+")
_REPEATED_DOT = re.compile(r"\.+")
_REPEATED_SEMICOLON = re.compile(";+")


def reference_normalise(text: str) -> str:
    """The reference evaluator's ``fmt`` (its rules in the module docstring), step by step in its order."""
    text = " ".join(text.split())
    text = _SPACE_AROUND_PUNCT.sub(r"\1", text)
    text = text.lower().replace("{", "").replace("}", "")
    text = _REPEATED_COMMA.sub(",", text)
    text = _REPEATED_DOT.sub(".", text)
    text = _REPEATED_SEMICOLON.sub(";", text)
    return text.replace("’", "'").replace("location", "located")


def _split_set(text: str, sep: str, need_colon: bool = False) -> set[str]:
    """``{fmt(x) for x in fmt(text).split(sep)}``, optionally keeping only items holding ``:``."""
    out = set()
    for item in reference_normalise(text).split(sep):
        item = reference_normalise(item)
        if not need_colon or ":" in item:
            out.add(item)
    return out


def _eea_truth(ground_truth: str) -> set[str]:
    # The reference splits the truth before normalising it (its prediction side is normalised first).
    return {reference_normalise(x) for x in ground_truth.split(";") if ":" in x}


def _top_level_groups(text: str) -> list[str]:
    """Contents of top-level parentheses; a missing first ``(`` or last ``)`` is tolerated (reference EE)."""
    groups: list[str] = []
    depth = 0
    opened: int | None = None
    for i, ch in enumerate(text):
        if ch == "(":
            if depth == 0:
                opened = i
            depth += 1
        elif ch == ")":
            if opened is None and not groups and i != 0:
                groups.append(text[:i])  # text before a ')' that closes nothing: the first '(' was lost
            if depth == 1 and opened + 1 != i:
                groups.append(text[opened + 1 : i])
            if depth >= 1:
                depth -= 1
    if depth == 1 and opened + 1 != len(text):
        groups.append(text[opened + 1 :])  # the last ')' was lost
    return groups


def _top_level_commas(text: str) -> list[str]:
    """Split at commas outside parentheses; empty pieces dropped (reference EE)."""
    pieces: list[str] = []
    depth = 0
    last = -1
    for i, ch in enumerate(text):
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        elif ch == "," and depth == 0 and last + 1 != i:
            pieces.append(text[last + 1 : i])
            last = i
    if last + 1 != len(text):
        pieces.append(text[last + 1 :])
    return pieces


def _event_set(text: str) -> set[str]:
    out = set()
    for group in _top_level_groups(text):
        group = reference_normalise(group).replace("arguments:", "")
        out.add(",".join(sorted(_top_level_commas(group))))
    return out


def _na_pattern(item: str) -> re.Pattern:
    return re.compile(re.escape(item).replace(",na,", ",(.+),"))


def _names_other_relation(pattern: re.Pattern, others: Iterable[str]) -> bool:
    for other in others:
        m = pattern.match(other)
        if m is not None and m.group(1) != "na":
            return True
    return False


def _na_counts(truth: set[str], pred: set[str]) -> tuple[int, int, int]:
    """TP, FP, FN of one example under the reference's NA rule (module docstring)."""
    tp = fp = fn = 0
    for item in truth:
        if ",na," in item:
            if not _names_other_relation(_na_pattern(item), pred):
                tp += 1
        elif item in pred:
            tp += 1
        else:
            fn += 1
    for item in pred:
        if ",na," in item:
            if _names_other_relation(_na_pattern(item), truth):
                fp += 1
        elif item not in truth:
            fp += 1
    return tp, fp, fn


# The reference item sets named in iuie.ie.views.TABLE: ``(ground_truth, prediction) -> (truth, prediction)``.


def reference_item_sets(ground_truth: str, prediction: str) -> tuple[set[str], set[str]]:
    """NER, ET, EP, EET (EET's set F1 is iuie's extra): ``fmt`` items split at ``;``."""
    return _split_set(ground_truth, ";"), _split_set(prediction, ";")


def reference_relation_sets(ground_truth: str, prediction: str) -> tuple[set[str], set[str]]:
    """RE, EPR: items split at ``;`` that hold ``:``."""
    return _split_set(ground_truth, ";", True), _split_set(prediction, ";", True)


def reference_span_sets(ground_truth: str, prediction: str) -> tuple[set[str], set[str]]:
    """ES: items split at ``,``."""
    return _split_set(ground_truth, ","), _split_set(prediction, ",")


def reference_argument_sets(ground_truth: str, prediction: str) -> tuple[set[str], set[str]]:
    """EEA: the truth split before ``fmt``, the prediction after (as the reference does)."""
    return _eea_truth(ground_truth), _split_set(prediction, ";", True)


def reference_event_sets(ground_truth: str, prediction: str) -> tuple[set[str], set[str]]:
    """EE: the normalised top-level parenthesised events."""
    return _event_set(ground_truth), _event_set(prediction)


def reference_example(view: str, ground_truth: str, prediction: str) -> dict[str, int]:
    """One example's counts in reference mode: ``tp``, ``fp``, ``fn`` and, for EE/EET, ``correct``."""
    entry = views.get(view)
    truth, pred = entry.function("reference")(ground_truth, prediction)
    if entry.na_rule:
        tp, fp, fn = _na_counts(truth, pred)
    else:
        tp, fp, fn = len(truth & pred), len(pred - truth), len(truth - pred)
    out = {"tp": tp, "fp": fp, "fn": fn}
    if entry.accuracy == "sets":
        out["correct"] = int(truth == pred)
    elif entry.accuracy == "text":
        out["correct"] = int(reference_normalise(ground_truth) == reference_normalise(prediction))
    return out


def _score_reference(view: str, golds: Sequence[Gold], texts: Sequence[str]) -> dict[str, float]:
    tp = fp = fn = correct = 0
    for gold, text in zip(golds, texts):
        if gold.ground_truth is None:
            raise ValueError("reference mode needs the ground_truth string of every example")
        example_counts = reference_example(view, gold.ground_truth, text)
        tp, fp, fn = tp + example_counts["tp"], fp + example_counts["fp"], fn + example_counts["fn"]
        correct += example_counts.get("correct", 0)
    out: dict[str, float] = _prf(tp, fp, fn)
    if view in ACCURACY_VIEWS:
        out["accuracy"] = 100.0 * correct / len(golds) if golds else 0.0
        out["correct"] = correct
    out["examples"] = len(golds)
    return out


# --------------------------------------------------------------------------------------------------------
# Strict mode
# --------------------------------------------------------------------------------------------------------

Span = tuple[int, int]
# A predicted item before alignment: its labels (type / role ...) and its mention strings.
PredItem = tuple[tuple[str, ...], tuple[str, ...]]


def _span(x: Entity | Argument | Event) -> Span:
    return (x.start, x.end)


# The strict item sets named in iuie.ie.views.TABLE: ``gold_*(record)`` and ``predicted_*(items)``, each a
# dict of groups (``""``, or EE's ``"trigger"`` and ``"argument"``).


def gold_typed_entities(record: Record) -> dict[str, set[tuple]]:
    """NER, ET: (type, span) of counting entities."""
    return {"": {(e.type, _span(e)) for e in record.entities if counts(e.type)}}


def gold_spans(record: Record) -> dict[str, set[tuple]]:
    """ES: the span of every entity, as ES lists them."""
    return {"": {(_span(e),) for e in record.entities}}


def gold_relations(record: Record) -> dict[str, set[tuple]]:
    """RE, EPR: (relation, head span, tail span) of counting relations."""
    return {"": {(r.type, _span(r.head), _span(r.tail)) for r in record.relations if counts(r.type)}}


def gold_pairs(record: Record) -> dict[str, set[tuple]]:
    """EP: (head span, tail span) of counting relations."""
    return {"": {(_span(r.head), _span(r.tail)) for r in record.relations if counts(r.type)}}


def gold_triggers(record: Record) -> dict[str, set[tuple]]:
    """EET: (type, trigger span) of counting events."""
    return {"": {(e.type, _span(e)) for e in record.events if counts(e.type)}}


def gold_arguments(record: Record) -> dict[str, set[tuple]]:
    """EEA: (role, argument span) of the event's arguments."""
    return {"": {(a.role, _span(a)) for e in record.events for a in e.arguments}}


def gold_events(record: Record) -> dict[str, set[tuple]]:
    """EE: trigger (type, span) and argument (event type, role, span) of counting events."""
    events = [e for e in record.events if counts(e.type)]
    return {
        "trigger": {(e.type, _span(e)) for e in events},
        "argument": {(e.type, a.role, _span(a)) for e in events for a in e.arguments},
    }


def predicted_typed(items: Sequence[tuple]) -> dict[str, list[PredItem]]:
    """NER, ET, EET: ``(type, mention)`` items, NA-typed ones dropped."""
    return {"": [((t,), (m,)) for t, m in items if counts(t)]}


def predicted_spans(items: Sequence[tuple]) -> dict[str, list[PredItem]]:
    return {"": [((), (m,)) for (m,) in items]}


def predicted_relations(items: Sequence[tuple]) -> dict[str, list[PredItem]]:
    return {"": [((r,), (h, t)) for r, h, t in items if counts(r)]}


def predicted_pairs(items: Sequence[tuple]) -> dict[str, list[PredItem]]:
    return {"": [((), (h, t)) for h, t in items]}


def predicted_arguments(items: Sequence[tuple]) -> dict[str, list[PredItem]]:
    return {"": [((r,), (a,)) for r, a in items]}


def predicted_events(items: Sequence[tuple]) -> dict[str, list[PredItem]]:
    events = [e for e in items if counts(e[0])]
    return {
        "trigger": [((t,), (trig,)) for t, trig, _ in events],
        "argument": [((t, role), (arg,)) for t, _, args in events for role, arg in args],
    }


def gold_items(view: str, record: Record) -> dict[str, set[tuple]]:
    """The strict gold item sets of a record: ``{"": items}``, or ``{"trigger": ..., "argument": ...}`` (EE)."""
    return views.get(view).function("gold")(record)


def predicted_items(view: str, parsed: Parsed) -> dict[str, list[PredItem]]:
    """The parsed items as (labels, mentions), grouped like :func:`gold_items`; NA-typed ones dropped."""
    return views.get(view).function("predicted")(parsed.items)


def match_items(sentence: str, gold: set[tuple], preds: Sequence[PredItem]) -> dict[str, int]:
    """TP/FP/FN/hallucinated of one example: aligns each predicted item (rules in the module docstring)."""
    claimed: set[tuple] = set()
    used: set[Span] = set()
    predicted: set[tuple] = set()
    hallucinated: set[PredItem] = set()
    fallback = 0
    for labels, mentions in preds:
        candidates = [alignment.occurrences(sentence, m) for m in mentions]
        if not all(candidates):
            hallucinated.add((labels, mentions))
            continue
        # A mention found only by the case- and space-insensitive fallback: counted, so a report shows how
        # much of a score rests on it.
        fallback += sum(not alignment.exact_occurrences(sentence, m) for m in mentions)
        chosen = duplicate = None
        for combo in itertools.islice(itertools.product(*candidates), MAX_COMBINATIONS):
            key = labels + combo
            if key in gold:
                if key not in claimed:
                    chosen = key
                    break
                duplicate = duplicate or key
        chosen = chosen or duplicate
        if chosen is None:
            chosen = labels + tuple(next((s for s in c if s not in used), c[0]) for c in candidates)
        claimed.add(chosen)
        used.update(chosen[len(labels) :])
        predicted.add(chosen)
    tp = len(predicted & gold)
    return {
        "tp": tp,
        "fp": len(predicted) - tp + len(hallucinated),
        "fn": len(gold) - tp,
        "hallucinated": len(hallucinated),
        "fallback": fallback,
    }


def _score_strict(view: str, golds: Sequence[Gold], parsed: Sequence[Parsed]) -> dict[str, float]:
    groups = views.get(view).strict_groups
    totals = {g: {"tp": 0, "fp": 0, "fn": 0, "hallucinated": 0, "fallback": 0} for g in groups}
    malformed = 0
    for gold, pred in zip(golds, parsed):
        if gold.record is None:
            raise ValueError("strict mode needs the gold record of every example (Gold.record is None)")
        gold_sets = gold_items(view, gold.record)
        pred_lists = predicted_items(view, pred)
        malformed += pred.malformed
        for g in groups:
            for key, value in match_items(gold.record.sentence, gold_sets[g], pred_lists[g]).items():
                totals[g][key] += value
    out: dict[str, float] = {}
    for g in groups:
        prefix = f"{g}_" if g else ""
        out.update(_prf(totals[g]["tp"], totals[g]["fp"], totals[g]["fn"], prefix))
        out[f"{prefix}hallucinated"] = totals[g]["hallucinated"]
        out[f"{prefix}fallback"] = totals[g]["fallback"]
    if len(groups) > 1:  # EE: the top-level numbers are the first group's (triggers); hallucinated sums them
        for key in ("precision", "recall", "f1", "tp", "fp", "fn"):
            out[key] = out[f"{groups[0]}_{key}"]
        out["hallucinated"] = sum(totals[g]["hallucinated"] for g in groups)
        out["fallback"] = sum(totals[g]["fallback"] for g in groups)
    out["malformed"] = malformed
    out["examples"] = len(golds)
    return out


# --------------------------------------------------------------------------------------------------------
# Public entry points
# --------------------------------------------------------------------------------------------------------


def _text_of(pred: Any) -> str:
    return pred.text if isinstance(pred, Parsed) else to_text(pred)


def score(
    view: str, golds: Sequence[Gold], preds: Sequence[Parsed | str], mode: str, *, labels: Any = None
) -> dict[str, float]:
    """Scores predictions of one view against their golds (module docstring); all examples at once.

    ``preds`` are :class:`~iuie.ie.parsing.Parsed` or raw text (``str``/``bytes``); raw text is parsed in
    strict mode with ``labels`` (see :func:`iuie.ie.parsing.parse`) and the gold sentence. Returns ``precision``,
    ``recall``, ``f1`` (percent), ``tp``, ``fp``, ``fn``, ``examples``, and ``accuracy``/``correct``
    (reference EE/EET), ``hallucinated``/``malformed``/``fallback`` (mentions aligned only by the fallback)
    and the EE ``trigger_*``/``argument_*`` (strict).
    """
    view, mode = _check_view(view), _check_mode(mode)
    golds, preds = list(golds), list(preds)
    if len(golds) != len(preds):
        raise ValueError(f"{len(golds)} golds but {len(preds)} predictions")
    if mode == "reference":
        return _score_reference(view, golds, [_text_of(p) for p in preds])
    parsed = []
    for gold, pred in zip(golds, preds):
        if not isinstance(pred, Parsed):
            sentence = gold.record.sentence if gold.record is not None else None
            pred = parse(view, pred, labels, sentence=sentence)
        parsed.append(pred)
    return _score_strict(view, golds, parsed)


def metric_fn(
    view: str, mode: str, *, labels: Any = None
) -> Callable[[Sequence[Gold], Sequence[Any]], dict[str, float]]:
    """A seqio metric function ``(targets, predictions) -> {name: value}`` over postprocessed examples."""
    view, mode = _check_view(view), _check_mode(mode)

    def metric(targets: Sequence[Gold], predictions: Sequence[Any]) -> dict[str, float]:
        return {k: float(v) for k, v in score(view, targets, predictions, mode, labels=labels).items()}

    metric.__name__ = f"iuie_{view.lower()}_{mode}"
    return metric


def options_from_example(example: Mapping[str, Any]) -> Any:
    """The option list an example carries in its ``options`` feature (JSON), or None without one."""
    raw = to_text(example.get("options")) if example.get("options") is not None else ""
    if not raw:
        return None
    try:
        return json.loads(raw)
    except ValueError:
        return None


def postprocess(
    output: Any,
    example: Mapping[str, Any] | None = None,
    is_target: bool = False,
    view: str | None = None,
    labels: Any = None,
) -> Gold | Parsed:
    """The seqio ``postprocess_fn`` of a view's Task: bind ``view`` with ``functools.partial``.

    Targets (``is_target=True``) become the :class:`Gold` of the example's ``record`` pass-through feature
    (``Record.to_json_string()``, bytes in seqio) and ``ground_truth`` feature (falling back to the target
    text when the example has none). Predictions become :class:`~iuie.ie.parsing.Parsed`, with the record's
    sentence helping the parser when the example carries it, and the example's ``options`` feature (the
    input's option list, JSON) as the parser's options unless ``labels`` is bound.
    """
    if view is None:
        raise ValueError("postprocess needs the task view: functools.partial(postprocess, view='NER')")
    view = _check_view(view)
    record = None
    ground_truth = None
    if example is not None:
        if example.get("record") is not None:
            raw = to_text(example["record"])
            if raw:
                record = Record.from_json(raw)
        if example.get("ground_truth") is not None:
            ground_truth = to_text(example["ground_truth"])
        if labels is None:
            labels = options_from_example(example)
    if is_target:
        return Gold(view, record, to_text(output) if ground_truth is None else ground_truth)
    return parse(view, output, labels, sentence=record.sentence if record is not None else None)


# --------------------------------------------------------------------------------------------------------
# Gold without a record
# --------------------------------------------------------------------------------------------------------


def gold_from_text(view: str, sentence: str, ground_truth: str, labels: Any = None) -> tuple[Gold, int]:
    """A :class:`Gold` whose record is rebuilt from the ``ground_truth`` string, for strict scoring of
    prediction files that carry no record.

    The ground truth is parsed (with the sentence) and each mention aligned like a prediction
    (:func:`iuie.ie.alignment.align`, successive occurrences for repeats). Offsets are therefore as good as the
    alignment: a mention written once for two occurrences, or found only by the fallback, may land elsewhere
    than the annotation. Returns the gold and the number of mentions not found in the sentence.

    Offsets are put back by :func:`iuie.ie.views.locate`, the pair ``iuie.infer`` and the Extractor use; a
    mention not found gets no offsets (``start = end = None``), which no prediction can match.
    """
    view = _check_view(view)
    parsed = parse(view, ground_truth, labels, sentence=sentence)
    located, missing = views.locate(view, parsed.items, sentence)
    entry = views.get(view)
    sections: dict[str, tuple] = {"entities": (), "relations": (), "events": ()}
    if entry.section == "relations" and not entry.label_slots:
        # EP names no relation; the rebuilt gold must still count (gold_pairs skips NA-typed relations).
        located = [dataclasses.replace(r, type=UNTYPED_PAIR) for r in located]
    sections[entry.section] = tuple(located)
    record = Record(sentence, sections["entities"], sections["relations"], sections["events"])
    return Gold(view, record, ground_truth), missing
