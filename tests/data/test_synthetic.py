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


def _mentions(folder, split):
    recs, _ = folder.load(split, strict=True)
    if folder.task == "NER":
        return {(e.name, e.type) for r in recs for e in r.entities}, recs
    return {(m.name, m.type) for r in recs for rel in r.relations for m in (rel.head, rel.tail)}, recs


def test_eval_splits_hold_out_names_and_templates(tmp_path):
    """With ``held_out=True``, no dev or test mention occurs in train; some of their sentences are wrapped in
    held-out context; the parts of every mention are the training lists' parts.

    Checked against the generator's rules: train mentions are training combinations (or bare places) and
    dev/test mentions held-out ones under :func:`synthetic.is_held_out_name`; the mention strings are disjoint
    between train and dev/test, and a held-out place ("North Oslo") never occurs in a train sentence; the share
    of sentences in held-out context lies near HELD_OUT_TEMPLATE_SHARE, and no held-out opener or closer
    occurs in train.
    """
    sizes = {"train": 400, "dev": 100, "test": 150}
    folders = {d.task: d for d in synthetic.generate(tmp_path, sizes=sizes, held_out=True)}
    parts = {
        "person": (synthetic.FIRST_NAMES, synthetic.LAST_NAMES),
        "organization": (synthetic.ORGANIZATION_STEMS, synthetic.ORGANIZATION_KINDS),
        "product": (synthetic.PRODUCT_STEMS, synthetic.PRODUCT_KINDS),
        "location": (synthetic.PLACE_QUALIFIERS, synthetic.LOCATIONS),
    }

    def combination(name, kind):
        first, second = parts[kind]
        return any(name == f"{a} {b}" for a in first for b in second)

    for task in ("NER", "RE"):
        train, train_recs = _mentions(folders[task], "train")
        train_names = {n for n, _ in train}
        train_text = " ".join(r.sentence for r in train_recs)
        for name, kind in train:
            if kind == "location" and name in synthetic.LOCATIONS:
                continue
            assert combination(name, kind) and not synthetic.is_held_out_name(name), (task, name)
        assert any(n in synthetic.LOCATIONS for n, _ in train) and any(" " in n for n, k in train if k == "location")
        for split in synthetic.HELD_OUT_SPLITS:
            held, recs = _mentions(folders[task], split)
            assert held and not {n for n, _ in held} & train_names, (task, split)
            for name, kind in held:
                assert combination(name, kind) and synthetic.is_held_out_name(name), (task, split, name)
                if kind == "location":
                    assert name not in train_text, (task, split, name)
            held_out_context = sum(any(r.sentence.startswith(o) for o in synthetic.HELD_OUT_OPENERS) for r in recs)
            assert 0.15 * len(recs) < held_out_context < 0.45 * len(recs), (task, split, held_out_context)
        if task == "NER":  # mentions of a sentence share no word, so each occurs once: offsets are unambiguous
            for rec in train_recs:
                words = [w for e in rec.entities for w in e.name.split()]
                assert len(words) == len(set(words)), rec.sentence
                assert all(rec.sentence.count(e.name) == 1 for e in rec.entities), rec.sentence
        held_out_words = {w.lower() for c in synthetic.HELD_OUT_OPENERS + synthetic.HELD_OUT_CLOSERS for w in c.split()}
        train_words = {w.lower() for r in train_recs for w in r.sentence.split()}
        function_words = {",", "in", "an", "as", "is", "that", "said", "a", "at", "by", "all"}
        assert len(held_out_words - function_words) >= 12 and not (held_out_words - function_words) & train_words
        for context in synthetic.HELD_OUT_OPENERS + synthetic.HELD_OUT_CLOSERS:
            assert not any(context in r.sentence for r in train_recs), (task, context)
        # Training frames vary their context (openers and closers), sharing no content word with held-out context.
        opened = sum(any(r.sentence.startswith(o) for o in synthetic.TRAIN_OPENERS) for r in train_recs)
        assert 0.2 * len(train_recs) < opened < 0.5 * len(train_recs), (task, opened)


def test_default_corpus_keeps_the_closed_lists_in_every_split(tmp_path):
    """Without ``held_out`` every split draws from TRAIN_NAMES (the stream the shipped vocabulary was built on)."""
    folders = {d.task: d for d in synthetic.generate(tmp_path, sizes={"train": 60, "dev": 20, "test": 20})}
    names = synthetic.TRAIN_NAMES
    persons = {f"{f} {l}" for f in names.first_names for l in names.last_names}
    pools = {
        "person": persons,
        "location": set(names.locations),
        "organization": set(names.organizations),
        "product": set(names.products),
    }
    for split in ("train", "dev", "test"):
        for name, kind in _mentions(folders["NER"], split)[0]:
            assert name in pools[kind], (split, name, kind)


def test_held_out_names_tokenize_into_pieces_the_train_targets_contain(tmp_path):
    """A tiny model trained from scratch can only emit pieces it was trained to emit (module docstring of
    iuie.ie.synthetic): each held-out mention of the default-sized held-out corpus must split, under the
    shipped vocabulary, into pieces that occur in the train split's NER and RE targets. Checked with the
    sentencepiece processor itself."""
    import sentencepiece as spm

    from iuie.ie import formats, instructions
    from iuie.pipeline import vocab

    sp = spm.SentencePieceProcessor(model_file=vocab.DEFAULT_MODEL)
    seen: set[int] = set()
    held: set[str] = set()
    for folder in synthetic.generate(tmp_path, held_out=True):
        if folder.task not in ("NER", "RE"):
            continue
        labels, (recs, _) = folder.labels(), folder.load("train")
        views = [v for v, t in formats.SOURCE_TASK.items() if t == folder.task]
        for rec in recs:
            for view in views:
                ex = formats.format_view(view, rec, labels, instructions.DEFAULT_INSTRUCTIONS.choose(view))
                seen.update(sp.encode(ex.targets))
        for split in synthetic.HELD_OUT_SPLITS:
            held |= {name for name, _ in _mentions(folder, split)[0]}
    assert len(held) > 150
    for name in sorted(held):
        pieces = sp.encode(name)
        assert set(pieces) <= seen, (name, [sp.id_to_piece(i) for i in pieces if i not in seen])
