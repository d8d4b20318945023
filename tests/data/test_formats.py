"""iuie.ie.formats: the nine task views, character for character.

Checked against: ``shared/FORMATS.md``, the written-out rules of the InstructUIE reference
(``src/uie_dataset.py`` ``load_*_dataset`` + ``src/uie_collator.py`` ``get_instruction`` at 339ade6). Every
expected string below was worked out by hand from those rules and is written literally; none is produced by
code under test. The reference's own collator step, ``template.format(sentence)``, is used as an oracle where
it is well defined (no brace outside the ``{0}`` slot), over every record of the shared real data. The
deliberate differences (braces, single quotes, RE without relations, EEA with several events) are checked
on their own.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from iuie.ie.formats import NONE_ANSWER, SINGLE_QUOTE_SUBSTITUTE, SOURCE_TASK, FormattedExample, format_view
from iuie.ie.instructions import VIEWS, InstructionError, load_instruction_file
from iuie.ie.records import Argument, Entity, Event, Labels, Record, Relation, find_datasets

INSTR = "Do it. \n"

NER_LABELS = Labels.from_json(["person", "location"], "NER")
RE_LABELS = Labels.from_json(["work for", "located in"], "RE")
EE_LABELS = Labels.from_json([["attack", "die"], ["attacker", "place", "victim"]], "EE")
EVENT_ROLES = {"attack": ["attacker", "place"], "die": ["victim"]}
EET_LABELS = Labels.from_json(EVENT_ROLES, "EET")
EEA_LABELS = Labels.from_json(EVENT_ROLES, "EEA")

NER_S = "Alice met Bob in Paris ."
RE_S = "Alice works for Acme in Paris ."
EE_S = "Rebels attacked the town and two people died ."


def ent(sentence: str, name: str, type_: str = "") -> Entity:
    start = sentence.index(name)
    return Entity(name, type_, start, start + len(name))


def arg(sentence: str, name: str, role: str) -> Argument:
    start = sentence.index(name)
    return Argument(name, role, start, start + len(name))


def event(sentence: str, trigger: str, type_: str, *arguments: tuple[str, str]) -> Event:
    start = sentence.index(trigger)
    return Event(trigger, type_, start, start + len(trigger), tuple(arg(sentence, n, r) for n, r in arguments))


def rel(sentence: str, head: str, type_: str, tail: str) -> Relation:
    return Relation(ent(sentence, head), type_, ent(sentence, tail))


def ner_record(*entities: tuple[str, str], sentence: str = NER_S) -> Record:
    return Record(sentence, entities=tuple(ent(sentence, n, t) for n, t in entities))


def re_record(*relations: tuple[str, str, str], sentence: str = RE_S) -> Record:
    return Record(sentence, relations=tuple(rel(sentence, h, r, t) for h, r, t in relations))


def ee_record(*events: Event, sentence: str = EE_S) -> Record:
    return Record(sentence, events=tuple(events))


ATTACK = event(EE_S, "attacked", "attack", ("Rebels", "attacker"), ("the town", "place"))
DIE = event(EE_S, "died", "die", ("two people", "victim"))


# ---------------------------------------------------------------------------------------------------------
# One hand-worked example per view
# ---------------------------------------------------------------------------------------------------------


def test_ner():
    record = ner_record(("Alice", "person"), ("Bob", "person"), ("Paris", "NA"))
    assert format_view("NER", record, NER_LABELS, INSTR) == FormattedExample(
        inputs="Do it. \nOption: person, location \nText: Alice met Bob in Paris . \nAnswer:",
        targets=" person: Alice; person: Bob",
        ground_truth=" person: Alice; person: Bob",
        instruction="Do it. \nOption: person, location \nText: {0} \nAnswer:",
    )


def test_es_lists_every_entity_whatever_its_type():
    record = ner_record(("Alice", "person"), ("Bob", ""), ("Paris", "NA"))
    example = format_view("ES", record, NER_LABELS, INSTR)
    assert example.inputs == "Do it. \nOption: person, location \nText: Alice met Bob in Paris . \nAnswer:"
    assert example.targets == example.ground_truth == " Alice, Bob, Paris"


def test_et_lists_the_counting_entities_after_the_text():
    record = ner_record(("Alice", "person"), ("Bob", ""), ("Paris", "location"))
    example = format_view("ET", record, NER_LABELS, INSTR)
    assert example.inputs == (
        "Do it. \nOption: person, location \nText: Alice met Bob in Paris . \n Entities: Alice, Paris \nAnswer:"
    )
    assert example.instruction == "Do it. \nOption: person, location \nText: {0} \n Entities: Alice, Paris \nAnswer:"
    assert example.targets == example.ground_truth == " person: Alice; location: Paris"


RELATIONS = (
    ("Alice", "work for", "Acme"),
    ("Acme", "located in", "Paris"),
    ("Alice", "NA", "Paris"),
    ("Paris", "", "Acme"),
)


def test_re_ground_truth_lists_na_relations_too():
    example = format_view("RE", re_record(*RELATIONS), RE_LABELS, INSTR)
    assert example.inputs == "Do it. \nOption: work for, located in \nText: Alice works for Acme in Paris . \nAnswer:"
    assert example.targets == " work for: Alice, Acme; located in: Acme, Paris"
    # An untyped relation is written NA as well (the reference treats "" like "NA").
    assert example.ground_truth == " work for: Alice, Acme; located in: Acme, Paris; NA: Alice, Paris; NA: Paris, Acme"


def test_ep():
    example = format_view("EP", re_record(*RELATIONS), RE_LABELS, INSTR)
    assert example.inputs == "Do it. \nOption: work for, located in \nText: Alice works for Acme in Paris . \nAnswer:"
    assert example.targets == example.ground_truth == " Alice, Acme; Acme, Paris"


def test_epr_has_two_spaces_after_entity_pairs():
    example = format_view("EPR", re_record(*RELATIONS), RE_LABELS, INSTR)
    assert example.inputs == (
        "Do it. \nOption: work for, located in \nText: Alice works for Acme in Paris . \n"
        " Entity Pairs:  Alice, Acme; Acme, Paris \nAnswer:"
    )
    assert example.targets == " work for: Alice, Acme; located in: Acme, Paris"
    assert example.ground_truth == " work for: Alice, Acme; located in: Acme, Paris; NA: Alice, Paris; NA: Paris, Acme"


def test_ee_prints_python_lists_and_its_own_spacing():
    example = format_view("EE", ee_record(ATTACK, DIE), EE_LABELS, INSTR)
    assert example.inputs == (
        "Do it. \n Option: Event type: ['attack', 'die'], Arguments type: ['attacker', 'place', 'victim']. \n"
        "Text: Rebels attacked the town and two people died . \nAnswer:"
    )
    assert (
        example.targets
        == example.ground_truth
        == (" ( attack: attacked,  Rebels: attacker, the town: place) , ( die: died,  two people: victim) ")
    )


def test_ee_event_without_arguments_and_na_events():
    bare = event(EE_S, "died", "die")
    na = event(EE_S, "attacked", "NA", ("Rebels", "attacker"))
    example = format_view("EE", ee_record(na, bare), EE_LABELS, INSTR)
    assert example.targets == " ( die: died, None) "


def test_eet():
    example = format_view("EET", ee_record(ATTACK, DIE), EET_LABELS, INSTR)
    assert example.inputs == (
        "Do it. \n Option: attack, die \nText: Rebels attacked the town and two people died . \nAnswer:"
    )
    assert example.targets == example.ground_truth == " attack: attacked; die: died"


def test_eea_gives_the_event_type_and_its_roles():
    example = format_view("EEA", ee_record(ATTACK), EEA_LABELS, INSTR)
    assert example.inputs == (
        "Do it. \nEvent type: attack \n  Option: attacker, place \n"
        "Text: Rebels attacked the town and two people died . \nAnswer:"
    )
    assert example.instruction == "Do it. \nEvent type: attack \n  Option: attacker, place \nText: {0} \nAnswer:"
    # Argument text first, then its role; joined by ";" with the space each item carries.
    assert example.targets == example.ground_truth == " Rebels: attacker; the town: place"


# ---------------------------------------------------------------------------------------------------------
# Empty answers
# ---------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "view, record, labels, inputs_tail",
    [
        ("NER", ner_record(), NER_LABELS, " \nAnswer:"),
        ("NER", ner_record(("Bob", "NA"), ("Paris", "")), NER_LABELS, " \nAnswer:"),
        ("ES", ner_record(), NER_LABELS, " \nAnswer:"),
        ("ET", ner_record(("Bob", "NA")), NER_LABELS, " \n Entities:  \nAnswer:"),
        ("RE", re_record(), RE_LABELS, " \nAnswer:"),
        ("EP", re_record(("Alice", "NA", "Acme")), RE_LABELS, " \nAnswer:"),
        ("EPR", re_record(), RE_LABELS, " \n Entity Pairs:   \nAnswer:"),
        ("EE", ee_record(), EE_LABELS, " \nAnswer:"),
        ("EE", ee_record(event(EE_S, "died", "NA")), EE_LABELS, " \nAnswer:"),
        ("EET", ee_record(event(EE_S, "died", "")), EET_LABELS, " \nAnswer:"),
        ("EEA", ee_record(event(EE_S, "died", "die")), EEA_LABELS, " \nAnswer:"),
    ],
    ids=[
        "NER-no-entity",
        "NER-only-NA",
        "ES-no-entity",
        "ET-only-NA",
        "RE-no-relation",
        "EP-only-NA",
        "EPR-no-relation",
        "EE-no-event",
        "EE-NA-event",
        "EET-untyped-event",
        "EEA-no-argument",
    ],
)
def test_empty_answers_are_none(view, record, labels, inputs_tail):
    example = format_view(view, record, labels, INSTR)
    assert example.targets == example.ground_truth == " None"
    assert example.inputs.endswith(record.sentence + inputs_tail)


def test_relations_that_are_all_na_give_target_none_and_an_na_ground_truth():
    record = re_record(("Alice", "NA", "Acme"))
    for view in ("RE", "EPR"):
        example = format_view(view, record, RE_LABELS, INSTR)
        assert (example.targets, example.ground_truth) == (" None", " NA: Alice, Acme")
    assert format_view("EPR", record, RE_LABELS, INSTR).inputs.endswith(" \n Entity Pairs:   \nAnswer:")


def test_relation_views_accept_records_without_any_relation():
    # Deliberate difference 3: the reference raises "No ground truth!" here.
    for view in ("RE", "EPR", "EP"):
        example = format_view(view, re_record(), RE_LABELS, INSTR)
        assert example.targets == example.ground_truth == NONE_ANSWER


# ---------------------------------------------------------------------------------------------------------
# Quotes, braces, newlines
# ---------------------------------------------------------------------------------------------------------

QUOTE_S = "The rebels' raid didn't stop ."
QUOTE_LABELS_EE = Labels.from_json([["rebels' attack"], ["attacker"]], "EE")
QUOTE_ROLES = Labels.from_json({"rebels' attack": ["attacker"]}, "EET")
QUOTE_EVENT = event(QUOTE_S, "didn't stop", "rebels' attack", ("rebels'", "attacker"))


def test_single_quotes_in_events_are_kept_by_default():
    record = ee_record(QUOTE_EVENT, sentence=QUOTE_S)
    example = format_view("EE", record, QUOTE_LABELS_EE, INSTR)
    # str() of a list shows a label holding ' in double quotes, as the reference's f-string does.
    assert example.inputs == (
        "Do it. \n Option: Event type: [\"rebels' attack\"], Arguments type: ['attacker']. "
        "\nText: The rebels' raid didn't stop . \nAnswer:"
    )
    assert example.targets == " ( rebels' attack: didn't stop,  rebels': attacker) "
    assert format_view("EET", record, QUOTE_ROLES, INSTR).targets == " rebels' attack: didn't stop"


def test_reference_quirks_reproduce_the_quote_substitution():
    record = ee_record(QUOTE_EVENT, sentence=QUOTE_S)
    ee = format_view("EE", record, QUOTE_LABELS_EE, INSTR, reference_quirks=True)
    # Type and trigger only; argument text keeps its quote, and the input is untouched.
    assert ee.targets == ee.ground_truth == " ( rebels#$%# attack: didn#$%#t stop,  rebels': attacker) "
    assert ee.inputs == format_view("EE", record, QUOTE_LABELS_EE, INSTR).inputs
    eet = format_view("EET", record, QUOTE_ROLES, INSTR, reference_quirks=True)
    assert eet.targets == " rebels#$%# attack: didn#$%#t stop"
    assert SINGLE_QUOTE_SUBSTITUTE == "#$%#"
    # The reference's EEA loader does no substitution.
    eea_labels = Labels.from_json({"rebels' attack": ["attacker"]}, "EEA")
    eea = format_view("EEA", record, eea_labels, INSTR, reference_quirks=True)
    assert eea.targets == " rebels': attacker"
    assert "Event type: rebels' attack \n" in eea.inputs
    # Views other than EE and EET never change.
    ner = ner_record(("rebels'", "person"), sentence=QUOTE_S)
    assert format_view("NER", ner, NER_LABELS, INSTR, reference_quirks=True).targets == " person: rebels'"


def test_braces_anywhere_are_kept_literally():
    sentence = "x {0} y {1} }{ z"
    labels = Labels.from_json(["a{b}", "c}"], "NER")
    record = ner_record(("{1}", "a{b}"), ("}{", "c}"), sentence=sentence)
    instruction = "Use {braces} and {} here. \n"
    example = format_view("NER", record, labels, instruction)
    assert example.inputs == "Use {braces} and {} here. \nOption: a{b}, c} \nText: x {0} y {1} }{ z \nAnswer:"
    assert example.instruction == "Use {braces} and {} here. \nOption: a{b}, c} \nText: {0} \nAnswer:"
    assert example.targets == " a{b}: {1}; c}: }{"
    # Deliberate difference 1: the reference's template.format(sentence) cannot produce this input.
    with pytest.raises((KeyError, IndexError, ValueError)):
        example.instruction.format(sentence)
    et = format_view("ET", record, labels, "I \n")
    assert et.inputs == "I \nOption: a{b}, c} \nText: x {0} y {1} }{ z \n Entities: {1}, }{ \nAnswer:"


def test_doubled_braces_are_not_collapsed():
    # The reference's str.format would turn "{{" into "{" without any error.
    example = format_view("EET", ee_record(DIE), EET_LABELS, "Answer {{like this}}. \n")
    assert example.inputs.startswith("Answer {{like this}}. \n Option: attack, die \nText: ")
    assert example.instruction.format(EE_S) != example.inputs


def test_newlines_in_sentence_instruction_and_labels():
    sentence = "first line\nsecond line"
    labels = Labels.from_json(["two\nlines"], "RE")
    record = Record(sentence, relations=(Relation(ent(sentence, "first"), "two\nlines", ent(sentence, "second")),))
    example = format_view("EPR", record, labels, "Line one.\nLine two. \n")
    assert example.inputs == (
        "Line one.\nLine two. \nOption: two\nlines \nText: first line\nsecond line \n"
        " Entity Pairs:  first, second \nAnswer:"
    )
    assert example.targets == " two\nlines: first, second"


ALPHABET = st.sampled_from(list("ab '\"\n:;,(){}") + ["{0}", "{}", "é", "NA"])
TEXT = st.lists(ALPHABET, min_size=1, max_size=6).map("".join)


@st.composite
def random_case(draw):
    """A view, a record whose mentions all occur in the sentence, labels covering them, and an instruction."""
    view = draw(st.sampled_from(VIEWS))
    names = draw(st.lists(TEXT, min_size=0, max_size=4))
    types = draw(st.lists(TEXT, min_size=len(names), max_size=len(names)))
    filler = draw(TEXT)
    sentence = filler + " ".join(names) + filler
    positions, offset = [], len(filler)
    for name in names:
        positions.append((offset, offset + len(name)))
        offset += len(name) + 1
    instruction = draw(TEXT)
    task = SOURCE_TASK[view]
    label_types = list(dict.fromkeys(t for t in types if t not in ("NA", ""))) or ["x"]
    if task == "NER":
        record = Record(sentence, entities=tuple(Entity(n, t, *p) for n, t, p in zip(names, types, positions)))
        labels = Labels.from_json(label_types, task)
    elif task == "RE":
        ents = [Entity(n, "", *p) for n, p in zip(names, positions)]
        record = Record(sentence, relations=tuple(Relation(h, t, tl) for h, tl, t in zip(ents, ents[1:], types)))
        labels = Labels.from_json(label_types, task)
    else:
        if task == "EEA":
            names, types = (names or [filler])[:1], (types or ["x"])[:1]
            positions = positions[:1] or [(0, len(filler))]
            label_types = list(dict.fromkeys(types))
        args = tuple(Argument(n, t, *p) for n, t, p in zip(names, types, positions))
        events = tuple(Event(n, t, p[0], p[1], args) for n, t, p in zip(names, types, positions))
        record = Record(sentence, events=events)
        roles = list(dict.fromkeys(types)) or ["r"]
        raw = [label_types, roles] if task == "EE" else {t: roles for t in label_types}
        labels = Labels.from_json(raw, task)
    return view, record, labels, instruction


@given(random_case())
@settings(max_examples=300, deadline=None)
def test_any_text_formats_and_matches_the_reference_where_it_is_defined(case):
    view, record, labels, instruction = case
    example = format_view(view, record, labels, instruction)
    assert example.inputs.startswith(instruction)
    assert example.inputs.endswith(" \nAnswer:")
    assert record.sentence in example.inputs
    assert example.targets.startswith(" ") and example.ground_truth.startswith(" ")
    if view not in ("RE", "EPR"):
        assert example.ground_truth == example.targets
    template_text = example.instruction.replace("{0}", "", 1)
    if "{" not in template_text and "}" not in template_text:
        # Where the reference's collator is well defined, it and iuie agree.
        assert example.instruction.format(record.sentence) == example.inputs


# ---------------------------------------------------------------------------------------------------------
# Errors
# ---------------------------------------------------------------------------------------------------------


def test_eea_needs_exactly_one_event():
    with pytest.raises(ValueError, match="exactly one event, found 2"):
        format_view("EEA", ee_record(ATTACK, DIE), EEA_LABELS, INSTR)
    with pytest.raises(ValueError, match="exactly one event, found 0"):
        format_view("EEA", ee_record(), EEA_LABELS, INSTR)


def test_eea_event_type_must_have_roles():
    with pytest.raises(ValueError, match="'NA' has no roles"):
        format_view("EEA", ee_record(event(EE_S, "died", "NA")), EEA_LABELS, INSTR)


def test_labels_must_come_from_the_views_folder():
    with pytest.raises(ValueError, match="the EE view needs the labels of a EE dataset, got labels of a EET"):
        format_view("EE", ee_record(ATTACK), EET_LABELS, INSTR)


def test_unknown_view():
    with pytest.raises(InstructionError, match="unknown task view"):
        format_view("RC", ner_record(), NER_LABELS, INSTR)
    assert format_view("ner", ner_record(), NER_LABELS, INSTR) == format_view("NER", ner_record(), NER_LABELS, INSTR)


def test_source_task():
    assert SOURCE_TASK == {
        "NER": "NER",
        "ES": "NER",
        "ET": "NER",
        "RE": "RE",
        "EP": "RE",
        "EPR": "RE",
        "EE": "EE",
        "EET": "EET",
        "EEA": "EEA",
    }
    assert tuple(SOURCE_TASK) == VIEWS


# ---------------------------------------------------------------------------------------------------------
# The paper's instructions on the real data
# ---------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def paper(shared_data):
    return load_instruction_file(shared_data / "instructuie_configs" / "instruction_config.json")


def first_test_record(root, task, name):
    folder = next(d for d in find_datasets(root, tasks=(task,)) if d.name == name)
    records, _ = folder.load("test", strict=True, limit=200)
    return records, folder.labels()


def test_paper_ner_on_the_first_conll_2003_test_record(paper, ie_instructions):
    records, labels = first_test_record(ie_instructions, "NER", "CoNLL 2003")
    example = format_view("NER", records[0], labels, paper.choose("NER", "single"))
    assert example.inputs == (
        'Please list all entity words in the text that fit the category.Output format is "type1: word1; '
        'type2: word2". \nOption: location, miscellaneous, organization, person \n'
        "Text: SOCCER - JAPAN GET LUCKY WIN , CHINA IN SURPRISE DEFEAT . \nAnswer:"
    )
    assert example.targets == example.ground_truth == " location: JAPAN; person: CHINA"


def test_paper_re_on_conll04(paper, ie_instructions):
    records, labels = first_test_record(ie_instructions, "RE", "conll04")
    example = format_view("RE", records[1], labels, paper.choose("RE", "single"))
    assert example.inputs == (
        "Given a phrase that describes the relationship between two words, extract the words and the lexical "
        'relationship between them. The output format should be "relation1: word1, word2; relation2: word3, '
        'word4". \nOption: kill, live in, located in, organization based in, work for \n'
        "Text: PERUGIA , Italy ( AP ) \nAnswer:"
    )
    assert (
        example.targets
        == example.ground_truth
        == (" located in: PERUGIA, Italy; organization based in: AP, PERUGIA; organization based in: AP, Italy")
    )


def test_paper_epr_on_a_semeval_record_with_only_na(paper, ie_instructions):
    records, labels = first_test_record(ie_instructions, "RE", "semval-RE")
    example = format_view("EPR", records[11], labels, paper.choose("EPR", "single"))
    assert example.inputs == (
        "Given options, please tell me the relationships of all the listed entity pairs.Output format is "
        '"relation1: word1, word2; relation2: word3, word4". \nOption: cause effect, component whole, '
        "content container, entity destination, entity origin, instrument agency, member collection, "
        "message topic, product producer \nText: On a friend's advice, I purchased a sauerkraut and kimchi maker "
        "here and it is just fabulous (and cheap too). \n Entity Pairs:   \nAnswer:"
    )
    assert (example.targets, example.ground_truth) == (" None", " NA: kimchi, maker")


def test_paper_ee_eet_eea_on_the_first_casie_test_record(paper, ie_instructions):
    sentence = (
        "With a bunch of security fixes released and more on the way, details have been made public of a "
        "Bluetooth bug that potentially allows miscreants to commandeer nearby devices."
    )
    records, labels = first_test_record(ie_instructions, "EE", "CASIE")
    ee = format_view("EE", records[0], labels, paper.choose("EE", "single"))
    assert ee.inputs == (
        "Locate the role in the text that participated in the event based on the event type and return it in "
        "the event list. \n Option: Event type: ['databreach', 'discover vulnerability', 'patch vulnerability', "
        "'phishing', 'ransom'], Arguments type: ['attack pattern', 'attacker', 'capabilities', "
        "'compromised data', 'cve', 'damage amount', 'discoverer', 'issues addressed', 'number of data', "
        "'number of victim', 'patch', 'patch number', 'payment method', 'place', 'price', 'purpose', "
        "'releaser', 'supported platform', 'time', 'tool', 'trusted entity', 'victim', 'vulnerability', "
        "'vulnerable system', 'vulnerable system owner', 'vulnerable system version']. \nText: "
        + sentence
        + " \nAnswer:"
    )
    assert ee.targets == (
        " ( patch vulnerability: released,  security fixes: patch) , "
        "( discover vulnerability: have been made public,  a Bluetooth bug: vulnerability) "
    )

    records, labels = first_test_record(ie_instructions, "EET", "CASIE")
    eet = format_view("EET", records[0], labels, paper.choose("EET", "single"))
    # The paper's EET instruction ends in ". " with no newline: two spaces before "Option".
    assert eet.inputs == (
        "Please tell me event type and its trigger word from given type options. Output format is "
        '"type: trigger".  Option: databreach, discover vulnerability, patch vulnerability, phishing, ransom \n'
        "Text: " + sentence + " \nAnswer:"
    )
    assert eet.targets == " patch vulnerability: released; discover vulnerability: have been made public"

    records, labels = first_test_record(ie_instructions, "EEA", "CASIE")
    eea = format_view("EEA", records[0], labels, paper.choose("EEA", "single"))
    assert eea.inputs == (
        "Given event type and trigger, please tell me the arguments of all the listed option. Output format is "
        '"name1: role1; name2: role2". \nEvent type: patch vulnerability \n  Option: cve, issues addressed, '
        "patch, patch number, releaser, supported platform, time, vulnerability, vulnerable system, "
        "vulnerable system version \nText: " + sentence + " \nAnswer:"
    )
    assert eea.targets == " security fixes: patch"


def test_a_real_trigger_with_a_quote(ie_instructions):
    records, labels = first_test_record(ie_instructions, "EE", "CASIE")
    record = records[169]
    assert format_view("EE", record, labels, INSTR).targets == (
        " ( discover vulnerability: hasn't been publicly disclosed,  The vulnerability: vulnerability) "
    )
    assert format_view("EE", record, labels, INSTR, reference_quirks=True).targets == (
        " ( discover vulnerability: hasn#$%#t been publicly disclosed,  The vulnerability: vulnerability) "
    )


def test_a_real_entity_with_braces_in_the_et_view(paper, ie_instructions):
    # bc5cdr test record 64 names a chemical "5 - { 2 - [ ... ] ethyl } - ...": the reference's ET template
    # holds it, so its str.format fails and the collator's try/finally returns the template, sentence lost.
    folder = next(d for d in find_datasets(ie_instructions, tasks=("NER",)) if d.name == "bc5cdr")
    records, _ = folder.load("test", strict=True, limit=65)
    record = records[64]
    assert any("{" in e.name for e in record.entities)
    example = format_view("ET", record, folder.labels(), paper.choose("ET", "single"))
    assert "Text: " + record.sentence + " \n Entities: " in example.inputs
    with pytest.raises(KeyError):
        example.instruction.format(record.sentence)


VIEWS_OF = {"NER": ("NER", "ES", "ET"), "RE": ("RE", "EP", "EPR"), "EE": ("EE",), "EET": ("EET",), "EEA": ("EEA",)}


def all_datasets():
    from tests.conftest import SHARED_DATA

    root = SHARED_DATA / "IE_INSTRUCTIONS"
    found = find_datasets(root) if root.is_dir() else []
    return [pytest.param(d, id=f"{d.task}/{d.name}") for d in found] or [pytest.param(None, id="no-data")]


@pytest.mark.parametrize("folder", all_datasets())
def test_every_real_dataset_formats_in_every_view(folder, paper, shared_data):
    if folder is None:
        pytest.skip("no real data")
    labels = folder.labels()
    views = VIEWS_OF[folder.task]
    checked = 0
    for split in folder.splits:
        records, report = folder.load(split)
        assert report.num_skipped == 0, report.summary()
        for record in records:
            for view in views:
                instruction = paper.choose(view, "single")
                example = format_view(view, record, labels, instruction)
                assert example.inputs.startswith(instruction) and example.inputs.endswith(" \nAnswer:")
                assert record.sentence in example.inputs
                assert example.targets.startswith(" ") and "\n" not in example.targets
                template_text = example.instruction.replace("{0}", "", 1)
                if "{" not in template_text and "}" not in template_text:
                    # The reference's collator step, where it is well defined.
                    assert example.instruction.format(record.sentence) == example.inputs
                checked += 1
    assert checked > 0
