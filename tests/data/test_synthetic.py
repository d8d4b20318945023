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


def test_eval_splits_hold_out_names_and_templates(tmp_path):
    """dev and test mentions never occur in train; some of their sentences use held-out templates.

    Checked against the generator's own lists: every train mention comes from the training lists, every
    dev/test mention from the held-out lists, and the two sets of mention strings are disjoint.
    """
    sizes = {"train": 400, "dev": 100, "test": 150}
    folders = {d.task: d for d in synthetic.generate(tmp_path, sizes=sizes, held_out=True)}

    def mentions(task, split):
        recs, _ = folders[task].load(split, strict=True)
        if task == "NER":
            return {(e.name, e.type) for r in recs for e in r.entities}, recs
        return {(m.name, m.type) for r in recs for rel in r.relations for m in (rel.head, rel.tail)}, recs

    def allowed(names, kind):
        if kind == "person":
            return {f"{f} {l}" for f in names.first_names for l in names.last_names}
        return set(getattr(names, {"organization": "organizations"}.get(kind, f"{kind}s")))

    for task in ("NER", "RE"):
        train, _ = mentions(task, "train")
        train_names = {n for n, _ in train}
        for name, kind in train:
            assert name in allowed(synthetic.TRAIN_NAMES, kind), (task, name)
        for split in synthetic.HELD_OUT_SPLITS:
            held, recs = mentions(task, split)
            assert held and not {n for n, _ in held} & train_names, (task, split)
            for name, kind in held:
                assert name in allowed(synthetic.HELD_OUT_NAMES, kind), (task, split, name)
                assert name not in allowed(synthetic.TRAIN_NAMES, kind)
            frames = (
                synthetic.HELD_OUT_NER_TEMPLATES
                if task == "NER"
                else [t for t, _, _ in synthetic.HELD_OUT_RE_TEMPLATES]
            )
            prefixes = [f.split("{")[0] for f in frames if not f.startswith("{")]
            held_out_frames = sum(any(r.sentence.startswith(p) for p in prefixes) for r in recs)
            assert 0.1 * len(recs) < held_out_frames < 0.5 * len(recs), (task, split, held_out_frames)
        train_recs = mentions(task, "train")[1]
        prefixes = [
            f.split("{")[0]
            for f in synthetic.HELD_OUT_NER_TEMPLATES + tuple(t for t, _, _ in synthetic.HELD_OUT_RE_TEMPLATES)
            if not f.startswith("{")
        ]
        assert not any(r.sentence.startswith(p) for r in train_recs for p in prefixes)


def test_held_out_names_tokenize_into_pieces_the_train_targets_contain(tmp_path):
    """A tiny model trained from scratch can only emit pieces it was trained to emit (module docstring of
    iuie.ie.synthetic): each held-out name must split, under the shipped vocabulary, into pieces that occur
    in the train split's NER and RE targets. Checked with the sentencepiece processor itself."""
    import sentencepiece as spm

    from iuie.ie import formats, instructions
    from iuie.pipeline import vocab

    sp = spm.SentencePieceProcessor(model_file=vocab.DEFAULT_MODEL)
    seen: set[int] = set()
    for folder in synthetic.generate(tmp_path, sizes={"train": 1500, "dev": 1, "test": 1}):
        if folder.task not in ("NER", "RE"):
            continue
        labels, (recs, _) = folder.labels(), folder.load("train")
        views = [v for v, t in formats.SOURCE_TASK.items() if t == folder.task]
        for rec in recs:
            for view in views:
                ex = formats.format_view(view, rec, labels, instructions.DEFAULT_INSTRUCTIONS.choose(view))
                seen.update(sp.encode(ex.targets))
    names = synthetic.HELD_OUT_NAMES
    for name in names.first_names + names.last_names + names.locations + names.organizations + names.products:
        pieces = sp.encode(name)
        assert set(pieces) <= seen, (name, [sp.id_to_piece(i) for i in pieces if i not in seen])
