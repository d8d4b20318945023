"""The dataset table against the reference's own task configs (InstructUIE's configs/*_configs/*.json).

Reference: the six ``{multi_task,zeroshot}_configs__{train,dev,test}_tasks.json`` of the InstructUIE
repository (copied in ``shared/data/instructuie_configs``): which folders each protocol trains and tests on.
"""

from __future__ import annotations

import json
import re

import pytest

from seqio_tasks import catalog

SAMPLE = re.compile(r"^(?P<base>.+)_sample_\d+$")
FAMILY = {
    "NER": "NER",
    "ES": "NER",
    "ET": "NER",
    "RE": "RE",
    "EP": "RE",
    "EPR": "RE",
    "EE": "EE",
    "EET": "EE",
    "EEA": "EE",
}


def _config(shared_data, name):
    path = shared_data / "instructuie_configs" / f"{name}.json"
    if not path.is_file():
        pytest.skip(f"reference config not found: {path}")
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def _names(config, views=None):
    """{(view, folder name as written)} of a config."""
    return {
        (view, e["dataset name"]) for view, entries in config.items() if views is None or view in views for e in entries
    }


def _base(name):
    m = SAMPLE.match(name)
    return m.group("base") if m else name


def test_counts_of_the_paper():
    # 21 NER + 8 RE + 4 EE folders in the supervised protocol; zero-shot trains on 18 NER + 6 RE.
    supervised = catalog.supervised()
    assert [sum(d.task == t for d in supervised) for t in ("NER", "RE", "EE")] == [21, 8, 4]
    train = catalog.zeroshot_train()
    assert [sum(d.task == t for d in train) for t in ("NER", "RE")] == [18, 6]
    assert all(d.task != "EE" for d in train)
    heldout = {d.name for d in catalog.zeroshot_heldout()}
    for name in (
        "CrossNER_AI",
        "CrossNER_literature",
        "CrossNER_music",
        "CrossNER_politics",
        "CrossNER_science",
        "mit-movie",
        "mit-restaurant",
    ):
        assert name in heldout
    assert {f"fewrel_{i}" for i in range(5)} | {f"wiki_{i}" for i in range(5)} <= heldout


def test_supervised_protocol_matches_reference_configs(shared_data):
    seen = set()
    for split in ("train", "dev", "test"):
        for view, name in _names(_config(shared_data, f"multi_task_configs__{split}_tasks")):
            entry = catalog.get(name)
            assert entry.supervised, name
            assert entry.task == FAMILY[view], (view, name)
            assert view in entry.views, (view, name)
            if name != entry.name:
                assert entry.sample_folder == name, name
            seen.add(entry.name)
    assert seen == {d.name for d in catalog.supervised()}
    # The views the reference trains on are exactly the registered views of each supervised dataset.
    trained = {(view, _base(name)) for view, name in _names(_config(shared_data, "multi_task_configs__train_tasks"))}
    registered = {(view, d.name) for d in catalog.supervised() for view in d.views}
    assert trained == registered
    # And the reference evaluates what iuie's supervised eval mixtures hold (iuie adds EE's main view).
    tested = {(view, _base(name)) for view, name in _names(_config(shared_data, "multi_task_configs__test_tasks"))}
    evaluated = {
        (view, d.name)
        for d in catalog.supervised()
        if d.supervised_eval
        for view in catalog.EVAL_VIEWS[d.task]
        if view in d.views
    }
    assert tested == {(v, n) for v, n in evaluated if v != "EE"}


def test_zeroshot_roles_match_reference_configs(shared_data):
    train = {_base(n) for _, n in _names(_config(shared_data, "zeroshot_configs__train_tasks"))}
    dev = {_base(n) for _, n in _names(_config(shared_data, "zeroshot_configs__dev_tasks"))}
    test = {_base(n) for _, n in _names(_config(shared_data, "zeroshot_configs__test_tasks"))}
    assert train == dev == {d.name for d in catalog.zeroshot_train()}
    assert test == {d.name for d in catalog.zeroshot_heldout()}
    assert not train & test


def test_every_shared_folder_is_in_the_catalog_or_documented(ie_instructions):
    # The shared slices use the released folder names; WNUT-17 is not one of the benchmark's datasets.
    from iuie.ie import records

    for folder in records.find_datasets(ie_instructions):
        if folder.name == "WNUT-17":
            continue
        entry = catalog.get(folder.name)
        assert FAMILY.get(folder.task, folder.task) == entry.task


def test_names():
    assert catalog.slug("CoNLL 2003") == "conll_2003"
    assert catalog.slug("New-York-Times-RE") == "new_york_times_re"
    assert catalog.slug("WikiANN en") == "wikiann_en"
    assert catalog.task_name("NER", "CoNLL 2003") == "iuie_ner_conll_2003"
    assert catalog.task_name("ES", "CoNLL 2003") == "iuie_es_conll_2003"
    assert catalog.task_name("EPR", "semval-RE", first10k=True) == "iuie_epr_semval_re_first10k"
    slugs = [d.slug for d in catalog.DATASETS]
    assert len(set(slugs)) == len(slugs)  # no two folders share a Task name
    assert catalog.get("NYT11_sample_30000").name == "NYT11"
    with pytest.raises(KeyError, match="register_dataset"):
        catalog.get("no such dataset")
