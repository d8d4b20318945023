"""Unseen-label relation splits (FewRel, Wiki-ZSL) by the protocol of Chia et al. 2022 (RelationPrompt).

InstructUIE's zero-shot RE test sets ``fewrel_0`` ... ``fewrel_4`` and ``wiki_0`` ... ``wiki_4`` follow
RelationPrompt's ``write_data_splits``: for each seed ``s``,

1. the relation labels of the whole corpus are sorted, Python's ``random`` is seeded with ``s`` and
   ``random.sample(labels, k=num_unseen)`` picks the unseen *test* labels; the rest are training labels;
2. the same is done again on the training side (re-seeded with ``s``) to pick ``num_dev`` *dev* labels;
3. a split keeps the sentences that hold at least one triplet of its labels, and only those triplets; a
   training sentence whose text also occurs in the held-out split is removed (no sentence overlap).

Because the procedure uses Python's ``random`` the same way, the same corpus and seed give the same label
choice as RelationPrompt. Each seed is written as a dataset folder of the IE INSTRUCTIONS layout,
``<out_root>/RE/<name>_<seed>/``: ``test.json`` with the unseen-label sentences, ``labels.json`` with the
unseen labels (the options a zero-shot model is given), ``train.json`` / ``dev.json`` only when
``with_train`` is set (their labels differ from the test labels, so they are written to a sibling folder
``<name>_<seed>_train`` whose ``labels.json`` lists the training labels and whose ``dev.json`` holds the dev
labels' sentences), and ``split.json`` recording the seed and the three label lists.
"""

from __future__ import annotations

import dataclasses
import json
import os
import random
from collections.abc import Iterable, Sequence

from iuie.ie import records as R


@dataclasses.dataclass(frozen=True)
class UnseenSplit:
    seed: int
    train_labels: tuple[str, ...]
    dev_labels: tuple[str, ...]
    test_labels: tuple[str, ...]
    train: tuple[R.Record, ...]
    dev: tuple[R.Record, ...]
    test: tuple[R.Record, ...]


def relation_labels(records: Iterable[R.Record]) -> list[str]:
    """The sorted set of (counting) relation labels, as RelationPrompt's ``get_labels``."""
    return sorted({rel.type for rec in records for rel in rec.relations if R.counts(rel.type)})


def filter_labels(records: Iterable[R.Record], labels: Iterable[str]) -> list[R.Record]:
    """Sentences with at least one triplet of ``labels``, keeping only those triplets."""
    keep = set(labels)
    out = []
    for rec in records:
        relations = tuple(rel for rel in rec.relations if rel.type in keep)
        if relations:
            out.append(dataclasses.replace(rec, relations=relations))
    return out


def _split_by_label(
    records: Sequence[R.Record], k: int, seed: int
) -> tuple[list[str], list[str], list[R.Record], list[R.Record]]:
    labels = relation_labels(records)
    if k >= len(labels):
        raise ValueError(f"cannot hold out {k} labels from a corpus with {len(labels)} relation labels")
    rng = random.Random(seed)  # RelationPrompt calls random.seed(seed) then random.sample
    held_out = rng.sample(labels, k=k)
    kept = sorted(set(labels) - set(held_out))
    held = filter_labels(records, held_out)
    banned = {rec.sentence for rec in held}
    rest = [rec for rec in filter_labels(records, kept) if rec.sentence not in banned]
    return kept, held_out, rest, held


def make_split(records: Sequence[R.Record], seed: int, num_unseen: int = 5, num_dev: int = 5) -> UnseenSplit:
    train_labels, test_labels, train, test = _split_by_label(records, num_unseen, seed)
    train_labels, dev_labels, train, dev = _split_by_label(train, num_dev, seed)
    return UnseenSplit(
        seed, tuple(train_labels), tuple(dev_labels), tuple(test_labels), tuple(train), tuple(dev), tuple(test)
    )


def _write(folder: str, split_records: dict[str, Sequence[R.Record]], labels: Sequence[str]) -> None:
    os.makedirs(folder, exist_ok=True)
    for split, recs in split_records.items():
        with open(os.path.join(folder, f"{split}.json"), "w", encoding="utf-8") as f:
            json.dump([r.to_json() for r in recs], f, ensure_ascii=False, indent=1)
    with open(os.path.join(folder, R.LABELS_FILE), "w", encoding="utf-8") as f:
        json.dump(list(labels), f, ensure_ascii=False)


def write_splits(
    records: Sequence[R.Record],
    out_root: str,
    name: str,
    *,
    seeds: Sequence[int] = (0, 1, 2, 3, 4),
    num_unseen: int = 5,
    num_dev: int = 5,
    with_train: bool = False,
) -> list[UnseenSplit]:
    """Writes ``<out_root>/RE/<name>_<seed>`` for each seed (see the module docstring)."""
    splits = []
    for seed in seeds:
        split = make_split(records, seed, num_unseen, num_dev)
        folder = os.path.join(out_root, "RE", f"{name}_{seed}")
        _write(folder, {"test": split.test}, split.test_labels)
        if with_train:
            _write(f"{folder}_train", {"train": split.train, "dev": split.dev}, split.train_labels + split.dev_labels)
        summary = {
            "protocol": "Chia et al. 2022 (RelationPrompt write_data_splits)",
            "seed": seed,
            "test_labels": split.test_labels,
            "dev_labels": split.dev_labels,
            "train_labels": split.train_labels,
            "sentences": {"train": len(split.train), "dev": len(split.dev), "test": len(split.test)},
        }
        with open(os.path.join(folder, "split.json"), "w", encoding="utf-8") as f:
            json.dump(summary, f, ensure_ascii=False, indent=1)
        splits.append(split)
    return splits
