"""Unseen-label RE splits: the protocol of Chia et al. 2022 (RelationPrompt's write_data_splits).

Checked against: RelationPrompt's procedure restated in the test with the global ``random`` module exactly
as its ``Dataset.train_test_split(by_label=True)`` calls it (``random.seed(seed)`` then
``random.sample(sorted labels, k)``), and the layout loader in strict mode on the written folders.
"""

from __future__ import annotations

import json
import random

from iuie import cli
from iuie.ie import records as R
from iuie.ie import zeroshot_splits as Z

LABELS = [f"relation {c}" for c in "abcdefghijklmn"]  # 14 labels


def corpus() -> list[R.Record]:
    out = []
    for i in range(70):
        label = LABELS[i % len(LABELS)]
        sentence = f"Head{i} is linked to Tail{i} ."
        head = R.Entity(f"Head{i}", "", 0, len(f"Head{i}"))
        start = sentence.index(f"Tail{i}")
        tail = R.Entity(f"Tail{i}", "", start, start + len(f"Tail{i}"))
        out.append(R.Record(sentence, relations=(R.Relation(head, label, tail),)))
    return out


def relationprompt_labels(labels, seed, k):
    random.seed(seed)
    test = random.sample(labels, k=k)
    return sorted(set(labels) - set(test)), test


def test_label_choice_matches_relationprompt():
    recs = corpus()
    for seed in range(5):
        split = Z.make_split(recs, seed)
        train_labels, test_labels = relationprompt_labels(sorted(LABELS), seed, 5)
        train_labels, dev_labels = relationprompt_labels(train_labels, seed, 5)
        assert list(split.test_labels) == test_labels
        assert list(split.dev_labels) == dev_labels
        assert list(split.train_labels) == train_labels
        assert {r.relations[0].type for r in split.test} == set(test_labels)
        assert len(split.train) + len(split.dev) + len(split.test) == len(recs)


def test_splits_are_disjoint_and_seeds_differ():
    recs = corpus()
    seen = set()
    for seed in range(5):
        split = Z.make_split(recs, seed)
        assert not set(split.test_labels) & set(split.train_labels + split.dev_labels)
        assert not {r.sentence for r in split.test} & {r.sentence for r in split.train + split.dev}
        seen.add(split.test_labels)
    assert len(seen) == 5


def test_only_the_split_labels_triplets_are_kept():
    head, tail = R.Entity("A", "", 0, 1), R.Entity("B", "", 6, 7)
    rec = R.Record(
        "A and B", relations=(R.Relation(head, "x", tail), R.Relation(head, "y", tail), R.Relation(head, "NA", tail))
    )
    (kept,) = Z.filter_labels([rec], ["y"])
    assert [r.type for r in kept.relations] == ["y"]
    assert Z.relation_labels([rec]) == ["x", "y"]  # NA is no label


def test_cli_writes_loadable_folders(tmp_path):
    src = tmp_path / "raw" / "RE" / "FewRel"
    src.mkdir(parents=True)
    recs = corpus()
    (src / "train.json").write_text(json.dumps([r.to_json() for r in recs[:50]]))
    (src / "test.json").write_text(json.dumps([r.to_json() for r in recs[50:]]))
    (src / "labels.json").write_text(json.dumps(LABELS))
    assert cli.main(["zeroshot-splits", str(src), str(tmp_path / "out"), "--name", "fewrel", "--with-train"]) == 0
    for seed in range(5):
        folder = R.DatasetFolder(str(tmp_path / "out"), "RE", f"fewrel_{seed}")
        test, report = folder.load("test", strict=True)
        assert report.kept == report.total == len(test) > 0
        summary = json.loads((tmp_path / "out" / "RE" / f"fewrel_{seed}" / "split.json").read_text())
        assert list(folder.labels().types) == summary["test_labels"]
        train = R.DatasetFolder(str(tmp_path / "out"), "RE", f"fewrel_{seed}_train")
        assert train.load("train", strict=True)[1].kept == summary["sentences"]["train"]
    assert cli.main(["zeroshot-splits", str(tmp_path / "raw"), str(tmp_path / "o2"), "--name", "x"]) == 2
