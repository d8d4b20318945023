"""A small, learnable synthetic IE corpus in the IE INSTRUCTIONS layout.

It is the embedded default of the demo and of every test that needs no real data: nothing is downloaded,
and the same seed always writes the same files. The corpus is built to be *learnable* by a tiny FlanT5 in
minutes on a CPU: mentions come from closed name lists, sentences from a few dozen templates, and each
template fixes which mention plays which role. What the model must learn is still the real job: read the
option list, find the mentions, type them, pair them, and print the view's output format.

Layout written under ``root`` (dataset name ``synthetic``)::

    NER/synthetic/{train,dev,test}.json + labels.json   entities (person, location, organization, product)
    RE/synthetic/...                                     relations (work for, live in, located in, produce)
    EE/synthetic/...  EET/synthetic/...                  events (attack, meet, acquire), one or two per sentence
    EEA/synthetic/...                                    one event per record, as the benchmark's EEA sets

Two variants. The default corpus draws every split from the same closed name lists (:data:`TRAIN_NAMES`):
the stream the shipped vocabulary was built on, and the fixed corpus of the tests. ``generate(held_out=True)``
(the demo's corpus) measures generalisation instead: mentions are combinations of the lists' parts
(:class:`RecombinedNames`: "Anna Costa", "Delta Pharma", "North Oslo"), split once and for all into training
and held-out combinations, so no ``dev`` or ``test`` (:data:`HELD_OUT_SPLITS`) mention ever occurs in
``train``; about a third of their sentences (:data:`HELD_OUT_TEMPLATE_SHARE`) are also wrapped in context
words that never occur in ``train`` (:data:`HELD_OUT_OPENERS`). Event triggers and weapons stay closed classes in every split.

About one record in ten has no structure at all (target ``None``), and RE records sometimes carry an ``NA``
pair, as the benchmark's RE sets do.
"""

from __future__ import annotations

import dataclasses
import json
import os
import random
import zlib
from collections.abc import Sequence
from typing import Any

from iuie.ie import records

DATASET_NAME = "synthetic"
DEFAULT_SIZES = {"train": 3000, "dev": 300, "test": 300}

FIRST_NAMES = (
    "Anna",
    "Boris",
    "Clara",
    "David",
    "Elena",
    "Felix",
    "Greta",
    "Hugo",
    "Irene",
    "Jonas",
    "Karla",
    "Lukas",
    "Marta",
    "Nils",
    "Olga",
    "Pablo",
    "Rosa",
    "Simon",
    "Tanja",
    "Victor",
)
LAST_NAMES = (
    "Berg",
    "Costa",
    "Dahl",
    "Eriksen",
    "Fischer",
    "Gomez",
    "Hansen",
    "Ivanova",
    "Jensen",
    "Keller",
    "Larsen",
    "Moreau",
    "Novak",
    "Olsen",
    "Petrov",
    "Quist",
    "Romero",
    "Svensson",
)
LOCATIONS = (
    "Lisbon",
    "Oslo",
    "Prague",
    "Vienna",
    "Madrid",
    "Dublin",
    "Warsaw",
    "Athens",
    "Helsinki",
    "Zurich",
    "Geneva",
    "Porto",
    "Krakow",
    "Bergen",
    "Seville",
    "Lyon",
)
ORGANIZATIONS = (
    "Nordwind Bank",
    "Atlas Motors",
    "Blue Harbor Labs",
    "Crescent Foods",
    "Delta Grid",
    "Evergreen Press",
    "Falcon Air",
    "Granite Systems",
    "Helios Energy",
    "Iris Pharma",
    "Juniper Networks Group",
    "Kestrel Studios",
)
PRODUCTS = (
    "Aurora X2",
    "Nimbus Pad",
    "Vertex Drill",
    "Solara Lamp",
    "Quanta Watch",
    "Zephyr Bike",
    "Orion Phone",
    "Tundra Boots",
)
WEAPONS = ("rockets", "drones", "grenades", "artillery")

NER_TYPES = ("person", "location", "organization", "product")
RE_TYPES = ("work for", "live in", "located in", "produce")
EVENT_ROLES = {
    "attack": ("attacker", "target", "instrument", "place"),
    "meet": ("participant", "place"),
    "acquire": ("buyer", "acquired", "place"),
}

# ---------------------------------------------------------------------------------------------------------
# Templates. A template is a list of pieces: plain text, or (slot, kind) where kind names a pool. Slots
# become mentions; the template's structure says how they relate.
# ---------------------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class NameLists:
    """The closed lists one split draws its mentions from."""

    first_names: tuple[str, ...]
    last_names: tuple[str, ...]
    locations: tuple[str, ...]
    organizations: tuple[str, ...]
    products: tuple[str, ...]
    weapons: tuple[str, ...] = WEAPONS

    def draw(self, kind: str, rng: random.Random) -> str:
        """One mention of pool ``kind`` (person, location, organization, product, weapon)."""
        if kind == "person":
            return f"{rng.choice(self.first_names)} {rng.choice(self.last_names)}"
        return rng.choice(getattr(self, {"organization": "organizations"}.get(kind, f"{kind}s")))

    def clashes(self, value: str, used: set[str]) -> bool:
        """Whether ``value`` may not join a sentence already holding ``used`` (each mention occurs once)."""
        return value in used


TRAIN_NAMES = NameLists(FIRST_NAMES, LAST_NAMES, LOCATIONS, ORGANIZATIONS, PRODUCTS)
# ---------------------------------------------------------------------------------------------------------
# Recombined names (``generate(held_out=True)``): every mention is built from parts, and the combinations
# are split once and for all into training and held-out ones by a hash of their spelling, so no dev or test
# mention ever occurs in train as a whole (nor, for places, anywhere in a train sentence). The parts are
# the training lists' own: a person is a first name and a surname, an organisation or a product a stem and a
# kind ("Delta" + "Pharma"), a place one of the training places or a place with a qualifier ("North
# Lisbon"). Why parts the model has seen: the demo's tiny model, trained from scratch for minutes, learns
# to find a mention and write parts it has written before, but not to copy a new sequence of pieces off the
# input. Tried and measured (docs/demo.md): with wholly new made-up words (their pieces all in the training
# targets) it scored strict F1 0-4 after 1,000 steps, its outputs well-formed but its names invented; a
# pretrained FlanT5 copies such words, a tiny one does not learn to in ten CPU minutes. Every held-out part
# still tokenizes into pieces the training targets contain (checked in tests/data/test_synthetic.py).
# ---------------------------------------------------------------------------------------------------------
ORGANIZATION_STEMS = (
    "Nordwind", "Atlas", "Blue Harbor", "Crescent", "Delta", "Evergreen",
    "Falcon", "Granite", "Helios", "Iris", "Juniper", "Kestrel",
)  # fmt: skip
ORGANIZATION_KINDS = ("Bank", "Motors", "Labs", "Foods", "Grid", "Press", "Air", "Systems", "Energy", "Pharma")
PRODUCT_STEMS = ("Aurora", "Nimbus", "Vertex", "Solara", "Quanta", "Zephyr", "Orion", "Tundra")
PRODUCT_KINDS = ("X2", "Pad", "Drill", "Lamp", "Watch", "Bike", "Phone", "Boots")
PLACE_QUALIFIERS = ("North", "South", "East", "West", "New", "Upper", "Lower", "Old")
# One combination in HELD_OUT_SHARE_INVERSE is held out (by the CRC-32 of its spelling: stable across runs).
HELD_OUT_SHARE_INVERSE = 4


def is_held_out_name(name: str) -> bool:
    """Whether a recombined mention belongs to the held-out splits (a fixed partition of all combinations)."""
    return zlib.crc32(name.encode("utf-8")) % HELD_OUT_SHARE_INVERSE == 0


@dataclasses.dataclass(frozen=True)
class RecombinedNames:
    """Mentions combined from the training lists' parts: training combinations for train, held-out ones for dev
    and test. A place is qualified one time in three in train and always in the held-out splits (a bare place
    is one word: it cannot be held out by recombination)."""

    held_out: bool
    weapons: tuple[str, ...] = WEAPONS

    def _combine(self, make: Any) -> str:
        while True:
            name = make()
            if is_held_out_name(name) == self.held_out:
                return name

    def draw(self, kind: str, rng: random.Random) -> str:
        """One mention of pool ``kind`` (person, location, organization, product, weapon)."""
        if kind == "person":
            return self._combine(lambda: f"{rng.choice(FIRST_NAMES)} {rng.choice(LAST_NAMES)}")
        if kind == "organization":
            return self._combine(lambda: f"{rng.choice(ORGANIZATION_STEMS)} {rng.choice(ORGANIZATION_KINDS)}")
        if kind == "product":
            return self._combine(lambda: f"{rng.choice(PRODUCT_STEMS)} {rng.choice(PRODUCT_KINDS)}")
        if kind == "location":
            if not self.held_out and rng.random() < 2 / 3:
                return rng.choice(LOCATIONS)  # bare places are training names
            return self._combine(lambda: f"{rng.choice(PLACE_QUALIFIERS)} {rng.choice(LOCATIONS)}")
        return rng.choice(self.weapons)

    def clashes(self, value: str, used: set[str]) -> bool:
        """Whether ``value`` may not join a sentence holding ``used``: it shares a word with a mention there
        (``Oslo`` beside ``North Oslo`` would make the mention's offsets ambiguous)."""
        words = set(value.split())
        return any(words & set(u.split()) for u in used)


HELD_OUT_SPLITS = ("dev", "test")
# Share of held-out-split sentences wrapped in held-out context (HELD_OUT_OPENERS; the rest in training context).
HELD_OUT_TEMPLATE_SHARE = 0.3


def names_for(split: str, held_out: bool = False) -> NameLists | RecombinedNames:
    """Where ``split`` draws its mentions: the closed :data:`TRAIN_NAMES` by default; with ``held_out``
    recombined names, held-out combinations for :data:`HELD_OUT_SPLITS` and training ones otherwise."""
    if not held_out:
        return TRAIN_NAMES
    return RecombinedNames(held_out=split in HELD_OUT_SPLITS)


NER_TEMPLATES = (
    "{a:person} visited {b:location} last spring .",
    "{a:organization} opened a new office in {b:location} .",
    "{a:person} and {b:person} met at a conference .",
    "The new {a:product} was presented by {b:organization} .",
    "According to {a:person} , {b:organization} will expand to {c:location} .",
    "Reporters in {a:location} asked {b:person} about the {c:product} .",
    "{a:organization} hired {b:person} as chief engineer .",
    "Sales of the {a:product} doubled in {b:location} this year .",
    "{a:person} flew from {b:location} to {c:location} on Monday .",
    "Shares of {a:organization} fell after the {b:product} recall .",
)
# Frames whose slots take any entity type (``any``: drawn per sentence), used by the held-out corpus only: in
# the fixed frames above the frame decides every type, and a model trained on them alone types the mentions
# of a new frame by guesswork; here only the mention itself says what it is.
NER_NEUTRAL_TEMPLATES = (
    "{a:any} was in the news again .",
    "Everyone was talking about {a:any} and {b:any} .",
    "The report mentioned {a:any} , {b:any} and {c:any} .",
    "Few people had heard of {a:any} before .",
)
NER_EMPTY = (
    "It rained all day and nobody went outside .",
    "The meeting was postponed again .",
    "Prices rose slightly in the second quarter .",
    "Nothing unusual happened this week .",
)

# (template, [(relation, head slot, tail slot)], extra NA pairs)
RE_TEMPLATES = (
    ("{a:person} works for {b:organization} .", [("work for", "a", "b")], []),
    ("{a:person} , an engineer at {b:organization} , gave a talk .", [("work for", "a", "b")], []),
    ("{a:person} lives in {b:location} with her family .", [("live in", "a", "b")], []),
    ("{a:person} moved to {b:location} years ago and still lives there .", [("live in", "a", "b")], []),
    ("{a:organization} is based in {b:location} .", [("located in", "a", "b")], []),
    ("The headquarters of {a:organization} are in {b:location} .", [("located in", "a", "b")], []),
    ("{a:organization} makes the {b:product} .", [("produce", "a", "b")], []),
    ("The {a:product} is produced by {b:organization} .", [("produce", "a", "b")], []),
    (
        "{a:person} , who lives in {b:location} , works for {c:organization} .",
        [("live in", "a", "b"), ("work for", "a", "c")],
        [],
    ),
    (
        "{a:organization} , based in {b:location} , makes the {c:product} .",
        [("located in", "a", "b"), ("produce", "a", "c")],
        [],
    ),
    ("{a:person} once read about {b:organization} in a magazine .", [], [("a", "b")]),
    ("{a:person} saw the {b:product} at a fair in {c:location} .", [], [("a", "b")]),
)
RE_EMPTY = ("The weather was mild for the season .", "A long queue formed outside the station .")

# (template, [(event type, trigger slot, [(role, slot)])])
EE_TEMPLATES = (
    (
        "{g:person} {t:attack_verb} {x:location} with {w:weapon} .",
        [("attack", "t", [("attacker", "g"), ("target", "x"), ("instrument", "w")])],
    ),
    ("Militants {t:attack_verb} a convoy near {p:location} .", [("attack", "t", [("place", "p")])]),
    (
        "{a:person} {t:meet_verb} {b:person} in {p:location} .",
        [("meet", "t", [("participant", "a"), ("participant", "b"), ("place", "p")])],
    ),
    ("{a:organization} {t:acquire_verb} {b:organization} .", [("acquire", "t", [("buyer", "a"), ("acquired", "b")])]),
    (
        "{a:organization} {t:acquire_verb} {b:organization} in {p:location} .",
        [("acquire", "t", [("buyer", "a"), ("acquired", "b"), ("place", "p")])],
    ),
    (
        "{a:person} {t:meet_verb} {b:person} , and later {g:person} {u:attack_verb} {x:location} .",
        [
            ("meet", "t", [("participant", "a"), ("participant", "b")]),
            ("attack", "u", [("attacker", "g"), ("target", "x")]),
        ],
    ),
    (
        "After the talks were {t:meet_noun} , {a:organization} {u:acquire_verb} {b:organization} .",
        [("meet", "t", []), ("acquire", "u", [("buyer", "a"), ("acquired", "b")])],
    ),
)
TRIGGER_POOLS = {
    "attack_verb": ("attacked", "bombed", "raided", "shelled"),
    "meet_verb": ("met", "visited", "hosted"),
    "meet_noun": ("held", "concluded"),
    "acquire_verb": ("acquired", "bought", "took over"),
}


def _fill(
    template: str, rng: random.Random, names: NameLists | RecombinedNames
) -> tuple[str, dict[str, tuple[str, int, int, str]]]:
    """Fills ``{slot:kind}`` placeholders; returns the sentence and slot -> (text, start, end, kind).

    A value that clashes with one already in the sentence (the same trigger, or a name its ``names.clashes``
    refuses) is redrawn, so every mention occurs exactly once and offsets are unambiguous (the loader could
    re-align them, but the corpus should not need it).
    """
    out, slots, used = [], {}, set()
    i = 0
    while i < len(template):
        j = template.find("{", i)
        if j == -1:
            out.append(template[i:])
            break
        out.append(template[i:j])
        k = template.index("}", j)
        slot, kind = template[j + 1 : k].split(":")
        if kind == "any":
            kind = rng.choice(NER_TYPES)
        pool = TRIGGER_POOLS.get(kind)
        for _ in range(100):
            value = rng.choice(pool) if pool else names.draw(kind, rng)
            if not (value in used if pool else names.clashes(value, used)):
                break
        used.add(value)
        start = sum(len(p) for p in out)
        out.append(value)
        slots[slot] = (value, start, start + len(value), kind)
        i = k + 1
    return "".join(out), slots


# Context a sentence of the held-out corpus is wrapped in. Training frames get an opener and a closer from the
# TRAIN_ lists about a third of the time each: with only a dozen frames per task, a tiny model learns the
# frames' words as cues, and varied context teaches it that the words around a mention change. A share of
# dev and test sentences (HELD_OUT_TEMPLATE_SHARE) instead wraps a frame in held-out context, words that
# never occur in train. Why not wholly new frames: measured (docs/demo.md), the demo's tiny model typed the
# mentions of three new NER frames wrong in every sentence (0 of 31 right after 600 steps) while it
# extracted unseen names from known frames; new context around known relation cues is what it can learn.
TRAIN_OPENERS = (
    "On Monday ,",
    "Last year ,",
    "In March ,",
    "Reports say that",
    "Officials confirmed that",
    "According to the press ,",
    "Earlier this week ,",
    "It was announced that",
)
TRAIN_CLOSERS = (", officials said", ", the report says", "earlier this month", ", on schedule", "last week")
HELD_OUT_OPENERS = (
    "Yesterday ,",
    "In an interview ,",
    "As is well known ,",
    "Witnesses said that",
    "Since 2010 ,",
    "Local papers wrote that",
)
HELD_OUT_CLOSERS = (", a spokesman added", "at dawn", ", witnesses said", "by all accounts")
DECORATION_SHARE = 0.35  # chance of a training opener, and independently of a training closer


def _wrap(template: str, opener: str | None, closer: str | None) -> str:
    if opener:
        if not template.startswith("{"):
            template = template[0].lower() + template[1:]
        template = f"{opener} {template}"
    if closer:
        template = f"{template[:-2]} {closer} ."  # every template ends in " ."
    return template


def _decorate(template: str, rng: random.Random, held_out_context: bool) -> str:
    if held_out_context:  # at least an opener, so every such sentence holds unseen words
        closer = rng.choice(HELD_OUT_CLOSERS) if rng.random() < 0.5 else None
        return _wrap(template, rng.choice(HELD_OUT_OPENERS), closer)
    opener = rng.choice(TRAIN_OPENERS) if rng.random() < DECORATION_SHARE else None
    closer = rng.choice(TRAIN_CLOSERS) if rng.random() < DECORATION_SHARE else None
    return _wrap(template, opener, closer)


def _template(rng: random.Random, split: str, held_out: bool, frames: Sequence[Any]) -> Any:
    """One of ``frames``; in the held-out corpus wrapped in context (see :data:`TRAIN_OPENERS`): held-out
    context for :data:`HELD_OUT_TEMPLATE_SHARE` of the held-out splits' sentences, training context otherwise.

    The default corpus makes no extra draw, so its stream (and the shipped vocabulary built from it) is unchanged.
    """
    chosen = rng.choice(frames)
    if not held_out:
        return chosen
    held_out_context = split in HELD_OUT_SPLITS and rng.random() < HELD_OUT_TEMPLATE_SHARE
    if isinstance(chosen, str):
        return _decorate(chosen, rng, held_out_context)
    return (_decorate(chosen[0], rng, held_out_context), *chosen[1:])


def _ner_record(rng: random.Random, split: str = "train", held_out: bool = False) -> dict[str, Any]:
    if rng.random() < 0.1:
        return {"sentence": rng.choice(NER_EMPTY), "entities": []}
    template = _template(rng, split, held_out, NER_TEMPLATES + NER_NEUTRAL_TEMPLATES if held_out else NER_TEMPLATES)
    sentence, slots = _fill(template, rng, names_for(split, held_out))
    entities = [{"name": t, "type": kind, "pos": [s, e]} for t, s, e, kind in slots.values()]
    return {"sentence": sentence, "entities": entities}


def _re_record(rng: random.Random, split: str = "train", held_out: bool = False) -> dict[str, Any]:
    if rng.random() < 0.08:
        return {"sentence": rng.choice(RE_EMPTY), "relations": []}
    template, rels, na_pairs = _template(rng, split, held_out, RE_TEMPLATES)
    sentence, slots = _fill(template, rng, names_for(split, held_out))

    def mention(slot: str) -> dict[str, Any]:
        text, s, e, kind = slots[slot]
        return {"name": text, "type": kind, "pos": [s, e]}

    relations = [{"head": mention(h), "type": r, "tail": mention(t)} for r, h, t in rels]
    relations += [{"head": mention(h), "type": "NA", "tail": mention(t)} for h, t in na_pairs]
    return {"sentence": sentence, "relations": relations}


def _ee_record(rng: random.Random, split: str = "train", held_out: bool = False) -> dict[str, Any]:
    template, events = _template(rng, split, held_out, EE_TEMPLATES)
    sentence, slots = _fill(template, rng, names_for(split, held_out))
    out = []
    for etype, trigger_slot, args in events:
        text, s, e, _ = slots[trigger_slot]
        arguments = [{"name": slots[a][0], "role": role, "pos": [slots[a][1], slots[a][2]]} for role, a in args]
        out.append({"trigger": text, "type": etype, "pos": [s, e], "arguments": arguments})
    return {"sentence": sentence, "events": out}


def _eea_records(ee_records: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """One record per event, as the benchmark's EEA folders hold them."""
    return [{"sentence": r["sentence"], "events": [event]} for r in ee_records for event in r["events"]]


def _labels() -> dict[str, Any]:
    event_types = list(EVENT_ROLES)
    all_roles = sorted({r for roles in EVENT_ROLES.values() for r in roles})
    by_type = {t: list(roles) for t, roles in EVENT_ROLES.items()}
    return {
        "NER": list(NER_TYPES),
        "RE": list(RE_TYPES),
        "EE": [event_types, all_roles],
        "EET": by_type,
        "EEA": by_type,
    }


def _write_json(path: str, obj: Any) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = f"{path}.tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(obj, f, ensure_ascii=False, indent=1)
    os.replace(tmp, path)  # readers never see a half-written file


def generate(
    root: str | os.PathLike, *, seed: int = 0, sizes: dict[str, int] | None = None, held_out: bool = False
) -> list[records.DatasetFolder]:
    """Writes the corpus under ``root`` and returns its dataset folders (NER, RE, EE, EET, EEA).

    ``sizes`` gives the number of sentences per split (EEA splits hold one record per event, so more).
    Each split has its own random stream, so changing the train size leaves dev and test unchanged. With
    ``held_out=True`` mentions are recombined names and the splits named in :data:`HELD_OUT_SPLITS` draw
    held-out combinations, some in held-out context (module docstring); the default keeps every split on the
    closed lists.
    """
    sizes = {**DEFAULT_SIZES, **(sizes or {})}
    labels = _labels()
    root = os.fspath(root)
    for split, n in sizes.items():
        by_task: dict[str, list[dict[str, Any]]] = {}
        for task, make in (("NER", _ner_record), ("RE", _re_record), ("EE", _ee_record)):
            rng = random.Random(f"{seed}:{split}:{task}")
            by_task[task] = [make(rng, split, held_out) for _ in range(n)]
        by_task["EET"] = by_task["EE"]
        by_task["EEA"] = _eea_records(by_task["EE"])
        for task, recs in by_task.items():
            folder = os.path.join(root, task, DATASET_NAME)
            _write_json(os.path.join(folder, f"{split}.json"), recs)
            _write_json(os.path.join(folder, records.LABELS_FILE), labels[task])
    return [records.DatasetFolder(root, task, DATASET_NAME) for task in records.TASKS]
