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

The evaluation splits measure generalisation, not recall of the training lists. ``train`` draws its
mentions from the training name lists and its sentences from the training templates; ``dev`` and ``test``
(:data:`HELD_OUT_SPLITS`) draw every mention from held-out lists that never occur in ``train`` (new first
names, surnames and places; organisations and products that recombine known words into names never seen
whole), and about a third of their sentences (:data:`HELD_OUT_TEMPLATE_SHARE`) from held-out sentence frames.
The held-out names are chosen so that the project's vocabulary splits them into pieces the training targets
contain: a tiny model trained from scratch has never learnt to emit any other piece (its output layer is not
tied to the embeddings), whereas a pretrained FlanT5 knows every piece. ``tests/data/test_synthetic.py``
checks both properties. Event triggers and weapons stay closed classes in every split.

About one record in ten has no structure at all (target ``None``), and RE records sometimes carry an ``NA``
pair, as the benchmark's RE sets do.
"""

from __future__ import annotations

import dataclasses
import json
import os
import random
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


TRAIN_NAMES = NameLists(FIRST_NAMES, LAST_NAMES, LOCATIONS, ORGANIZATIONS, PRODUCTS)
# Held out from train (module docstring): each name tokenizes into pieces that train targets contain.
HELD_OUT_NAMES = NameLists(
    first_names=(
        "Aron",
        "Axel",
        "Carla",
        "Dora",
        "Edgar",
        "Elsa",
        "Flora",
        "Helga",
        "Jasper",
        "Klara",
        "Laura",
        "Lorena",
        "Maren",
        "Vera",
    ),
    last_names=(
        "Berger",
        "Carlsson",
        "Castro",
        "Hansson",
        "Jensson",
        "Kaiser",
        "Karlsson",
        "Kraus",
        "Lind",
        "Olsson",
        "Petrova",
        "Sousa",
        "Torres",
    ),
    locations=("Basel", "Braga", "Dresden", "Leeds", "Odense", "Toledo", "Tours", "Verona"),
    organizations=(
        "Amber Systems",
        "Amber Press",
        "Vista Labs",
        "Vista Energy",
        "Granite Foods",
        "Falcon Grid",
        "Delta Motors",
        "Kestrel Pharma",
    ),
    products=(
        "Terra Pad",
        "Terra Drill",
        "Terra Boots",
        "Zephyr Watch",
        "Nimbus Bike",
        "Quanta Lamp",
        "Solara Phone",
        "Vertex Boots",
    ),
)
HELD_OUT_SPLITS = ("dev", "test")
# Share of held-out-split sentences written with a held-out template (the rest use the training templates).
HELD_OUT_TEMPLATE_SHARE = 0.3


def names_for(split: str) -> NameLists:
    """The name lists of ``split``: :data:`HELD_OUT_NAMES` for dev and test, :data:`TRAIN_NAMES` otherwise."""
    return HELD_OUT_NAMES if split in HELD_OUT_SPLITS else TRAIN_NAMES


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
# Held-out sentence frames (dev and test only): new context around the relation cues of the training
# templates, so a model must find mentions by role, not by memorised surrounding words.
HELD_OUT_NER_TEMPLATES = (
    "Yesterday {a:person} arrived in {b:location} by train .",
    "A spokesman for {a:organization} said the {b:product} sold out quickly .",
    "Local papers in {a:location} interviewed {b:person} and {c:person} .",
)
HELD_OUT_RE_TEMPLATES = (
    ("In an interview , {a:person} said she works for {b:organization} .", [("work for", "a", "b")], []),
    ("As everyone knows , {a:organization} is based in {b:location} .", [("located in", "a", "b")], []),
    ("Since 2010 {a:person} lives in {b:location} .", [("live in", "a", "b")], []),
)
HELD_OUT_EE_TEMPLATES = (
    (
        "Witnesses said {g:person} {t:attack_verb} {x:location} at dawn .",
        [("attack", "t", [("attacker", "g"), ("target", "x")])],
    ),
)
TRIGGER_POOLS = {
    "attack_verb": ("attacked", "bombed", "raided", "shelled"),
    "meet_verb": ("met", "visited", "hosted"),
    "meet_noun": ("held", "concluded"),
    "acquire_verb": ("acquired", "bought", "took over"),
}


def _fill(template: str, rng: random.Random, names: NameLists) -> tuple[str, dict[str, tuple[str, int, int, str]]]:
    """Fills ``{slot:kind}`` placeholders; returns the sentence and slot -> (text, start, end, kind).

    A value already used in the sentence is redrawn, so every mention occurs exactly once and offsets are
    unambiguous (the loader could re-align them, but the corpus should not need it).
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
        pool = TRIGGER_POOLS.get(kind)
        for _ in range(100):
            value = rng.choice(pool) if pool else names.draw(kind, rng)
            if value not in used:
                break
        used.add(value)
        start = sum(len(p) for p in out)
        out.append(value)
        slots[slot] = (value, start, start + len(value), kind)
        i = k + 1
    return "".join(out), slots


def _template(rng: random.Random, split: str, seen: Sequence[Any], held_out: Sequence[Any]) -> Any:
    """A training template, or for a held-out split a held-out one with :data:`HELD_OUT_TEMPLATE_SHARE`.

    The train split makes no extra draw, so its stream (and the shipped vocabulary built from it) is unchanged.
    """
    if split in HELD_OUT_SPLITS and rng.random() < HELD_OUT_TEMPLATE_SHARE:
        return rng.choice(held_out)
    return rng.choice(seen)


def _ner_record(rng: random.Random, split: str = "train") -> dict[str, Any]:
    if rng.random() < 0.1:
        return {"sentence": rng.choice(NER_EMPTY), "entities": []}
    template = _template(rng, split, NER_TEMPLATES, HELD_OUT_NER_TEMPLATES)
    sentence, slots = _fill(template, rng, names_for(split))
    entities = [{"name": t, "type": kind, "pos": [s, e]} for t, s, e, kind in slots.values()]
    return {"sentence": sentence, "entities": entities}


def _re_record(rng: random.Random, split: str = "train") -> dict[str, Any]:
    if rng.random() < 0.08:
        return {"sentence": rng.choice(RE_EMPTY), "relations": []}
    template, rels, na_pairs = _template(rng, split, RE_TEMPLATES, HELD_OUT_RE_TEMPLATES)
    sentence, slots = _fill(template, rng, names_for(split))

    def mention(slot: str) -> dict[str, Any]:
        text, s, e, kind = slots[slot]
        return {"name": text, "type": kind, "pos": [s, e]}

    relations = [{"head": mention(h), "type": r, "tail": mention(t)} for r, h, t in rels]
    relations += [{"head": mention(h), "type": "NA", "tail": mention(t)} for h, t in na_pairs]
    return {"sentence": sentence, "relations": relations}


def _ee_record(rng: random.Random, split: str = "train") -> dict[str, Any]:
    template, events = _template(rng, split, EE_TEMPLATES, HELD_OUT_EE_TEMPLATES)
    sentence, slots = _fill(template, rng, names_for(split))
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
    ``held_out=True`` the splits named in :data:`HELD_OUT_SPLITS` draw held-out names and templates (module
    docstring). The default keeps every split on the training lists: the demo's tiny model, trained from
    scratch for a few minutes, memorises the closed name lists rather than learning to copy unseen names
    (strict F1 0 on held-out names after 150 steps), so the demo and its >= 90 target use the default corpus.
    """
    sizes = {**DEFAULT_SIZES, **(sizes or {})}
    labels = _labels()
    root = os.fspath(root)
    for split, n in sizes.items():
        by_task: dict[str, list[dict[str, Any]]] = {}
        for task, make in (("NER", _ner_record), ("RE", _re_record), ("EE", _ee_record)):
            rng = random.Random(f"{seed}:{split}:{task}")
            # The makers only ask whether their split is a held-out one; "train" means no.
            by_task[task] = [make(rng, split if held_out else "train") for _ in range(n)]
        by_task["EET"] = by_task["EE"]
        by_task["EEA"] = _eea_records(by_task["EE"])
        for task, recs in by_task.items():
            folder = os.path.join(root, task, DATASET_NAME)
            _write_json(os.path.join(folder, f"{split}.json"), recs)
            _write_json(os.path.join(folder, records.LABELS_FILE), labels[task])
    return [records.DatasetFolder(root, task, DATASET_NAME) for task in records.TASKS]
