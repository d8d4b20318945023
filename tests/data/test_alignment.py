"""iuie.ie.alignment: predicted strings to character offsets.

Checked against hand-worked offsets in short sentences (counted by hand, then confirmed by slicing), for the
rules in the module docstring: exact first unused occurrence, the documented fallback, None for text that
is nowhere.
"""

from __future__ import annotations

import pytest

from iuie.ie.alignment import align, exact_occurrences, fallback_occurrences, normalise, occurrences, occurs


def test_exact_occurrence():
    sentence = "Bob met Alice in Paris."
    assert align(sentence, ["Alice", "Paris"]) == [(8, 13), (17, 22)]
    assert sentence[8:13] == "Alice"


def test_surrounding_whitespace_of_the_prediction_is_ignored():
    assert align("Bob met Alice.", ["  Alice "]) == [(8, 13)]


def test_repeated_string_takes_successive_occurrences():
    sentence = "John saw John and John."
    assert align(sentence, ["John", "John", "John"]) == [(0, 4), (9, 13), (18, 22)]


def test_more_copies_than_occurrences_reuse_the_first():
    # A duplicate is still in the sentence: not a hallucination.
    assert align("John left.", ["John", "John"]) == [(0, 4), (0, 4)]


def test_used_occurrences_are_shared_across_strings_of_one_call_only():
    sentence = "New York and New York"
    assert align(sentence, ["New York"]) == [(0, 8)]
    assert align(sentence, ["New York"]) == [(0, 8)]  # a fresh call starts afresh


@pytest.mark.parametrize(
    "sentence, text, span",
    [
        ("He moved to New  York .", "new york", (12, 21)),  # case and a double space
        ("Patients with Parkinson ' s disease", "Parkinson's disease", (14, 35)),  # tokenised apostrophe
        ("born in the U . S . in 1950", "U.S.", (12, 19)),
        ("Richmond , Va is", "Richmond, Va", (0, 13)),
        ("the “Big Apple” nickname", '"big apple"', (4, 15)),  # curly quotes
        ("the Bank ’s chief", "Bank's", (4, 11)),
    ],
)
def test_fallback_normalisation(sentence, text, span):
    assert exact_occurrences(sentence, text) == []
    assert align(sentence, [text]) == [span]


def test_fallback_keeps_word_boundaries():
    # Whitespace between two word characters still separates words.
    assert align("in New York", ["NewYork"]) == [None]
    assert normalise("  New \t York ( NY ) ") == "new york(ny)"


def test_fallback_only_when_there_is_no_exact_occurrence():
    sentence = "apple and Apple"
    assert occurrences(sentence, "Apple") == [(10, 15)]
    assert occurrences(sentence, "APPLE") == [(0, 5), (10, 15)]
    assert fallback_occurrences(sentence, "APPLE") == [(0, 5), (10, 15)]


def test_hallucinations_and_empty_strings_are_none():
    assert align("Bob met Alice.", ["Carol", "", "   "]) == [None, None, None]
    assert not occurs("Bob met Alice.", "Carol")


def test_overlapping_occurrences_are_candidates():
    assert exact_occurrences("aaaa", "aa") == [(0, 2), (1, 3), (2, 4)]


def test_lower_casing_that_changes_length_maps_back_to_original_characters():
    # "İ".lower() is two characters; the span must still cover the original character.
    sentence = "in İstanbul today"
    assert align(sentence, ["i̇stanbul"]) == [(3, 11)]
    assert sentence[3:11] == "İstanbul"
