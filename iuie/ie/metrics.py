"""Scores for the nine task views, in two modes (DESIGN.md decision 5).

``reference``
    The numbers of the InstructUIE repository's evaluator (``src/evaluation/evaluator.py`` at 339ade6, as
    run by ``src/calculate_f1.py``), computed from strings only: the gold ``ground_truth`` string and the raw
    prediction text. Written from its rules (shared/FORMATS.md), not from its code:

    * ``fmt`` (:func:`reference_normalise`): whitespace runs to one space; whitespace around
      ``, : ( ) . _ ; ' -`` removed; lower case; ``{`` and ``}`` deleted; runs of ``,``, ``.`` and ``;``
      collapsed; ``’`` to ``'``; ``location`` to ``located``.
    * NER: truth and prediction are ``{fmt(x) for x in fmt(text).split(';')}``; micro P/R/F1 over the sets,
      summed over examples. Empty items are kept, so ``" None"`` is the item ``none`` and two ``None`` match.
    * RE: the same sets keeping only items that contain ``:``; truth from ``ground_truth`` (which lists NA
      relations as ``NA: head, tail``); the NA rule of ``MetricF1NA``: a truth item containing ``,na,``
      is a TP unless some prediction matches it with another text in place of ``na``, and is never an FN; a
      predicted item containing ``,na,`` costs an FP only if some truth item matches it with another text
      in place of ``na``, and is never a TP. **Note**: the rule was written for an older ``(head,rel,tail)``
      format; on the current ``rel: head, tail`` strings ``fmt`` gives ``na:head,tail``, which contains
      ``,na,`` only when a mention does, so in practice each NA relation of the truth is an ordinary item:
      an FN unless the model also writes ``NA: head, tail``. The gold *target* never lists NA relations, so
      even a perfect copy of the target loses recall on datasets with NA relations (semval-RE). iuie
      reproduces this, since that is what the reference reports.
    * EE: the top-level parenthesised groups of the text (a missing ``(`` before the first, or ``)`` after
      the last, is tolerated as the reference does), each ``fmt``-ed, ``arguments:`` removed, split at
      top-level commas, sorted and re-joined with ``,``; the example is correct when the two sets are equal.
      ``accuracy`` = correct / examples.
    * EET: correct when ``fmt(ground_truth) == fmt(prediction)``; ``accuracy``.
    * EEA: truth items are ``fmt(x)`` for ``x`` in ``ground_truth.split(';')`` holding ``:`` (split *before*
      ``fmt``), prediction items ``fmt(x)`` for ``x`` in ``fmt(prediction).split(';')`` holding ``:``;
      micro P/R/F1.
    * The reference has no evaluator for the auxiliary views; iuie extends it naturally: ET as NER, EPR as RE
      (NA rule included, truth from ``ground_truth``), ES and EP as NER but splitting at ``,`` (ES) and
      ``;`` (EP) with no other filter.

    For EE and EET, whose reference number is ``accuracy``, ``precision``/``recall``/``f1`` are also given:
    micro F1 over the same normalised items (EE: the event strings above; EET: ``fmt(text).split(';')``).
    They are iuie's addition, not a reference number.

    Feeding the reference's ``add()`` lists makes it stop after the first element; iuie scores every example.

``strict``
    Span-based micro-F1 against the gold :class:`~iuie.ie.records.Record`'s character offsets, as the paper's
    text defines it. Gold items are exactly what the view's target lists (types ``NA``/``""`` do not count):

    ====  ==========================================================  ==========================
    view  gold item                                                   from
    ====  ==========================================================  ==========================
    NER   (type, start, end)                                          counting entities
    ET    (type, start, end)                                          counting entities (listed)
    ES    (start, end)                                                all entities (as ES lists)
    RE    (relation, head span, tail span)                            counting relations
    EPR   as RE                                                       counting relations
    EP    (head span, tail span)                                      counting relations
    EE    trigger (type, span) and argument (event type, role, span)  counting events
    EET   (type, trigger span)                                        counting events
    EEA   (role, argument span)                                       the event's arguments
    ====  ==========================================================  ==========================

    Predictions are parsed (:func:`iuie.ie.parsing.parse`, with the sentence to break ties) and each mention is
    aligned to offsets with :mod:`iuie.ie.alignment` (exact occurrences, else its documented fallback). Rules:

    * An item with a mention found nowhere in the sentence is a false positive, counted in ``hallucinated``.
    * A mention occurring several times: the item takes the first combination of occurrences that makes it
      equal to a gold item not already matched by an earlier prediction; failing that, one that makes it
      equal to an already matched gold item (a duplicate); failing that, the first occurrence of each
      mention not used by an earlier prediction (else the first). So a gold target listing a repeated
      mention once per occurrence parses back to every occurrence, and scores 100.
    * Predictions are a set: an item equal (after alignment) to an earlier one counts once. Two predicted
      copies of a string take two gold occurrences when the gold has two; when it has one, the second copy
      is that one again (a duplicate), not a false positive elsewhere.
    * A predicted entity or relation typed ``NA`` or ``""`` says "nothing here" and is ignored, as gold
      ones are.
    * EE reports ``trigger_*`` and ``argument_*`` (precision, recall, f1, tp, fp, fn, hallucinated)
      separately; an argument is scored whether or not its trigger is right. The top-level ``precision``,
      ``recall``, ``f1``, ``tp``, ``fp``, ``fn`` of EE are the trigger ones; ``hallucinated`` is the sum.
    * ``malformed`` sums :attr:`iuie.ie.parsing.Parsed.malformed` over the predictions.

All percentages are in [0, 100]; a ratio with a zero denominator is 0 (the reference's convention).

API (docs/architecture.md; the keyword-only ``labels`` arguments are additions, passed to the parser):

* ``Gold(view, record, ground_truth)``;
* ``score(view, golds, preds, mode, *, labels=None) -> dict[str, float]``;
* ``metric_fn(view, mode, *, labels=None)``: a seqio metric function ``(targets, predictions) -> dict``;
* ``postprocess(output, example=None, is_target=False, view=None, labels=None)``: the seqio
  ``postprocess_fn`` (bind ``view`` with ``functools.partial``);
* ``gold_from_text(view, sentence, ground_truth, labels=None) -> (Gold, unaligned)``: a gold rebuilt from
  the ground-truth string when no record is at hand (``iuie score`` without ``record``);
* helpers: ``reference_normalise`` (``fmt``), ``reference_example`` (one example's reference counts),
  ``gold_items`` / ``predicted_items`` / ``match_items`` (the strict machinery).
"""

from __future__ import annotations

import dataclasses
import itertools
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from iuie.ie import alignment
from iuie.ie.instructions import VIEWS
from iuie.ie.parsing import Parsed, parse, to_text
from iuie.ie.records import Argument, Entity, Event, Record, Relation, counts

MODES = ("reference", "strict")
# Views whose reference number is sentence-level accuracy rather than F1.
ACCURACY_VIEWS = ("EE", "EET")
# Cap on the occurrence combinations tried for one predicted item (a relation with two common words).
MAX_COMBINATIONS = 10_000


@dataclasses.dataclass(frozen=True)
class Gold:
    """What a target postprocesses to: the gold record (strict mode) and ground-truth string (reference)."""

    view: str
    record: Record | None
    ground_truth: str


def _check_view(view: str) -> str:
    name = str(view).strip().upper()
    if name not in VIEWS:
        raise ValueError(f"unknown task view {view!r}; expected one of {', '.join(VIEWS)}")
    return name


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


def _reference_sets(view: str, ground_truth: str, prediction: str) -> tuple[set[str], set[str]]:
    if view in ("NER", "ET"):
        return _split_set(ground_truth, ";"), _split_set(prediction, ";")
    if view in ("RE", "EPR"):
        return _split_set(ground_truth, ";", True), _split_set(prediction, ";", True)
    if view == "ES":
        return _split_set(ground_truth, ","), _split_set(prediction, ",")
    if view == "EP":
        return _split_set(ground_truth, ";"), _split_set(prediction, ";")
    if view == "EEA":
        return _eea_truth(ground_truth), _split_set(prediction, ";", True)
    if view == "EE":
        return _event_set(ground_truth), _event_set(prediction)
    return _split_set(ground_truth, ";"), _split_set(prediction, ";")  # EET (set F1 is iuie's extra)


def reference_example(view: str, ground_truth: str, prediction: str) -> dict[str, int]:
    """One example's counts in reference mode: ``tp``, ``fp``, ``fn`` and, for EE/EET, ``correct``."""
    view = _check_view(view)
    truth, pred = _reference_sets(view, ground_truth, prediction)
    if view in ("RE", "EPR"):
        tp, fp, fn = _na_counts(truth, pred)
    else:
        tp, fp, fn = len(truth & pred), len(pred - truth), len(truth - pred)
    out = {"tp": tp, "fp": fp, "fn": fn}
    if view == "EE":
        out["correct"] = int(truth == pred)
    elif view == "EET":
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


def gold_items(view: str, record: Record) -> dict[str, set[tuple]]:
    """The strict gold item sets of a record: ``{"": items}``, or ``{"trigger": ..., "argument": ...}`` (EE)."""
    view = _check_view(view)

    def span(x: Entity | Argument | Event) -> Span:
        return (x.start, x.end)

    if view in ("NER", "ET"):
        return {"": {(e.type, span(e)) for e in record.entities if counts(e.type)}}
    if view == "ES":
        return {"": {(span(e),) for e in record.entities}}
    if view in ("RE", "EPR"):
        return {"": {(r.type, span(r.head), span(r.tail)) for r in record.relations if counts(r.type)}}
    if view == "EP":
        return {"": {(span(r.head), span(r.tail)) for r in record.relations if counts(r.type)}}
    if view == "EET":
        return {"": {(e.type, span(e)) for e in record.events if counts(e.type)}}
    if view == "EEA":
        return {"": {(a.role, span(a)) for e in record.events for a in e.arguments}}
    events = [e for e in record.events if counts(e.type)]
    return {
        "trigger": {(e.type, span(e)) for e in events},
        "argument": {(e.type, a.role, span(a)) for e in events for a in e.arguments},
    }


def predicted_items(view: str, parsed: Parsed) -> dict[str, list[PredItem]]:
    """The parsed items as (labels, mentions), grouped like :func:`gold_items`; NA-typed ones dropped."""
    view = _check_view(view)
    items = parsed.items
    if view in ("NER", "ET", "EET"):
        return {"": [((t,), (m,)) for t, m in items if counts(t)]}
    if view == "ES":
        return {"": [((), (m,)) for (m,) in items]}
    if view in ("RE", "EPR"):
        return {"": [((r,), (h, t)) for r, h, t in items if counts(r)]}
    if view == "EP":
        return {"": [((), (h, t)) for h, t in items]}
    if view == "EEA":
        return {"": [((r,), (a,)) for r, a in items]}
    events = [e for e in items if counts(e[0])]
    return {
        "trigger": [((t,), (trig,)) for t, trig, _ in events],
        "argument": [((t, role), (arg,)) for t, _, args in events for role, arg in args],
    }


def match_items(sentence: str, gold: set[tuple], preds: Sequence[PredItem]) -> dict[str, int]:
    """TP/FP/FN/hallucinated of one example: aligns each predicted item (rules in the module docstring)."""
    claimed: set[tuple] = set()
    used: set[Span] = set()
    predicted: set[tuple] = set()
    hallucinated: set[PredItem] = set()
    for labels, mentions in preds:
        candidates = [alignment.occurrences(sentence, m) for m in mentions]
        if not all(candidates):
            hallucinated.add((labels, mentions))
            continue
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
    }


def _score_strict(view: str, golds: Sequence[Gold], parsed: Sequence[Parsed]) -> dict[str, float]:
    groups = ("trigger", "argument") if view == "EE" else ("",)
    totals = {g: {"tp": 0, "fp": 0, "fn": 0, "hallucinated": 0} for g in groups}
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
    if view == "EE":
        for key in ("precision", "recall", "f1", "tp", "fp", "fn"):
            out[key] = out[f"trigger_{key}"]
        out["hallucinated"] = totals["trigger"]["hallucinated"] + totals["argument"]["hallucinated"]
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
    (reference EE/EET), ``hallucinated``/``malformed`` and the EE ``trigger_*``/``argument_*`` (strict).
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
    sentence helping the parser when the example carries it.
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
    than the annotation. A mention not found in the sentence gets the span ``(-1, -1)``, which no prediction
    can match (a sure false negative). Returns the gold and the number of such mentions.
    """
    view = _check_view(view)
    parsed = parse(view, ground_truth, labels, sentence=sentence)
    mentions: list[str] = []
    for item in parsed.items:
        if view == "EE":
            mentions.append(item[1])
            mentions.extend(arg for _, arg in item[2])
        elif view in ("RE", "EPR"):
            mentions.extend(item[1:])
        elif view in ("NER", "ET", "EET", "EEA"):
            mentions.append(item[1])
        else:  # ES, EP
            mentions.extend(item)
    spans = iter(alignment.align(sentence, mentions))
    missing = 0

    def next_span() -> Span:
        nonlocal missing
        span = next(spans)
        if span is None:
            missing += 1
            return (-1, -1)
        return span

    entities: list[Entity] = []
    relations: list[Relation] = []
    events: list[Event] = []
    for item in parsed.items:
        if view in ("NER", "ET"):
            entities.append(Entity(item[1], item[0], *next_span()))
        elif view == "ES":
            # ES gold counts every listed entity whatever its type; the type is not in the text.
            entities.append(Entity(item[0], "", *next_span()))
        elif view in ("RE", "EPR", "EP"):
            rel_type, head, tail = item if view != "EP" else ("pair",) + tuple(item)
            relations.append(Relation(Entity(head, "", *next_span()), rel_type, Entity(tail, "", *next_span())))
        elif view == "EEA":
            events.append(Event("", "", 0, 0, (Argument(item[1], item[0], *next_span()),)))
        elif view == "EET":
            events.append(Event(item[1], item[0], *next_span()))
        else:
            start, end = next_span()
            arguments = tuple(Argument(arg, role, *next_span()) for role, arg in item[2])
            events.append(Event(item[1], item[0], start, end, arguments))
    if view == "EEA":  # one event holding every argument
        events = [Event("", "", 0, 0, tuple(a for e in events for a in e.arguments))]
    record = Record(sentence, tuple(entities), tuple(relations), tuple(events))
    return Gold(view, record, ground_truth), missing
