"""iuie.ie.metrics in strict mode: span-based micro-F1, TP/FP/FN worked out by hand per view.

Checked against the definition in DESIGN.md decision 5 (the paper's text: NER = type and boundaries, RE =
relation and both boundaries, EE trigger = type and span, argument = event type, role and span) and the
matching rules of the iuie.ie.metrics module docstring (repeated mentions, hallucinations, duplicates). Each
expected count is derived by hand in the comments; offsets are checked by slicing.
"""

from __future__ import annotations

import pytest

from iuie.ie.metrics import Gold, gold_from_text, score
from iuie.ie.parsing import parse
from iuie.ie.records import Argument, Entity, Event, Record, Relation

# 0         1         2
# 0123456789012345678901234567890
S = "Bob and Ann met Bob in Paris ."
BOB1, ANN, BOB2, PARIS = (0, 3), (8, 11), (16, 19), (23, 28)


def ent(name, type_, span):
    assert S[span[0] : span[1]] == name
    return Entity(name, type_, *span)


NER_RECORD = Record(
    S,
    (
        ent("Bob", "person", BOB1),
        ent("Ann", "person", ANN),
        ent("Bob", "person", BOB2),
        ent("Paris", "location", PARIS),
    ),
)


def strict(view, record, prediction, labels=None):
    return score(view, [Gold(view, record, "")], [prediction], "strict", labels=labels)


def tpfp(result, prefix=""):
    return tuple(result[prefix + k] for k in ("tp", "fp", "fn", "hallucinated"))


# ---------------------------------------------------------------------------------------------------------
# NER, ET, ES
# ---------------------------------------------------------------------------------------------------------


def test_ner_repeated_mentions_hallucination_and_wrong_type():
    # Bob -> (person, BOB1) TP; Bob -> (person, BOB2) TP (the next unmatched gold occurrence); Paris TP;
    # Carol is nowhere: FP, hallucinated; "location: Bob" matches no gold: FP; Ann is missed: FN.
    result = strict("NER", NER_RECORD, " person: Bob; person: Bob; location: Paris; person: Carol; location: Bob")
    assert tpfp(result) == (3, 2, 1, 1)
    assert result["precision"] == pytest.approx(60.0)
    assert result["recall"] == pytest.approx(75.0)
    assert result["f1"] == pytest.approx(200 / 3)


def test_gold_target_with_a_repeated_mention_scores_100():
    result = strict("NER", NER_RECORD, " person: Bob; person: Ann; person: Bob; location: Paris")
    assert tpfp(result) == (4, 0, 0, 0) and result["f1"] == 100.0


def test_duplicate_predictions_count_once():
    record = Record(S, (ent("Bob", "person", BOB2),))
    # Both copies land on the one gold Bob (the second is a duplicate of it): TP 1, nothing else.
    assert tpfp(strict("NER", record, " person: Bob; person: Bob")) == (1, 0, 0, 0)
    # A copy with another type is a different item.
    assert tpfp(strict("NER", record, " person: Bob; location: Bob")) == (1, 1, 0, 0)
    # Hallucinated duplicates count once too.
    assert tpfp(strict("NER", record, " person: Bob; person: Zed; person: Zed")) == (1, 1, 0, 1)


def test_prediction_of_a_repeated_mention_with_no_gold_takes_the_first_occurrence():
    record = Record(S, (ent("Ann", "person", ANN),))
    # (location, BOB1) and then (location, BOB2): two false positives.
    assert tpfp(strict("NER", record, " location: Bob; location: Bob")) == (0, 2, 1, 0)


def test_wrong_boundary_is_a_false_positive_and_a_miss():
    record = Record("New York City is big", (Entity("New York City", "location", 0, 13),))
    assert tpfp(strict("NER", record, " location: New York")) == (0, 1, 1, 0)


def test_fallback_alignment_of_tokenised_text():
    record = Record("Patients with Parkinson ' s disease .", (Entity("Parkinson ' s disease", "disease", 14, 35),))
    assert tpfp(strict("NER", record, " disease: Parkinson's disease")) == (1, 0, 0, 0)
    assert tpfp(strict("NER", record, " Disease: parkinson's disease")) == (0, 1, 1, 0)  # the type is exact


def test_na_and_untyped_entities():
    record = Record(S, (ent("Bob", "person", BOB1), ent("Ann", "NA", ANN), ent("Paris", "", PARIS)))
    # NER and ET count typed entities only; a predicted NA entity is ignored.
    assert tpfp(strict("NER", record, " person: Bob; NA: Ann")) == (1, 0, 0, 0)
    assert tpfp(strict("ET", record, " person: Bob; person: Ann")) == (1, 1, 0, 0)
    # ES lists every entity whatever its type (its target does), so its gold has all three spans.
    assert tpfp(strict("ES", record, " Bob, Ann")) == (2, 0, 1, 0)


def test_es_spans():
    # Bob -> BOB1, Bob -> BOB2, Paris; "and Ann" occurs but is not a gold span: FP, not hallucinated;
    # "Ann and" occurs nowhere: FP, hallucinated. Ann is missed.
    assert tpfp(strict("ES", NER_RECORD, " Bob, Bob, Paris, and Ann, Ann and")) == (3, 2, 1, 1)


def test_predictions_may_be_parsed_already():
    parsed = parse("NER", " person: Ann")
    assert tpfp(strict("NER", NER_RECORD, parsed)) == (1, 0, 3, 0)


# ---------------------------------------------------------------------------------------------------------
# RE, EPR, EP
# ---------------------------------------------------------------------------------------------------------

# 0         1         2         3         4         5
# 012345678901234567890123456789012345678901234567890123
R = "Bob works for ACME in Paris and Ann works for ACME ."


def rel(type_, head, head_start, tail, tail_start):
    h = Entity(head, "", head_start, head_start + len(head))
    t = Entity(tail, "", tail_start, tail_start + len(tail))
    assert R[h.start : h.end] == head and R[t.start : t.end] == tail
    return Relation(h, type_, t)


RE_RECORD = Record(
    R,
    relations=(
        rel("work for", "Bob", 0, "ACME", 14),
        rel("work for", "Ann", 32, "ACME", 46),
        rel("NA", "Bob", 0, "Paris", 22),
    ),
)


def test_re_repeated_tail_and_na():
    # (Bob, ACME#1) TP; (Ann, ACME#2) TP via the unmatched gold occurrence; the NA relation is not gold.
    assert tpfp(strict("RE", RE_RECORD, " work for: Bob, ACME; work for: Ann, ACME")) == (2, 0, 0, 0)
    # A predicted NA relation says "nothing" and is ignored.
    assert tpfp(strict("RE", RE_RECORD, " work for: Bob, ACME; NA: Bob, Paris")) == (1, 0, 1, 0)


def test_re_wrong_relation_direction_and_hallucination():
    # live in (Bob, Paris): not gold -> FP; work for (ACME, Bob): reversed -> FP; (Bob, Google): hallucinated.
    result = strict("RE", RE_RECORD, " live in: Bob, Paris; work for: ACME, Bob; work for: Bob, Google")
    assert tpfp(result) == (0, 3, 2, 1)


def test_epr_and_ep():
    assert tpfp(strict("EPR", RE_RECORD, " work for: Ann, ACME")) == (1, 0, 1, 0)
    # EP: pairs only; the NA pair (Bob, Paris) is not gold.
    assert tpfp(strict("EP", RE_RECORD, " Bob, ACME; Bob, Paris; Ann, ACME")) == (2, 1, 0, 0)


# ---------------------------------------------------------------------------------------------------------
# EE, EET, EEA
# ---------------------------------------------------------------------------------------------------------

# 0         1         2         3         4         5
# 0123456789012345678901234567890123456789012345678901234
E = "Hackers attacked the bank and stole data from the bank ."


def arg(name, role, start):
    assert E[start : start + len(name)] == name
    return Argument(name, role, start, start + len(name))


EE_RECORD = Record(
    E,
    events=(
        Event("attacked", "attack", 8, 16, (arg("Hackers", "attacker", 0), arg("the bank", "victim", 17))),
        Event("stole", "databreach", 30, 35, (arg("data", "compromised data", 36), arg("the bank", "victim", 46))),
    ),
)


def test_ee_triggers_and_arguments_are_scored_separately():
    prediction = (
        " ( attack: attacked, Hackers: attacker, the bank: victim) ,"
        " ( databreach: stole, data: compromised data, the bank: victim) "
    )
    result = strict("EE", EE_RECORD, prediction)
    assert tpfp(result, "trigger_") == (2, 0, 0, 0)
    # "the bank" twice with the same role: the two gold occurrences (17 and 46) are matched in turn.
    assert tpfp(result, "argument_") == (4, 0, 0, 0)
    assert result["f1"] == result["trigger_f1"] == 100.0 and result["argument_f1"] == 100.0


def test_ee_argument_counts_without_its_trigger_but_with_its_event_type():
    # Trigger "Hackers" is wrong (FP; "attacked" missed); its arguments still match, being keyed by
    # (event type, role, span). The second event has the wrong type: trigger FP, its argument FP.
    prediction = " ( attack: Hackers, Hackers: attacker) , ( attack: stole, data: compromised data) "
    result = strict("EE", EE_RECORD, prediction)
    assert tpfp(result, "trigger_") == (0, 2, 2, 0)
    assert tpfp(result, "argument_") == (1, 1, 3, 0)
    assert (result["tp"], result["fp"], result["fn"]) == (0, 2, 2)  # the top level is the trigger score


def test_ee_hallucinations_are_summed():
    prediction = " ( attack: exploded, Hackers: attacker, Mallory: attacker) "
    result = strict("EE", EE_RECORD, prediction)
    assert result["trigger_hallucinated"] == 1 and result["argument_hallucinated"] == 1
    assert result["hallucinated"] == 2


def test_eet_and_eea():
    assert tpfp(strict("EET", EE_RECORD, " attack: attacked; databreach: attacked")) == (1, 1, 1, 0)
    eea_record = Record(E, events=(EE_RECORD.events[0],))
    assert tpfp(strict("EEA", eea_record, " Hackers: attacker; the bank: attacker")) == (1, 1, 1, 0)


def test_malformed_pieces_are_reported():
    result = strict("NER", NER_RECORD, " person: Ann; locat")
    assert result["malformed"] == 1 and tpfp(result) == (1, 0, 3, 0)


def test_strict_needs_the_record():
    with pytest.raises(ValueError, match="record"):
        score("NER", [Gold("NER", None, " None")], [" None"], "strict")


# ---------------------------------------------------------------------------------------------------------
# Gold rebuilt from text (prediction files without a record)
# ---------------------------------------------------------------------------------------------------------


def test_gold_from_text_matches_the_record_when_mentions_are_unambiguous():
    target = " person: Bob; person: Ann; person: Bob; location: Paris"
    gold, missing = gold_from_text("NER", S, target)
    assert missing == 0 and set(gold.record.entities) == set(NER_RECORD.entities)
    gold, missing = gold_from_text("RE", R, " work for: Bob, ACME; work for: Ann, ACME; NA: Bob, Paris")
    assert missing == 0
    assert strict("RE", gold.record, " work for: Bob, ACME; work for: Ann, ACME")["f1"] == 100.0
    gold, missing = gold_from_text("EE", E, " ( attack: attacked, Hackers: attacker, the bank: victim) ")
    assert [(a.name, a.start) for a in gold.record.events[0].arguments] == [("Hackers", 0), ("the bank", 17)]


def test_gold_from_text_counts_mentions_not_in_the_sentence():
    gold, missing = gold_from_text("NER", S, " person: Bob; person: Zed")
    assert missing == 1
    assert tpfp(strict("NER", gold.record, " person: Bob; person: Zed")) == (1, 1, 1, 1)
