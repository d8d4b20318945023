"""Property tests of iuie.ie.parsing (hypothesis), checked against the target formats of shared/FORMATS.md.

Three kinds of generated strings, for each of the nine views:

* random text, biased towards the separators ``; , : ( )`` and ``None``, with or without options and a
  sentence: ``parse`` never raises (nor warns) and its items are well typed;
* well-formed outputs, built here from random structures with the reference's target rules (mentions may
  hold tokenised ``" , "`` and ``" : "``, options may hold spaces): ``parse`` gives the structure back;
* near-valid outputs, well-formed ones cut short or with a character dropped, doubled or spaced: never
  raises, well typed.

In all, 9 views x (RANDOM + ROUND_TRIP + NEAR_VALID) = 9 x 1,200 = 10,800 generated strings per run;
``test_budget`` checks the arithmetic, and each of the 27 property tests counts the strings it parsed
itself and fails below its share, so the count holds however pytest distributes the tests (serially, or
across pytest-xdist workers, where a module-wide counter checked by a last test saw only its own worker's
share and skipped). Runs are derandomised so that CI is reproducible.
"""

from __future__ import annotations

import collections
import warnings

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from iuie.ie.parsing import Parsed, parse

VIEWS = ("NER", "ES", "ET", "RE", "EP", "EPR", "EE", "EET", "EEA")
RANDOM, ROUND_TRIP, NEAR_VALID = 500, 450, 250


def _settings(n: int):
    return settings(
        max_examples=n,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
    )


# Generated strings parsed, per (property, view).
GENERATED: collections.Counter = collections.Counter()


def test_budget():
    assert len(VIEWS) * (RANDOM + ROUND_TRIP + NEAR_VALID) >= 10_000


# ---------------------------------------------------------------------------------------------------------
# Well-typedness
# ---------------------------------------------------------------------------------------------------------


def _is_text(x) -> bool:
    return isinstance(x, str) and x == x.strip() and x != ""


def check_well_typed(view: str, parsed: Parsed) -> None:
    assert isinstance(parsed, Parsed) and parsed.view == view and isinstance(parsed.text, str)
    assert isinstance(parsed.malformed, int) and parsed.malformed >= 0
    assert isinstance(parsed.items, tuple)
    arity = {"NER": 2, "ET": 2, "EET": 2, "EEA": 2, "EP": 2, "ES": 1, "RE": 3, "EPR": 3}
    for item in parsed.items:
        assert isinstance(item, tuple)
        if view == "EE":
            event_type, trigger, arguments = item
            assert _is_text(event_type) and _is_text(trigger) and isinstance(arguments, tuple)
            for argument in arguments:
                assert isinstance(argument, tuple) and len(argument) == 2 and all(map(_is_text, argument))
        else:
            assert len(item) == arity[view] and all(map(_is_text, item)), item


def parse_quietly(view, text, labels=None, sentence=None) -> Parsed:
    # The parser's last-resort guard warns instead of raising: a warning here is a bug.
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        return parse(view, text, labels, sentence=sentence)


# ---------------------------------------------------------------------------------------------------------
# Random text
# ---------------------------------------------------------------------------------------------------------

# One string draw each (cheap): a separator-heavy alphabet, and any text at all.
random_text = st.one_of(st.text(alphabet="ab ;,:()#$%Noe\n", max_size=40), st.text(max_size=30))
random_labels = st.one_of(
    st.none(),
    st.lists(st.text(alphabet="ab :;,()x", min_size=1, max_size=8), max_size=4),
    st.tuples(
        st.lists(st.text(alphabet="ab :;x", max_size=5), max_size=3),
        st.lists(st.text(alphabet="ab :;x", max_size=5), max_size=3),
    ).map(list),
)
random_input = st.one_of(random_text, random_text.map(lambda s: s.encode("utf-8")), st.binary(max_size=30), st.none())


def run_counted(kind: str, view: str, n: int, prop) -> None:
    """Runs the hypothesis property ``prop`` for ``view`` and checks it parsed at least ``n`` strings."""
    before = GENERATED[kind, view]
    prop(view=view)
    parsed = GENERATED[kind, view] - before
    assert parsed >= n, f"{kind} {view}: {parsed} strings parsed, {n} wanted"


@_settings(RANDOM)
@given(text=random_input, labels=random_labels, sentence=st.one_of(st.none(), random_text))
def random_text_property(view, text, labels, sentence):
    GENERATED["random", view] += 1
    check_well_typed(view, parse_quietly(view, text, labels, sentence))


@pytest.mark.parametrize("view", VIEWS)
def test_random_text_never_raises(view):
    run_counted("random", view, RANDOM, random_text_property)


# ---------------------------------------------------------------------------------------------------------
# Well-formed outputs
# ---------------------------------------------------------------------------------------------------------


def _tokenised(raw: str) -> str:
    """Words with tokenised separators inside (" , ", " : "), as the corpora write mentions."""
    text = " ".join(raw.replace(",", " , ").replace(":", " : ").split()).strip(" ,:")
    return text if text and text.lower() != "none" else "x"


def _parenthesised(raw: str) -> str:
    """Words, some parenthesised ("SFMTA (The ...)"), with " , " inside; no ":" (without options an event
    argument holding " : " could read as a role)."""
    words = raw.replace(",", " , ").split()
    words = [f"({w})" if w.startswith("_") else w for w in words]
    text = " ".join(words).strip(" ,")
    return text if text and text.lower() != "none" else "x"


# Strategies are built once, each mention a single string draw (hypothesis validates each new strategy
# object and draws per element, which is slow).
_MENTION = st.text(alphabet="abcXYZ019-.'&,: ", min_size=1, max_size=16).map(_tokenised)
_EE_MENTION = st.text(alphabet="abcXYZ019-.'&_, ", min_size=1, max_size=16).map(_parenthesised)

TYPES = ["person", "location", "organization based in", "work for", "attack", "die", "patch vulnerability"]
ROLES = ["attacker", "victim", "place", "number of victim", "vulnerable system version"]
_type = st.sampled_from(TYPES)
_role = st.sampled_from(ROLES)
_COUNT = st.integers(0, 4)
_ARG_COUNT = st.integers(0, 3)


def _answer(items: list[str], sep: str) -> str:
    return " " + sep.join(items) if items else " None"


@st.composite
def well_formed(draw, view: str):
    """(target text, expected items), by the target rules of shared/FORMATS.md."""
    n = draw(_COUNT)
    if view in ("NER", "ET", "EET"):
        items = [(draw(_type), draw(_MENTION)) for _ in range(n)]
        return _answer([f"{t}: {m}" for t, m in items], "; "), items
    if view == "ES":
        items = [(draw(_MENTION),) for _ in range(n)]
        return _answer([m for (m,) in items], ", "), items
    if view in ("RE", "EPR"):
        items = [(draw(_type), draw(_MENTION), draw(_MENTION)) for _ in range(n)]
        return _answer([f"{r}: {h}, {t}" for r, h, t in items], "; "), items
    if view == "EP":
        items = [(draw(_MENTION), draw(_MENTION)) for _ in range(n)]
        return _answer([f"{h}, {t}" for h, t in items], "; "), items
    if view == "EEA":
        items = [(draw(_role), draw(_MENTION)) for _ in range(n)]
        return (";".join(f" {a}: {r}" for r, a in items) if items else " None"), items
    items = []
    for _ in range(n):
        arguments = tuple((draw(_role), draw(_EE_MENTION)) for _ in range(draw(_ARG_COUNT)))
        items.append((draw(_type), draw(_EE_MENTION), arguments))
    text = ",".join(
        " ( {}: {}, {}) ".format(t, trig, ",".join(f" {a}: {r}" for r, a in args) or "None") for t, trig, args in items
    )
    return (text or " None"), items


@_settings(ROUND_TRIP)
@given(data=st.data(), with_labels=st.booleans())
def round_trip_property(view, data, with_labels):
    text, items = data.draw(well_formed(view))
    GENERATED["round trip", view] += 1
    labels = None
    if with_labels:
        labels = [TYPES, ROLES] if view == "EE" else (ROLES if view == "EEA" else TYPES)
    parsed = parse_quietly(view, text, labels)
    assert parsed.items == tuple(items), text
    assert parsed.malformed == 0
    # The sentence the mentions come from only confirms the reading.
    mentions = [m for item in items for m in _mentions(view, item)]
    sentence = " and ".join(mentions) + " ."
    assert parse_quietly(view, text, labels, sentence).items == tuple(items), text


@pytest.mark.parametrize("view", VIEWS)
def test_well_formed_output_round_trips(view):
    run_counted("round trip", view, ROUND_TRIP, round_trip_property)


def _mentions(view, item):
    if view == "EE":
        return [item[1]] + [a for _, a in item[2]]
    if view in ("NER", "ET", "EET", "EEA"):
        return [item[1]]
    if view in ("RE", "EPR"):
        return list(item[1:])
    return list(item)


# ---------------------------------------------------------------------------------------------------------
# Near-valid outputs
# ---------------------------------------------------------------------------------------------------------


@st.composite
def near_valid(draw, view: str):
    text, _ = draw(well_formed(view))
    edit = draw(st.sampled_from(["cut", "drop", "double", "space", "unspace"]))
    i = draw(st.integers(0, max(0, len(text) - 1)))
    if edit == "cut":
        return text[:i]
    if edit == "drop":
        return text[:i] + text[i + 1 :]
    if edit == "double":
        return text[:i] + text[i : i + 1] * 2 + text[i + 1 :]
    if edit == "space":
        return text[:i] + " " + text[i:]
    return text.replace(" ", "")


@_settings(NEAR_VALID)
@given(data=st.data(), with_labels=st.booleans(), with_sentence=st.booleans())
def near_valid_property(view, data, with_labels, with_sentence):
    text = data.draw(near_valid(view))
    GENERATED["near valid", view] += 1
    labels = ([TYPES, ROLES] if view == "EE" else TYPES) if with_labels else None
    sentence = "person location attack and the rest ." if with_sentence else None
    check_well_typed(view, parse_quietly(view, text, labels, sentence))


@pytest.mark.parametrize("view", VIEWS)
def test_near_valid_output_never_raises(view):
    run_counted("near valid", view, NEAR_VALID, near_valid_property)


def test_cut_output_keeps_every_complete_item():
    # A deterministic companion of the near-valid property: cutting a well-formed NER output anywhere
    # inside its last item keeps all the items before it.
    items = [("person", "Bob"), ("location", "Paris"), ("organization based in", "ACME")]
    text = " " + "; ".join(f"{t}: {m}" for t, m in items)
    last = text.rindex(";")
    for cut in range(last + 1, len(text)):
        parsed = parse("NER", text[:cut], TYPES)
        assert parsed.items[:2] == tuple(items[:2])


def test_strings_generated():
    # Each property test above asserts its own count (run_counted), which holds under any distribution of
    # the tests. Here, in this process: every property that ran reached its count, and when the whole
    # module ran here, the module's total.
    want = {"random": RANDOM, "round trip": ROUND_TRIP, "near valid": NEAR_VALID}
    for (kind, view), count in GENERATED.items():
        assert count >= want[kind], (kind, view, count)
    if len(GENERATED) == 3 * len(VIEWS):
        assert sum(GENERATED.values()) >= 10_000, GENERATED
