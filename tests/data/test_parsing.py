"""iuie.ie.parsing: hand-worked model outputs per view, tolerance cases, options holding separators.

The expected items are worked out by hand from the target formats of shared/FORMATS.md (the reference
implementation's strings) and the rules in the iuie.ie.parsing module docstring.
"""

from __future__ import annotations

import pytest

from iuie.ie.parsing import Parsed, parse
from iuie.ie.records import Labels

CONLL04 = ["kill", "live in", "located in", "organization based in", "work for"]


# ---------------------------------------------------------------------------------------------------------
# Well-formed outputs, one per view (exactly as the reference writes targets)
# ---------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "view, text, items",
    [
        ("NER", " person: Bob; location: Paris", (("person", "Bob"), ("location", "Paris"))),
        ("ET", " person: Bob; location: Paris", (("person", "Bob"), ("location", "Paris"))),
        ("ES", " Bob, Paris", (("Bob",), ("Paris",))),
        ("RE", " live in: Bob, Paris; work for: Bob, ACME", (("live in", "Bob", "Paris"), ("work for", "Bob", "ACME"))),
        ("EPR", " live in: Bob, Paris", (("live in", "Bob", "Paris"),)),
        ("EP", " Bob, Paris; Bob, ACME", (("Bob", "Paris"), ("Bob", "ACME"))),
        (
            "EE",
            " ( attack: fired, gun: instrument, Bob: attacker) , ( die: died, None) ",
            (("attack", "fired", (("instrument", "gun"), ("attacker", "Bob"))), ("die", "died", ())),
        ),
        ("EET", " attack: fired; die: died", (("attack", "fired"), ("die", "died"))),
        ("EEA", " gun: instrument; Bob: attacker", (("instrument", "gun"), ("attacker", "Bob"))),
    ],
)
def test_well_formed_output(view, text, items):
    parsed = parse(view, text)
    assert parsed == Parsed(view, text, items, 0)


@pytest.mark.parametrize("view", ["NER", "ES", "ET", "RE", "EP", "EPR", "EE", "EET", "EEA"])
@pytest.mark.parametrize("text", [" None", "None", "none ", "", "   ", None, b" None"])
def test_none_and_empty_give_no_items(view, text):
    parsed = parse(view, text)
    assert parsed.items == () and parsed.malformed == 0


def test_view_name_is_case_insensitive_and_unknown_views_raise():
    assert parse("ner", " person: Bob").view == "NER"
    with pytest.raises(ValueError, match="unknown task view"):
        parse("POS", " x")


# ---------------------------------------------------------------------------------------------------------
# Input types
# ---------------------------------------------------------------------------------------------------------


def test_bytes_are_decoded_and_kept_as_text():
    parsed = parse("NER", " person: Zoë".encode())
    assert parsed.text == " person: Zoë" and parsed.items == (("person", "Zoë"),)


def test_undecodable_bytes_do_not_raise():
    parsed = parse("NER", b"\xff\xfe person: x")
    assert parsed.items == (("\ufffd\ufffd person", "x"),)


def test_non_string_input_goes_through_str():
    assert parse("NER", 42).text == "42"


# ---------------------------------------------------------------------------------------------------------
# Spaces and truncation
# ---------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "person:Bob;location:Paris",
        "  person :  Bob ;  location :Paris  ",
        " person: Bob;; location: Paris;",
        " person: Bob; None; location: Paris",
    ],
)
def test_missing_and_extra_spaces_and_empty_pieces(text):
    parsed = parse("NER", text)
    assert parsed.items == (("person", "Bob"), ("location", "Paris")) and parsed.malformed == 0


def test_output_cut_mid_item_keeps_complete_items():
    parsed = parse("NER", " person: Bob; location: Paris; organi")
    assert parsed.items == (("person", "Bob"), ("location", "Paris")) and parsed.malformed == 1


def test_output_cut_after_the_type_separator():
    parsed = parse("RE", " live in: Bob, Paris; work for: Bob")
    assert parsed.items == (("live in", "Bob", "Paris"),) and parsed.malformed == 1
    parsed = parse("NER", " person: Bob; location:")
    assert parsed.items == (("person", "Bob"),) and parsed.malformed == 1


def test_event_cut_before_its_closing_parenthesis_is_dropped():
    text = " ( attack: fired, gun: instrument) , ( die: died, Bob: vic"
    parsed = parse("EE", text)
    assert parsed.items == (("attack", "fired", (("instrument", "gun"),)),) and parsed.malformed == 1


def test_event_cut_right_after_the_next_opening_parenthesis():
    parsed = parse("EE", " ( attack: fired, None) , ( ")
    assert parsed.items == (("attack", "fired", ()),) and parsed.malformed == 0


def test_events_tolerate_spacing_and_a_missing_first_parenthesis():
    parsed = parse("EE", "attack:fired,gun:instrument),(die:died,None)")
    assert parsed.items == (("attack", "fired", (("instrument", "gun"),)), ("die", "died", ()))


def test_event_without_none_marker_and_events_joined_without_comma():
    parsed = parse("EE", " ( attack: fired) ( die: died, None) ")
    assert parsed.items == (("attack", "fired", ()), ("die", "died", ()))


def test_event_leftover_text_after_last_argument_is_malformed():
    parsed = parse("EE", " ( attack: fired, gun: instrument, junk) ")
    assert parsed.items == (("attack", "fired", (("instrument", "gun"),)),) and parsed.malformed == 1
    # A stray "None" there is harmless.
    parsed = parse("EE", " ( attack: fired, gun: instrument, None) ")
    assert parsed.items == (("attack", "fired", (("instrument", "gun"),)),) and parsed.malformed == 0


def test_event_missing_type_separator_is_malformed():
    parsed = parse("EE", " ( attack fired) , ( die: died, None) ")
    assert parsed.items == (("die", "died", ()),) and parsed.malformed == 1


# ---------------------------------------------------------------------------------------------------------
# Mentions holding separators
# ---------------------------------------------------------------------------------------------------------


def test_mentions_holding_colons():
    # Types come first, so the first ':' ends the type (rule 4); roles come last (rule 5).
    assert parse("NER", " misc: Cosmos : A Personal Voyage").items == (("misc", "Cosmos : A Personal Voyage"),)
    assert parse("EEA", " August 3, 09:15 AM UTC: time").items == (("time", "August 3, 09:15 AM UTC"),)


def test_tokenised_commas_inside_relation_mentions():
    # Targets write "head, tail"; tokenised corpora write " , " inside mentions (rule 6).
    parsed = parse("RE", " located in: Willowdell , Darke County, Ohio")
    assert parsed.items == (("located in", "Willowdell , Darke County", "Ohio"),)
    parsed = parse("EP", " Willowdell , Darke County, Ohio")
    assert parsed.items == (("Willowdell , Darke County", "Ohio"),)


def test_raw_comma_inside_a_mention_is_resolved_by_the_sentence():
    text = " organization based in: ACME, Washington, D.C."
    assert parse("RE", text).items == (("organization based in", "ACME", "Washington, D.C."),)
    text = " organization based in: Washington, D.C., USA"
    # Ambiguous without the sentence: the leftmost canonical comma wins ...
    assert parse("RE", text).items == (("organization based in", "Washington", "D.C., USA"),)
    # ... and the sentence decides when one reading fits it and the other does not.
    sentence = "Washington, D.C. sits in the USA."
    assert parse("RE", text, sentence=sentence).items == (("organization based in", "Washington, D.C.", "USA"),)


def test_entity_spans_with_commas_inside_mentions():
    sentence = "Bob moved from Richmond , Va to Washington, D.C. last year"
    text = " Bob, Richmond , Va, Washington, D.C."
    assert parse("ES", text).items == (("Bob",), ("Richmond , Va",), ("Washington",), ("D.C.",))
    # With the sentence, "Washington" and "D.C." both occur, so the canonical reading still wins (rule 7).
    assert parse("ES", text, sentence=sentence).items == (("Bob",), ("Richmond , Va",), ("Washington",), ("D.C.",))
    # A mention ending in a comma (annotation noise in WNUT-17) is kept when the sentence has it.
    sentence = "Hello R'lyeh, and Bob"
    assert parse("ES", " R'lyeh,, Bob", sentence=sentence).items == (("R'lyeh,",), ("Bob",))
    assert parse("ES", " Bob, R'lyeh,", sentence=sentence).items == (("Bob",), ("R'lyeh,",))


def test_semicolon_inside_a_mention_needs_the_sentence():
    sentence = "He signed with Simon &amp; Schuster in May ."
    text = " organization: Simon &amp; Schuster; date: May"
    assert parse("NER", text, sentence=sentence).items == (("organization", "Simon &amp; Schuster"), ("date", "May"))
    parsed = parse("NER", text)
    assert parsed.items == (("organization", "Simon &amp"), ("date", "May")) and parsed.malformed == 1
    # A truncated piece after it is not glued on when the glued mention is not in the sentence.
    parsed = parse("NER", " organization: Simon &amp; Schuster; dat", sentence=sentence)
    assert parsed.items == (("organization", "Simon &amp; Schuster"),) and parsed.malformed == 1


def test_event_arguments_with_parentheses_commas_and_colons():
    text = (
        " ( attack: hit, SFMTA (The San Francisco Municipal Transportation Authority): victim,"
        " October, 2016: time, $17,000: price) "
    )
    parsed = parse("EE", text)
    assert parsed.items == (
        (
            "attack",
            "hit",
            (
                ("victim", "SFMTA (The San Francisco Municipal Transportation Authority)"),
                ("time", "October, 2016"),
                ("price", "$17,000"),
            ),
        ),
    )


def test_event_trigger_and_first_argument_split_by_the_sentence():
    sentence = "Hackers stole data in October, 2016 from Yahoo."
    text = " ( databreach: stole, October, 2016: time) "
    assert parse("EE", text, sentence=sentence).items == (("databreach", "stole", (("time", "October, 2016"),)),)


def test_single_quote_substitute_is_read_back_in_events():
    assert parse("EET", " attack: Bob#$%#s strike").items == (("attack", "Bob's strike"),)
    assert parse("EE", " ( kid#$%#s attack: fired, None) ").items == (("kid's attack", "fired", ()),)


# ---------------------------------------------------------------------------------------------------------
# Options (labels)
# ---------------------------------------------------------------------------------------------------------


def test_options_are_matched_longest_first_and_canonicalised():
    labels = ["organization", "organization based in"]
    parsed = parse("RE", " Organization  based in: ACME, Boston", labels)
    assert parsed.items == (("organization based in", "ACME", "Boston"),)


def test_options_holding_colons():
    labels = ["per:title", "org:founded_by"]
    assert parse("RE", " per:title: Bob, engineer", labels).items == (("per:title", "Bob", "engineer"),)
    # Without the options the first ':' ends the relation.
    assert parse("RE", " per:title: Bob, engineer").items == (("per", "title: Bob", "engineer"),)


def test_options_holding_semicolons_and_commas():
    labels = ["cause; effect", "part, whole"]
    parsed = parse("RE", " cause; effect: rain, flood; part, whole: wheel, car", labels)
    assert parsed.items == (("cause; effect", "rain", "flood"), ("part, whole", "wheel", "car"))
    parsed = parse("EEA", " Bob: attacker; gun: tool; used", {"attack": ["attacker", "tool; used"]})
    assert parsed.items == (("attacker", "Bob"), ("tool; used", "gun"))


def test_unknown_type_with_options_falls_back_to_the_first_colon():
    parsed = parse("NER", " alien: Zork; person: Bob", ["person", "location"])
    assert parsed.items == (("alien", "Zork"), ("person", "Bob"))


def test_roles_from_options_in_events():
    labels = [["attack"], ["place", "instrument"]]
    text = " ( attack: fired, Cosmos: Place, gun: instrument) "
    assert parse("EE", text, labels).items == (("attack", "fired", (("place", "Cosmos"), ("instrument", "gun"))),)


def test_all_label_shapes_are_accepted():
    ee = Labels.from_json([["attack"], ["attacker"]], "EE")
    eea = Labels.from_json({"attack": ["attacker"]}, "EEA")
    text = " ( attack: fired, Bob: attacker) "
    expected = (("attack", "fired", (("attacker", "Bob"),)),)
    for labels in (ee, [["attack"], ["attacker"]], {"attack": ["attacker"]}, ["attack"]):
        assert parse("EE", text, labels).items == expected
    for labels in (eea, ["attacker"], {"attack": ["attacker"]}):
        assert parse("EEA", " Bob: attacker", labels).items == (("attacker", "Bob"),)


@pytest.mark.parametrize("labels", [42, "person", [1, None], {"a": 3}, object(), [[1], "x"]])
def test_odd_label_objects_do_not_raise(labels):
    assert parse("NER", " person: Bob", labels).items == (("person", "Bob"),)
