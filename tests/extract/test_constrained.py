"""Constrained decoding never emits a label outside the options or a mention absent from the text.

Reference: :func:`iuie.ie.parsing.parse` (the project's reader of model outputs, written independently of the
grammar) and plain substring tests on the input sentence."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from iuie.extraction.constrained import Constrainer, Grammar, grammar_for
from iuie.ie.parsing import parse
from iuie.pipeline import vocab
from tests.extract.conftest import random_extractor

WORDS = [
    "Anna",
    "Berg",
    "lives",
    "in",
    "Oslo",
    "the",
    "bank",
    "fired",
    "rockets",
    "at",
    "base",
    "x",
    "works",
    "for",
    "Atlas",
    "Motors",
    "2024",
    "a",
]
LABELS = ["person", "location", "organization", "work for", "live in", "attack", "die", "weapon", "time", "org"]

sentences = st.tuples(
    st.lists(st.sampled_from(WORDS), min_size=1, max_size=12), st.sampled_from(["", " .", ".", " , again", "!"])
).map(lambda t: " ".join(t[0]) + t[1])
label_lists = st.lists(st.sampled_from(LABELS), min_size=1, max_size=4, unique=True)


@pytest.fixture(scope="module")
def vocabulary():
    return vocab.get_vocabulary()


@pytest.fixture(scope="module")
def constrainer(vocabulary):
    size = -(-vocabulary.tokenizer.get_piece_size() // 128) * 128
    return Constrainer(vocabulary, size)


def options(view, labels, roles):
    return [labels, roles] if view == "EE" else labels


def check_output(view, text, sentence, labels, roles):
    """Every parsed label is an option and every mention a substring of the sentence."""
    parsed = parse(view, text, options(view, labels, roles), sentence=sentence)
    for item in parsed.items:
        if view == "NER":
            used, mentions = [item[0]], [item[1]]
        elif view == "RE":
            used, mentions = [item[0]], [item[1], item[2]]
        else:
            used = [item[0]] + [role for role, _ in item[2]]
            mentions = [item[1]] + [arg for _, arg in item[2]]
        for label in used:
            assert label in labels + roles, (text, label)
        for mention in mentions:
            assert mention in sentence, (text, mention)
    return parsed


def random_decode(constrainer, grammar, rng, length=40):
    """Greedy decoding of random logits under the mask, as iuie.model.decoding does it."""
    constrainer.register({0: grammar})
    tokens = []
    for _ in range(length):
        allowed = constrainer.allowed(0, tokens)
        logits = rng.normal(size=allowed.shape) * 3
        logits[constrainer.eos_id] -= 2.0  # favour longer outputs
        token = int(np.argmax(np.where(allowed, logits, -1e9)))
        if token == constrainer.eos_id:
            return tokens, True
        tokens.append(token)
    return tokens, False


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    view=st.sampled_from(["NER", "RE", "EE"]),
    sentence=sentences,
    labels=label_lists,
    roles=label_lists,
    seed=st.integers(0, 2**31 - 1),
)
def test_random_logits_never_leave_the_grammar(constrainer, vocabulary, view, sentence, labels, roles, seed):
    roles = roles if view == "EE" else []
    grammar = grammar_for(view, sentence, options(view, labels, roles))
    tokens, finished = random_decode(constrainer, grammar, np.random.default_rng(seed))
    text = vocabulary.decode(tokens)
    parsed = check_output(view, text, sentence, labels, roles)
    if finished:
        # A finished output is a complete sentence of the grammar: nothing malformed in it.
        assert parsed.malformed == 0, text


@pytest.mark.parametrize("view", ["NER", "RE", "EE"])
def test_gold_targets_are_never_forbidden(constrainer, vocabulary, synthetic_root, view):
    """Constraints must not cost recall on a correct answer: the tokens of every synthetic gold target,
    EOS included, are allowed at each step (checked against iuie.ie.formats' own targets)."""
    from iuie.ie.formats import format_view
    from iuie.ie.instructions import DEFAULT_INSTRUCTIONS
    from iuie.ie.records import DatasetFolder

    records, _ = DatasetFolder(synthetic_root, view, "synthetic").load("test", limit=40)
    labels = __import__("iuie.ie.records", fromlist=["load_labels"]).load_labels(
        synthetic_root / view / "synthetic", view
    )
    for record in records:
        target = format_view(view, record, labels, DEFAULT_INSTRUCTIONS.choose(view)).targets
        grammar = grammar_for(view, record.sentence, labels)
        constrainer.register({0: grammar})
        tokens = list(vocabulary.encode(target)) + [constrainer.eos_id]
        for step, token in enumerate(tokens):
            assert constrainer.allowed(0, tokens[:step])[token], (target, step)


def test_labels_and_mentions_outside_are_forbidden():
    grammar = Grammar("NER", "Anna Berg lives in Oslo .", ["person", "location"])
    assert grammar.accepts(grammar.run("  person: Anna Berg; location: Oslo"))
    assert not grammar.run(" person: Paris")
    assert not grammar.run(" city: Oslo")
    assert not grammar.accepts(grammar.run(" person: "))  # an empty mention does not end an item


@pytest.mark.filterwarnings("ignore::iuie.extraction.extractor.WindowWarning")
@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(sentences=st.lists(sentences, min_size=1, max_size=5), labels=label_lists, seed=st.integers(0, 3))
def test_model_decoding_under_constraints(model_extractors, sentences, labels, seed):
    """The jitted decode with the pure_callback mask, on a random model, for all three tasks."""
    extractor = model_extractors[seed % len(model_extractors)]
    for task, view in (("ner", "NER"), ("re", "RE"), ("ee", "EE")):
        task_labels = [labels, labels] if task == "ee" else labels
        results = extractor.extract(sentences, task=task, labels=task_labels)
        for sentence, result in zip(sentences, results):
            for output in result.outputs:
                check_output(view, output, sentence, labels, labels if task == "ee" else [])
            assert result.unaligned == 0


@pytest.fixture(scope="module")
def model_extractors():
    return [
        random_extractor(seed=s, max_input_tokens=256, max_decode_length=24, batch_size=4, constrained=True)
        for s in (0, 1)
    ]


def test_mentions_start_and_end_at_word_boundaries():
    """Hand-worked: in "Quanta Phone, since 2010 ." a mention may not stop inside a word ("Quanta P", the cut
    the demo model made) nor start inside one ("hone"); separators and the sentence's ends are boundaries.
    ``word_boundaries=False`` (the rule off) allows any substring."""
    sentence = "Quanta Phone, since 2010 ."
    grammar = Grammar("NER", sentence, ["product", "date"])
    assert grammar.accepts(grammar.run(" product: Quanta Phone; date: 2010"))
    assert grammar.accepts(grammar.run(" product: Quanta; product: Phone,"))  # "," ends "Phone" at a boundary
    assert not grammar.accepts(grammar.run(" product: Quanta P"))  # ends inside "Phone"
    assert not grammar.run(" product: Quanta P;")  # nothing may follow the cut either
    assert not grammar.run(" product: hone")  # starts inside "Phone"
    assert not grammar.accepts(grammar.run(" date: 201"))
    assert grammar.run(" date: 2010 .")  # a mention may run on across a space and a full stop
    anywhere = Grammar("NER", sentence, ["product", "date"], word_boundaries=False)
    assert anywhere.accepts(anywhere.run(" product: Quanta P; product: hone"))


def test_word_boundaries_of_scripts_without_spaces():
    """Every CJK character is a word of its own (East Asian width W), so a mention may start and end at any
    character of a Chinese sentence; within Latin letters and digits it may not."""
    from iuie.extraction.constrained import boundary_positions

    assert boundary_positions("北京大学") == frozenset(range(5))
    assert boundary_positions("ab cd") == frozenset({0, 2, 3, 5})
    assert boundary_positions("U.S.-based") == frozenset({0, 1, 2, 3, 4, 5, 10})  # not inside "based"
    assert boundary_positions("ab", word_boundaries=False) == frozenset({0, 1, 2})
    grammar = Grammar("NER", "我在北京大学", ["location"])
    assert grammar.accepts(grammar.run(" location: 北京"))
