"""Instruction texts for the nine task views, and how one is chosen per example.

An instruction is the free text that opens every model input; :mod:`iuie.ie.formats` appends the options, the
sentence and ``"Answer:"`` to it. iuie ships its own wording (:data:`DEFAULT_INSTRUCTIONS`); the paper's
``instruction_config.json`` can be loaded with :func:`load_instruction_file` to reproduce the reference's inputs
character for character.

Strategies (the reference's ``--instruction_strategy``):

* ``single``: always the first instruction listed for the view.
* ``multiple``: one of the view's instructions, drawn with ``rng.choice``. The reference draws from the global,
  unseeded ``random`` module, so its inputs cannot be reproduced; iuie requires a seeded ``random.Random``.
  :func:`example_rng` derives one per example from ``"{seed}:{view}:{dataset}:{split}:{index}"`` (a string seed,
  which ``random`` hashes with SHA-512, so the draw is stable across processes and ``PYTHONHASHSEED``). A given
  example therefore gets the same instruction whatever records come before it, whatever ``--limit`` is, and
  whichever host formats it.

Only instruction text lives here; this module does no formatting.
"""

from __future__ import annotations

import dataclasses
import json
import os
import random
from collections.abc import Mapping
from typing import Any

from iuie.ie import views

# The nine task views, in the order the paper lists them (the table of iuie.ie.views).
VIEWS = views.NAMES
STRATEGIES = ("single", "multiple")
# Entry kinds in the paper's instruction file. Only zero-shot entries are used: the reference raises
# "Few shot is coming soon..." whenever it would need a few-shot one.
INSTRUCTION_TYPES = ("zero-shot", "few-shot")


class InstructionError(ValueError):
    """A bad instruction file, an unknown view or strategy, or a view the set has no instruction for."""


def canonical_view(name: str) -> str:
    """The view name in its canonical upper-case spelling; raises InstructionError for an unknown one."""
    view = str(name).strip().upper()
    if view not in VIEWS:
        raise InstructionError(f"unknown task view {name!r}; expected one of {', '.join(VIEWS)}")
    return view


def example_rng(seed: int | str, view: str, dataset: str, split: str, index: int) -> random.Random:
    """The seeded generator for one example under the ``multiple`` strategy (see the module docstring).

    ``index`` is the record's position in its split file, so the draw does not depend on what else is
    formatted. The view takes part in the seed so that the auxiliary views of one record draw independently.
    """
    return random.Random(f"{seed}:{view}:{dataset}:{split}:{index}")


@dataclasses.dataclass(frozen=True)
class InstructionSet:
    """Instruction texts per view, in file order. ``source`` names where they came from, for error messages.

    Keys other than the nine views are kept (the paper's file also holds ``RC``) but nothing here uses them.
    """

    texts: Mapping[str, tuple[str, ...]]
    source: str = "<iuie default instructions>"

    def __post_init__(self) -> None:
        # A private copy with tuples: an InstructionSet is shared by every example of a run, so a caller's
        # later edits to its own lists must not reach it. A plain dict (not a mapping proxy) keeps it picklable
        # for seqio / Beam workers.
        object.__setattr__(self, "texts", {str(k): tuple(v) for k, v in self.texts.items()})

    @property
    def views(self) -> tuple[str, ...]:
        """The task views this set has at least one instruction for."""
        return tuple(v for v in VIEWS if self.texts.get(v))

    def get(self, view: str) -> tuple[str, ...]:
        """All instructions for a view; InstructionError naming the source when there is none."""
        view = canonical_view(view)
        found = self.texts.get(view)
        if not found:
            have = ", ".join(self.views) or "none"
            raise InstructionError(
                f"{self.source}: no zero-shot instruction for task view {view!r} (views it has: {have})"
            )
        return found

    def choose(self, view: str, strategy: str = "single", rng: random.Random | None = None) -> str:
        """One instruction for a view: the first (``single``) or ``rng.choice`` of them (``multiple``)."""
        texts = self.get(view)
        if strategy == "single":
            return texts[0]
        if strategy == "multiple":
            if rng is None:
                # The reference falls back on the global random state; that is what made it irreproducible.
                raise InstructionError(
                    "the 'multiple' strategy needs a seeded random.Random (see iuie.ie.instructions.example_rng)"
                )
            return rng.choice(texts)
        raise InstructionError(f"unknown instruction strategy {strategy!r}; expected one of {', '.join(STRATEGIES)}")


# iuie's own wording. Each text states the exact answer format of its view (what iuie.ie.formats builds) and ends
# with " \n" like the paper's, so the options that iuie.ie.formats appends start on a new line. None contains a
# brace: a brace would break the reference's str.format if these texts were fed to it.
DEFAULT_INSTRUCTIONS = InstructionSet(
    {
        "NER": (
            "Find every named entity in the text whose category is one of the options. "
            'Answer in the format "type1: word1; type2: word2", or "None" if there is none. \n',
            "Read the text and pick out each span that names something of a listed category. "
            'Write each as category, colon, span, separated by semicolons: "type1: word1; type2: word2". '
            'Write "None" when nothing matches. \n',
            "Which words in the text are entities of the given categories? "
            'Reply as "type1: word1; type2: word2"; reply "None" if no word qualifies. \n',
        ),
        "ES": (
            "Find every entity mention in the text that belongs to one of the option categories, "
            'without naming the category. Answer in the format "word1, word2", or "None" if there is none. \n',
            "List the spans of the text that are entities of the given categories, in the format "
            '"word1, word2". Write "None" when there are none. \n',
        ),
        "ET": (
            "The entities of the text are listed below. Give the category of each, chosen from the options, "
            'in the format "type1: word1; type2: word2", or "None" if none is listed. \n',
            "Assign one of the option categories to every listed entity of the text. "
            'Reply as "type1: word1; type2: word2", or "None" if no entity is listed. \n',
        ),
        "RE": (
            "Find the pairs of words in the text that stand in one of the option relations. "
            'Answer in the format "relation1: word1, word2; relation2: word3, word4", with the head word first, '
            'or "None" if there is none. \n',
            "Which entities of the text are linked by a listed relation? Write each link as relation, colon, "
            'head, comma, tail: "relation1: word1, word2; relation2: word3, word4". '
            'Write "None" when there is no link. \n',
            "Extract every relation of the given types that the text states, as "
            '"relation1: word1, word2; relation2: word3, word4" (head before tail); "None" if there is none. \n',
        ),
        "EP": (
            "Find the pairs of entities in the text that are linked by one of the option relations, "
            'without naming the relation. Answer in the format "word1, word2; word3, word4", head first, '
            'or "None" if there is none. \n',
            "List the head and tail of every relation of the given types that the text states, "
            'as "word1, word2; word3, word4". Write "None" when there is none. \n',
        ),
        "EPR": (
            "The related entity pairs of the text are listed below. Give the relation of each pair, chosen from "
            'the options, in the format "relation1: word1, word2; relation2: word3, word4", or "None" if no '
            "pair is listed. \n",
            "For every listed pair of entities, say which of the option relations links them. "
            'Reply as "relation1: word1, word2; relation2: word3, word4", or "None" if no pair is listed. \n',
        ),
        "EE": (
            "Find the events of the given types in the text, each with its trigger word and its arguments "
            'of the given roles. Answer in the format "( type1: trigger1, word1: role1, word2: role2 ), '
            '( type2: trigger2, None )", writing None for an event without arguments, or "None" if '
            "there is no event. \n",
            "Extract every event of the option types: its type, the word that triggers it, and each argument "
            'with its role, as "( type1: trigger1, word1: role1, word2: role2 )", events separated by commas. '
            'Write "None" when the text reports no event. \n',
        ),
        "EET": (
            "Find the events of the given types in the text and the word that triggers each. "
            'Answer in the format "type1: trigger1; type2: trigger2", or "None" if there is none. \n',
            "Which events of the option types does the text report, and which word triggers each? "
            'Reply as "type1: trigger1; type2: trigger2"; reply "None" if there is no event. \n',
        ),
        "EEA": (
            "An event of the type below occurs in the text. Find its arguments and their roles, chosen from the "
            'options. Answer in the format "word1: role1; word2: role2", or "None" if there is none. \n',
            "For the event type given, list each participant of the event in the text with its role from the "
            'options, as "word1: role1; word2: role2". Write "None" when no argument is stated. \n',
        ),
    }
)


def _fail(path: str, where: str, message: str) -> InstructionError:
    return InstructionError(f"{path}: {where}: {message}" if where else f"{path}: {message}")


def load_instruction_file(path: str | os.PathLike) -> InstructionSet:
    """Reads the paper's ``instruction_config.json`` shape and keeps its zero-shot instructions.

    The file is ``{task: [{"instruction_type": "zero-shot" | "few-shot", "instruction": str}, ...]}``. Texts are
    kept exactly (the paper's EET instruction ends in ``" "`` where the others end in ``" \\n"``). Few-shot
    entries are checked and dropped. A view the file lacks is an error only when it is asked for.
    """
    path = os.fspath(path)
    try:
        with open(path, encoding="utf-8") as f:
            raw: Any = json.load(f)
    except FileNotFoundError:
        raise InstructionError(f"{path}: instruction file not found") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise InstructionError(f"{path}: unreadable JSON: {e}") from None
    if not isinstance(raw, dict):
        raise _fail(path, "", f"expected an object {{task: [entries]}}, got {type(raw).__name__}")
    texts: dict[str, list[str]] = {}
    for task, entries in raw.items():
        if not isinstance(entries, list):
            raise _fail(path, f"task {task!r}", f"expected a list of entries, got {type(entries).__name__}")
        for i, entry in enumerate(entries):
            where = f"task {task!r} entry {i}"
            if not isinstance(entry, dict):
                raise _fail(path, where, f"expected an object, got {type(entry).__name__}")
            kind = entry.get("instruction_type")
            if kind not in INSTRUCTION_TYPES:
                raise _fail(
                    path, where, f"unknown instruction_type {kind!r}; expected one of {', '.join(INSTRUCTION_TYPES)}"
                )
            text = entry.get("instruction")
            if not isinstance(text, str):
                raise _fail(path, where, f"'instruction' must be a string, got {type(text).__name__}")
            if kind == "zero-shot":
                texts.setdefault(task, []).append(text)
    return InstructionSet({k: tuple(v) for k, v in texts.items()}, source=path)


def instruction_set(path: str | os.PathLike | None) -> InstructionSet:
    """The set read from ``path``, or :data:`DEFAULT_INSTRUCTIONS` when ``path`` is None or empty."""
    return load_instruction_file(path) if path else DEFAULT_INSTRUCTIONS
