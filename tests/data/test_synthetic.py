"""The synthetic corpus: deterministic, valid in strict mode, and shaped like the benchmark.

Checked against: the records loader in strict mode (offsets must match the text) and hand-stated
properties of the generator (sizes, one event per EEA record, NA pairs and empty sentences present).
"""

from __future__ import annotations

import filecmp

from iuie.ie import records as R
from iuie.ie import synthetic


def test_same_seed_same_files_other_seed_other_files(tmp_path):
    sizes = {"train": 50, "dev": 10, "test": 10}
    synthetic.generate(tmp_path / "a", seed=3, sizes=sizes)
    synthetic.generate(tmp_path / "b", seed=3, sizes=sizes)
    synthetic.generate(tmp_path / "c", seed=4, sizes=sizes)
    for task in R.TASKS:
        for split in sizes:
            rel = f"{task}/synthetic/{split}.json"
            assert filecmp.cmp(tmp_path / "a" / rel, tmp_path / "b" / rel, shallow=False)
            assert not filecmp.cmp(tmp_path / "a" / rel, tmp_path / "c" / rel, shallow=False)


def test_split_streams_are_independent(tmp_path):
    synthetic.generate(tmp_path / "a", sizes={"train": 20, "dev": 5, "test": 5})
    synthetic.generate(tmp_path / "b", sizes={"train": 40, "dev": 5, "test": 5})
    assert filecmp.cmp(tmp_path / "a/NER/synthetic/test.json", tmp_path / "b/NER/synthetic/test.json", shallow=False)


def test_corpus_is_valid_and_benchmark_shaped(synthetic_root):
    folders = {d.task: d for d in R.find_datasets(synthetic_root)}
    assert set(folders) == set(R.TASKS)
    loaded = {}
    for task, ds in folders.items():
        for split, n in synthetic.DEFAULT_SIZES.items():
            recs, report = ds.load(split, strict=True)
            assert report.kept == report.total
            if task != "EEA":
                assert len(recs) == n
            loaded[task, split] = recs
    train = loaded["NER", "train"]
    assert any(not r.entities for r in train)
    for rec in train:
        for e in rec.entities:
            assert rec.sentence.count(e.name) == 1  # every mention occurs once: offsets are unambiguous
    assert any(rel.type == "NA" for r in loaded["RE", "train"] for rel in r.relations)
    assert any(len(r.relations) == 2 for r in loaded["RE", "train"])
    assert all(len(r.events) == 1 for r in loaded["EEA", "train"])
    assert len(loaded["EEA", "train"]) == sum(len(r.events) for r in loaded["EE", "train"])
    assert {e.type for r in loaded["EE", "train"] for e in r.events} == set(synthetic.EVENT_ROLES)
