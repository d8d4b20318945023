"""Overlapping windows: a name across a window boundary is found, and what two windows find is reported once.

The model is replaced by a stand-in that answers exactly what a window shows (a name wholly in the window, or
the part of it the window's edge leaves), so the references are hand-worked: the offsets of the names in the
document (``text.index``) and the windows' own token counts (the vocabulary's encoding of their text)."""

from __future__ import annotations

import re

import pytest

from iuie.extraction import merging
from iuie.ie.records import Argument, Entity, Event, Relation
from tests.extract.conftest import random_extractor

NAME = "Anna Berg"
FILLER = [f"w{i}" for i in range(160)]


def stand_in_run(windows, grammars):
    """What a model that knows the name would answer per window: the whole name where the window holds it,
    else the piece of it cut by the window's start or end (as a window that ends at "Anna" reads it)."""
    first, last = NAME.split()
    outputs = []
    for window in windows:
        text = window.text
        found = [NAME] * text.count(NAME)
        if text.endswith(f" {first}") and not text.endswith(NAME):
            found.append(first)
        if text.startswith(f"{last} "):
            found.append(last)
        found += ["Oslo"] * len(re.findall(r"\bOslo\b", text))
        answer = "; ".join(f"{'location' if f == 'Oslo' else 'person'}: {f}" for f in found)
        outputs.append((" " + answer if answer else " None", False))
    return outputs


@pytest.fixture(scope="module")
def extractor():
    built = random_extractor(max_input_tokens=8, batch_size=4)
    overhead = len(built._encode("NER", _labels(["person", "location"]), built.instructions.choose("NER"), ""))
    built.max_input_tokens = overhead + 40  # 40 tokens of text per window: a 160-word sentence takes several
    built._run = stand_in_run  # the windows and the merging are under test, not the network
    return built


def _labels(names):
    from iuie.extraction.extractor import _labels_for

    return _labels_for("ner", names)[0]


def _extract(extractor, text, overlap):
    extractor.window_overlap = overlap
    try:
        [result] = extractor.extract([text], task="ner", labels=["person", "location"])
    finally:
        extractor.window_overlap = None
    return result


def _text_with_name_across_a_boundary(extractor) -> str:
    """The filler sentence (no sentence end: it is cut at white space) with the name placed so that, without
    overlap, one window ends at "Anna" and the next starts at "Berg"."""
    for k in range(1, len(FILLER) - 1):
        text = " ".join([*FILLER[:k], NAME, *FILLER[k + 1 :]])
        where = text.index(NAME)
        windows = _extract(extractor, text, 0).windows
        if any(end == where + 4 for _, end in windows) and any(start == where + 5 for start, _ in windows):
            return text
    raise AssertionError("no placement puts a window boundary inside the name")


@pytest.mark.filterwarnings("ignore::iuie.extraction.extractor.WindowWarning")
def test_name_across_a_window_boundary_is_found_only_with_overlap(extractor):
    text = _text_with_name_across_a_boundary(extractor)
    where = text.index(NAME)
    whole = Entity(NAME, "person", where, where + len(NAME))

    without = _extract(extractor, text, 0)
    assert whole not in without.entities
    # What the two windows saw: the halves, at their own offsets (nothing is merged: they differ).
    assert set(without.entities) == {
        Entity("Anna", "person", where, where + 4),
        Entity("Berg", "person", where + 5, where + 9),
    }

    overlapping = _extract(extractor, text, None)
    assert extractor.last_stats["overlap_tokens"] == 40 // 4
    assert overlapping.entities == (whole,)
    assert text[whole.start : whole.end] == NAME
    assert any(start <= whole.start and whole.end <= end for start, end in overlapping.windows)
    # Any half a window edge still cuts off is a fragment of the whole name: merged away, and counted.
    halves = sum(t.endswith(" Anna") or t.startswith("Berg ") for t in (text[s:e] for s, e in overlapping.windows))
    assert overlapping.merged >= halves


@pytest.mark.filterwarnings("ignore::iuie.extraction.extractor.WindowWarning")
def test_overlapping_windows_fit_share_at_most_the_overlap_and_cover_the_text(extractor):
    text = " ".join(FILLER)
    result = _extract(extractor, text, 12)
    windows = result.windows
    assert len(windows) > 3
    view, labels, instruction = "NER", _labels(["person", "location"]), extractor.instructions.choose("NER")
    for (s1, e1), (s2, e2) in zip(windows, windows[1:]):
        assert s1 < s2 < e1 < e2  # each window starts inside the previous one and reaches further
        assert 0 < len(extractor.vocabulary.encode(text[s2:e1])) <= 12
    for start, end in windows:
        assert len(extractor._encode(view, labels, instruction, text[start:end])) <= extractor.max_input_tokens
    covered = set()
    for start, end in windows:
        covered.update(range(start, end))
    assert covered == set(range(len(text)))


def test_a_mention_in_the_overlap_is_reported_once(extractor):
    sentences = [f"Day {i} in Oslo was fine ." if i % 3 == 0 else f"Day {i} was quiet ." for i in range(30)]
    text = " ".join(sentences)
    truth = [Entity("Oslo", "location", m.start(), m.end()) for m in re.finditer("Oslo", text)]
    result = _extract(extractor, text, None)
    # Windows start at a sentence start within the overlap, so some "Oslo" is read by two windows.
    assert result.merged > 0
    assert sorted(result.entities, key=lambda e: e.start) == truth
    found = sum(w_text.count("Oslo") for w_text in (text[s:e] for s, e in result.windows))
    assert found == len(truth) + result.merged

    plain = _extract(extractor, text, 0)
    assert plain.merged == 0 and sorted(plain.entities, key=lambda e: e.start) == truth
    assert all(a[1] <= b[0] for a, b in zip(plain.windows, plain.windows[1:]))


def test_overlap_must_leave_room_and_be_non_negative(extractor):
    with pytest.raises(ValueError, match="leaves no room"):
        _extract(extractor, "Anna Berg lives in Oslo .", 40)
    with pytest.raises(ValueError, match="window_overlap must be >= 0"):
        random_extractor(window_overlap=-1)


def test_merging_relations_and_events_by_offsets():
    """Hand-worked: the same relation (same offsets) from two windows once; same type and names at other
    offsets kept; an event's second sighting adds its new argument; unaligned results are never merged."""
    anna, oslo, oslo2 = Entity("Anna", "", 0, 4), Entity("Oslo", "", 14, 18), Entity("Oslo", "", 40, 44)
    lost = Entity("Bergen", "", None, None)
    relations = [
        Relation(anna, "live in", oslo),
        Relation(anna, "live in", oslo),
        Relation(anna, "live in", oslo2),
        Relation(anna, "live in", lost),
        Relation(anna, "live in", lost),
    ]
    merged, count = merging.merge_relations(relations)
    assert merged == [relations[0], relations[2], relations[3], relations[4]] and count == 1

    place = Argument("Oslo", "place", 14, 18)
    who = Argument("Anna", "participant", 0, 4)
    events = [
        Event("met", "meeting", 5, 8, (place,)),
        Event("met", "meeting", 5, 8, (place, who)),
        Event("met", "meeting", None, None, ()),
    ]
    merged, count = merging.merge_events(events)
    assert merged == [Event("met", "meeting", 5, 8, (place, who)), events[2]] and count == 1


def test_entity_fragment_is_dropped_only_at_an_interior_window_edge():
    """Windows (0, 20) and (15, 40) of a 40-character text. "Anna" ending at 20 (window 0's interior end),
    inside "Anna Berg" of window 1: a fragment. The same span in window 1 (not at its edge) is kept; so is a
    fragment-shaped span at the document's own end."""
    windows = [(0, 20), (15, 40)]
    whole = Entity("Anna Berg", "person", 16, 25)
    cut = Entity("Anna", "person", 16, 20)
    merged, count = merging.merge_entities([(0, cut), (1, whole)], windows, 40)
    assert merged == [whole] and count == 1
    merged, count = merging.merge_entities([(1, cut), (1, whole)], windows, 40)
    assert merged == [cut, whole] and count == 0
    other_type = Entity("Anna", "location", 16, 20)
    merged, count = merging.merge_entities([(0, other_type), (1, whole)], windows, 40)
    assert merged == [other_type, whole] and count == 0
    end = Entity("Berg", "person", 36, 40)
    merged, count = merging.merge_entities([(1, end), (0, Entity("Anna Berg", "person", 31, 40))], windows, 40)
    assert count == 0
