"""iuie.ie.instructions: the instruction sets and the single / multiple strategies.

Checked against: the paper's own instruction file (``shared/data/instructuie_configs/instruction_config.json``,
identical to ``configs/instruction_config.json`` of the InstructUIE repository) and the reference's loader
(``UIEConfig._parse_instruction`` and ``_get_instruction`` in ``src/uie_dataset.py``): zero-shot entries in
file order, ``single`` = the first, an unknown ``instruction_type`` is an error. The per-example seed is
checked against its documented derivation with the standard library's ``random.Random``.
"""

from __future__ import annotations

import json
import pickle
import random
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from iuie.ie.instructions import (
    DEFAULT_INSTRUCTIONS,
    STRATEGIES,
    VIEWS,
    InstructionError,
    InstructionSet,
    canonical_view,
    example_rng,
    instruction_set,
    load_instruction_file,
)

# The paper's first instruction for each view, written out from its file.
PAPER_FIRST = {
    "NER": "Please list all entity words in the text that fit the category.Output format is "
    '"type1: word1; type2: word2". \n',
    "RE": "Given a phrase that describes the relationship between two words, extract the words and the lexical "
    'relationship between them. The output format should be "relation1: word1, word2; relation2: word3, '
    'word4". \n',
    "EE": "Locate the role in the text that participated in the event based on the event type and return it in "
    "the event list. \n",
    "ES": 'Please list all entity words in the text that fit the category. Output format is "word1, word2". \n',
    "ET": "Given options, please tell me the categories of all the listed entity words.Output format is "
    '"type1: word1; type2: word2". \n',
    "EP": "Please list all entity pairs containing a certain relationship in the given options.Output format is "
    '"word1, word2; word3, word4". \n',
    "EPR": "Given options, please tell me the relationships of all the listed entity pairs.Output format is "
    '"relation1: word1, word2; relation2: word3, word4". \n',
    "EEA": "Given event type and trigger, please tell me the arguments of all the listed option. Output format is "
    '"name1: role1; name2: role2". \n',
    # The only one without the trailing newline.
    "EET": 'Please tell me event type and its trigger word from given type options. Output format is "type: trigger". ',
}

# The answer format each view's default instructions must state (what iuie.ie.formats produces).
FORMAT_STATED = {
    "NER": '"type1: word1; type2: word2"',
    "ES": '"word1, word2"',
    "ET": '"type1: word1; type2: word2"',
    "RE": '"relation1: word1, word2; relation2: word3, word4"',
    "EP": '"word1, word2; word3, word4"',
    "EPR": '"relation1: word1, word2; relation2: word3, word4"',
    "EE": "( type1: trigger1, word1: role1, word2: role2 )",
    "EET": '"type1: trigger1; type2: trigger2"',
    "EEA": '"word1: role1; word2: role2"',
}


@pytest.fixture(scope="module")
def paper(shared_data):
    return load_instruction_file(shared_data / "instructuie_configs" / "instruction_config.json")


def write_json(path, obj):
    path.write_text(json.dumps(obj), encoding="utf-8")
    return path


def test_views_are_the_nine_of_the_paper():
    assert VIEWS == ("NER", "ES", "ET", "RE", "EP", "EPR", "EE", "EET", "EEA")
    assert STRATEGIES == ("single", "multiple")


@pytest.mark.parametrize("spelling", ["ner", "Ner", " NER ", "epr", "Eea"])
def test_canonical_view_is_case_insensitive(spelling):
    assert canonical_view(spelling) == spelling.strip().upper()


def test_canonical_view_rejects_unknown_names():
    with pytest.raises(InstructionError, match="unknown task view 'RC'.*NER, ES, ET"):
        canonical_view("RC")


# ---------------------------------------------------------------------------------------------------------
# The paper's file
# ---------------------------------------------------------------------------------------------------------


def test_paper_file_single_strategy_gives_the_first_instruction(paper):
    for view in VIEWS:
        assert paper.choose(view, "single") == PAPER_FIRST[view]


def test_paper_file_keeps_every_zero_shot_entry_in_order(paper, shared_data):
    raw = json.loads((shared_data / "instructuie_configs" / "instruction_config.json").read_text())
    assert set(paper.views) == set(VIEWS)
    for view in VIEWS:
        assert paper.get(view) == tuple(e["instruction"] for e in raw[view])
    assert [len(paper.get(v)) for v in ("RE", "NER", "EE")] == [3, 3, 2]
    # The paper's file also holds RC (relation classification), which no view uses; it is kept, not an error.
    assert len(paper.texts["RC"]) == 3
    assert paper.source.endswith("instruction_config.json")


def test_default_instructions_differ_from_the_paper(paper):
    ours = {t for v in VIEWS for t in DEFAULT_INSTRUCTIONS.get(v)}
    theirs = {t for v in VIEWS for t in paper.get(v)}
    assert not ours & theirs


# ---------------------------------------------------------------------------------------------------------
# iuie's own instructions
# ---------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("view", VIEWS)
def test_default_instructions_state_the_output_format(view):
    texts = DEFAULT_INSTRUCTIONS.get(view)
    assert len(texts) >= 2, "the multiple strategy needs a choice"
    for text in texts:
        assert FORMAT_STATED[view] in text, text
        # Every answer format can be empty; the instruction says how.
        assert '"None"' in text
        # Ends like the paper's, so the options start on their own line.
        assert text.endswith(" \n")
        # A brace would break the reference's str.format if this text were fed to it.
        assert "{" not in text and "}" not in text
    assert len(set(texts)) == len(texts)


def test_instruction_set_defaults_to_iuie_wording(tmp_path):
    assert instruction_set(None) is DEFAULT_INSTRUCTIONS
    assert instruction_set("") is DEFAULT_INSTRUCTIONS
    path = write_json(tmp_path / "i.json", {"NER": [{"instruction_type": "zero-shot", "instruction": "x"}]})
    assert instruction_set(path).get("NER") == ("x",)


def test_instruction_sets_copy_their_input_and_pickle():
    source = {"NER": ["a", "b"]}
    instructions = InstructionSet(source)
    source["NER"].append("c")
    assert instructions.get("NER") == ("a", "b")
    # seqio / Beam workers receive the set by pickle.
    assert pickle.loads(pickle.dumps(DEFAULT_INSTRUCTIONS)) == DEFAULT_INSTRUCTIONS


# ---------------------------------------------------------------------------------------------------------
# Strategies
# ---------------------------------------------------------------------------------------------------------


def test_multiple_strategy_is_deterministic_for_a_seed_and_varies_across_records():
    picks = [
        DEFAULT_INSTRUCTIONS.choose("RE", "multiple", example_rng(3, "RE", "conll04", "train", i)) for i in range(60)
    ]
    again = [
        DEFAULT_INSTRUCTIONS.choose("RE", "multiple", example_rng(3, "RE", "conll04", "train", i)) for i in range(60)
    ]
    assert picks == again
    # Three instructions and 60 records: every one of them is drawn.
    assert set(picks) == set(DEFAULT_INSTRUCTIONS.get("RE"))
    other_seed = [
        DEFAULT_INSTRUCTIONS.choose("RE", "multiple", example_rng(4, "RE", "conll04", "train", i)) for i in range(60)
    ]
    assert other_seed != picks


def test_example_rng_follows_its_documented_derivation():
    # A string seed: random hashes it with SHA-512, so this is stable across processes and PYTHONHASHSEED.
    assert (
        example_rng(7, "NER", "CoNLL 2003", "test", 12).random() == random.Random("7:NER:CoNLL 2003:test:12").random()
    )


def test_example_rng_depends_on_every_part_of_the_key():
    base = example_rng(0, "NER", "d", "test", 5).random()
    for key in [
        (1, "NER", "d", "test", 5),
        (0, "ES", "d", "test", 5),
        (0, "NER", "e", "test", 5),
        (0, "NER", "d", "dev", 5),
        (0, "NER", "d", "test", 6),
    ]:
        assert example_rng(*key).random() != base


@given(view=st.sampled_from(VIEWS), seed=st.integers(), index=st.integers(min_value=0))
@settings(max_examples=50, deadline=None)
def test_multiple_strategy_returns_one_of_the_views_instructions(view, seed, index):
    choice = DEFAULT_INSTRUCTIONS.choose(view, "multiple", example_rng(seed, view, "x", "train", index))
    assert choice in DEFAULT_INSTRUCTIONS.get(view)


def test_multiple_strategy_needs_a_seeded_generator():
    with pytest.raises(InstructionError, match="seeded random.Random"):
        DEFAULT_INSTRUCTIONS.choose("NER", "multiple")


def test_unknown_strategy_is_an_error():
    with pytest.raises(InstructionError, match="unknown instruction strategy 'random'"):
        DEFAULT_INSTRUCTIONS.choose("NER", "random")


def test_views_are_accepted_in_any_case():
    assert DEFAULT_INSTRUCTIONS.choose("ner") == DEFAULT_INSTRUCTIONS.get("NER")[0]


# ---------------------------------------------------------------------------------------------------------
# Bad instruction files
# ---------------------------------------------------------------------------------------------------------


def test_unknown_instruction_type_names_the_file_and_the_entry(tmp_path):
    path = write_json(
        tmp_path / "bad.json",
        {
            "NER": [
                {"instruction_type": "zero-shot", "instruction": "a"},
                {"instruction_type": "one-shot", "instruction": "b"},
            ]
        },
    )
    with pytest.raises(InstructionError) as info:
        load_instruction_file(path)
    message = str(info.value)
    assert str(path) in message and "task 'NER' entry 1" in message and "'one-shot'" in message


def test_missing_view_is_an_error_only_when_requested(tmp_path):
    path = write_json(
        tmp_path / "ner_only.json",
        {
            "NER": [{"instruction_type": "zero-shot", "instruction": "n"}],
            # Few-shot entries are checked and dropped: ES ends up with no usable instruction.
            "ES": [{"instruction_type": "few-shot", "instruction": "e"}],
        },
    )
    instructions = load_instruction_file(path)
    assert instructions.views == ("NER",)
    assert instructions.choose("NER") == "n"
    with pytest.raises(InstructionError) as info:
        instructions.choose("ES")
    assert str(path) in str(info.value) and "'ES'" in str(info.value) and "views it has: NER" in str(info.value)


@pytest.mark.parametrize(
    "content, expected",
    [
        ("[1, 2]", "expected an object"),
        ('{"NER": "text"}', "task 'NER': expected a list"),
        ('{"NER": ["text"]}', "task 'NER' entry 0: expected an object"),
        ('{"NER": [{"instruction_type": "zero-shot"}]}', "task 'NER' entry 0: 'instruction' must be a string"),
        ('{"NER": [{"instruction": "x"}]}', "unknown instruction_type None"),
        ("{not json", "unreadable JSON"),
    ],
)
def test_malformed_files_are_clear_errors(tmp_path, content, expected):
    path = tmp_path / "instructions.json"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(InstructionError, match=re.escape(expected)) as info:
        load_instruction_file(path)
    assert str(path) in str(info.value)


def test_missing_file_is_a_clear_error(tmp_path):
    with pytest.raises(InstructionError, match="instruction file not found"):
        load_instruction_file(tmp_path / "nope.json")


def test_texts_are_kept_exactly(tmp_path):
    text = "Braces {0} {x}, quotes ' \", newline \n and trailing spaces   "
    path = write_json(tmp_path / "i.json", {"EE": [{"instruction_type": "zero-shot", "instruction": text}]})
    assert load_instruction_file(path).choose("EE") == text


def test_instruction_set_from_a_mapping():
    instructions = InstructionSet({"NER": ["a", "b"]}, source="test")
    assert instructions.get("NER") == ("a", "b")
    assert instructions.choose("NER", "single") == "a"
