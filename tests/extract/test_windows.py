"""Windows over texts longer than the input budget keep correct character offsets.

Reference: the document itself: every aligned mention must satisfy ``text[start:end] == mention`` and lie
inside the window it was read in; every window's formatted input must fit the budget."""

from __future__ import annotations

import warnings

import pytest

from iuie.extraction.extractor import InputTooLongError, WindowWarning, split_sentences
from tests.extract.conftest import random_extractor

BUDGET = 110
LONG = " ".join(f"Sentence {i} says that Anna Berg met Felix Dahl in Oslo on day {i}." for i in range(12)) + (
    "\nA second paragraph about Atlas Motors!  And a final question?"
)


@pytest.fixture(scope="module")
def extractor():
    # Constrained decoding makes every mention a substring of its window, so all of them must align.
    return random_extractor(max_input_tokens=BUDGET, max_decode_length=16, batch_size=4, constrained=True)


def test_split_sentences_trims_and_keeps_order():
    text = "  One. Two!  Three?\nFour\n\nFive.Six "
    spans = split_sentences(text)
    assert [text[s:e] for s, e in spans] == ["One.", "Two!", "Three?", "Four", "Five.Six"]


@pytest.mark.filterwarnings("ignore::iuie.extraction.extractor.WindowWarning")
@pytest.mark.parametrize(
    "task,labels",
    [("ner", ["person", "location"]), ("re", ["met", "live in"]), ("ee", [["meeting"], ["participant", "place"]])],
)
def test_long_text_windows_keep_offsets(extractor, task, labels):
    view = extractor_view(task)
    instruction = extractor.instructions.choose(view)
    overhead = len(extractor._encode(view, _labels(task, labels), instruction, ""))
    # Room for about two sentences per window: the text is several budgets long, no sentence needs cutting.
    extractor.max_input_tokens = budget = overhead + 60
    [result] = extractor.extract([LONG], task=task, labels=labels)
    assert extractor.last_stats["cut_sentences"] == 0
    assert len(result.windows) > 4
    for start, end in result.windows:
        assert len(extractor._encode(view, _labels(task, labels), instruction, LONG[start:end])) <= budget
    assert [w[0] for w in result.windows] == sorted(w[0] for w in result.windows)
    spans = (
        [(e.name, e) for e in result.entities]
        + [(s.name, s) for r in result.relations for s in (r.head, r.tail)]
        + [(s, e) for e in result.events for s in [e.trigger]]
        + [(a.name, a) for e in result.events for a in e.arguments]
    )
    assert result.unaligned == 0
    for text, span in spans:
        assert span.aligned
        assert LONG[span.start : span.end] == text
        assert any(ws <= span.start and span.end <= we for ws, we in result.windows)


def extractor_view(task):
    return {"ner": "NER", "re": "RE", "ee": "EE"}[task]


def _labels(task, labels):
    from iuie.extraction.extractor import _labels_for

    return _labels_for(task, labels)[0]


@pytest.mark.filterwarnings("ignore::iuie.extraction.extractor.WindowWarning")
def test_sentence_over_budget_is_cut_with_a_warning_or_refused_in_strict_mode(extractor):
    extractor.max_input_tokens = BUDGET
    extractor.window_overlap = 0  # here: the pieces themselves (overlapping windows: test_overlap.py)
    sentence = " ".join(f"word{i}" for i in range(200)) + "."
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        [result] = extractor.extract([sentence], task="ner", labels=["thing"])
    extractor.window_overlap = None
    assert extractor.last_stats["cut_sentences"] == 1
    assert any(issubclass(w.category, WindowWarning) and "1 sentence(s)" in str(w.message) for w in caught)
    # The pieces cover every word, in order, without overlap.
    assert len(result.windows) > 1
    assert all(a[1] <= b[0] for a, b in zip(result.windows, result.windows[1:]))
    covered = " ".join(sentence[s:e] for s, e in result.windows)
    assert covered == sentence
    for span in result.entities:
        assert sentence[span.start : span.end] == span.name

    strict = random_extractor(max_input_tokens=BUDGET, max_decode_length=4, batch_size=4, strict=True)
    with pytest.raises(InputTooLongError, match="does not fit"):
        strict.extract([sentence], task="ner", labels=["thing"])


def test_bad_task_and_empty_labels_raise(extractor):
    with pytest.raises(ValueError, match="unknown task"):
        extractor.extract(["x"], task="srl", labels=["a"])
    with pytest.raises(ValueError, match="empty"):
        extractor.extract(["x"], task="ner", labels=[])


def test_empty_and_blank_texts_give_one_empty_window(extractor):
    results = extractor.extract(["", "   "], task="ner", labels=["person"])
    assert [len(r.windows) for r in results] == [1, 1]
    assert all(not r.entities for r in results)
