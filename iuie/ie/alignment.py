"""Predicted strings to character offsets in the sentence (the strict metric's only link to the text).

A model writes mentions as text; strict scoring needs spans. :func:`align` finds, for each predicted string,
the ``(start, end)`` (end exclusive) where it occurs in the sentence, in two steps:

1. **Exact.** The string, with surrounding whitespace stripped, is searched verbatim. Every occurrence is a
   candidate (overlapping ones included). Within one call, strings take the first occurrence not already
   given to an earlier string, so two predictions of the same string take successive occurrences. A string
   predicted more often than it occurs gets its first occurrence again: it is a duplicate, not a
   hallucination.
2. **Fallback**, only when the exact step finds no occurrence at all. Both the sentence and the string are
   normalised and the normalised string is searched in the normalised sentence; a match is mapped back to
   the original characters it covers. The normalisation (:func:`normalise`) does exactly this:

   * every character is lower-cased (``str.lower``, character by character);
   * the quotes ``’ ‘ ´ ` `` become ``'`` and ``“ ” „`` become ``"``;
   * each run of whitespace becomes one space, and is removed entirely at the ends of the text and wherever
     it touches punctuation (any character that is neither alphanumeric nor whitespace).

   So ``"new york"`` finds ``"New  York"``, ``"Parkinson's"`` finds ``"Parkinson ' s"`` (tokenised corpora)
   and ``"U.S."`` finds ``"U . S ."``, while ``"newyork"`` does not find ``"new york"``: whitespace between two
   letters or digits still separates words.

A string found by neither step (or empty) aligns to ``None``: a hallucination, which the strict metric counts
as a false positive.

This is a leaf module: it imports nothing from iuie.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Sequence

Span = tuple[int, int]

_QUOTES = {"’": "'", "‘": "'", "´": "'", "`": "'", "“": '"', "”": '"', "„": '"'}


def _is_punct(ch: str) -> bool:
    return not ch.isalnum() and not ch.isspace()


@functools.lru_cache(maxsize=4096)
def _normalise_with_map(text: str) -> tuple[str, tuple[int, ...]]:
    """The fallback form of ``text`` and, for each of its characters, the index it came from in ``text``.

    Cached: the metric aligns many mentions against the same sentence.
    """
    chars: list[str] = []
    index: list[int] = []
    pending_space = -1  # index of the first whitespace character of a run not yet emitted, or -1
    for i, ch in enumerate(text):
        if ch.isspace():
            if pending_space < 0:
                pending_space = i
            continue
        if pending_space >= 0:
            # Keep one space only between two word characters (not at the start, not next to punctuation).
            if chars and not _is_punct(ch) and not _is_punct(chars[-1]):
                chars.append(" ")
                index.append(pending_space)
            pending_space = -1
        ch = _QUOTES.get(ch, ch)
        for low in ch.lower():
            chars.append(low)
            index.append(i)
    return "".join(chars), tuple(index)


def normalise(text: str) -> str:
    """The case-, quote- and whitespace-insensitive form the fallback compares (see the module docstring)."""
    return _normalise_with_map(text)[0]


def _find_all(haystack: str, needle: str) -> list[int]:
    starts = []
    i = haystack.find(needle)
    while i != -1:
        starts.append(i)
        i = haystack.find(needle, i + 1)
    return starts


def exact_occurrences(sentence: str, text: str) -> list[Span]:
    """Every verbatim occurrence of ``text`` (stripped) in ``sentence``, overlapping ones included."""
    text = text.strip()
    if not text:
        return []
    return [(s, s + len(text)) for s in _find_all(sentence, text)]


def fallback_occurrences(sentence: str, text: str) -> list[Span]:
    """Occurrences under :func:`normalise`, as spans of the original sentence."""
    norm_text = normalise(text)
    if not norm_text:
        return []
    norm_sentence, index = _normalise_with_map(sentence)
    spans = []
    for s in _find_all(norm_sentence, norm_text):
        span = (index[s], index[s + len(norm_text) - 1] + 1)
        if not spans or spans[-1] != span:  # one original character can lower-case to several
            spans.append(span)
    return spans


def occurrences(sentence: str, text: str) -> list[Span]:
    """The candidate spans of ``text``: its exact occurrences, or the fallback ones when there are none.

    In sentence order. Empty when ``text`` is nowhere in the sentence (a hallucination).
    """
    return exact_occurrences(sentence, text) or fallback_occurrences(sentence, text)


def occurs(sentence: str, text: str) -> bool:
    """Whether ``text`` aligns somewhere in ``sentence`` (exactly or by the fallback)."""
    return bool(occurrences(sentence, text))


def align(sentence: str, texts: Iterable[str]) -> list[Span | None]:
    """Offsets ``(start, end)`` of each string in ``sentence``, or ``None`` where it occurs nowhere.

    Strings are taken in order; each gets the first of its candidate spans (:func:`occurrences`) that no
    earlier string of this call received, or its first span when all are taken.
    """
    used: set[Span] = set()
    out: list[Span | None] = []
    for text in texts:
        candidates: Sequence[Span] = occurrences(sentence, text) if isinstance(text, str) else []
        if not candidates:
            out.append(None)
            continue
        span = next((c for c in candidates if c not in used), candidates[0])
        used.add(span)
        out.append(span)
    return out
