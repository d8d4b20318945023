"""Every registered name resolves, eval Tasks are complete, rates and caps, zero-shot hold-out.

Reference: seqio's own registry and rate function (``seqio.get_mixture_or_task``, ``seqio.get_subtasks``,
``Mixture.get_rate``, ``seqio.mixing_rate_num_examples``) and ``evaluation.get_valid_eval_tasks``, the
function with which seqio's Evaluator silently drops a Task without metrics or without the split.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import seqio
from seqio import evaluation

import gin
import seqio_tasks
from iuie.pipeline import seqio_data
from seqio_tasks import catalog, mixtures

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _names(mixture):
    return {t.name for t in seqio.get_subtasks(seqio.get_mixture_or_task(mixture))}


def test_every_registered_name_resolves():
    assert len(seqio_tasks.TASK_NAMES) == len(set(seqio_tasks.TASK_NAMES))
    for name in seqio_tasks.TASK_NAMES:
        task = seqio.get_mixture_or_task(name)
        assert isinstance(task, seqio.Task)
        assert set(task.output_features) == {"inputs", "targets"}
        assert all(f.add_eos for f in task.output_features.values())
        assert task.output_features["inputs"].required
        assert task.splits
    for name in seqio_tasks.MIXTURE_NAMES:
        mixture = seqio.get_mixture_or_task(name)
        assert isinstance(mixture, seqio.Mixture)
        assert mixture.tasks, name
    # The documented names exist.
    for name in (
        "iuie_ner_conll_2003",
        "iuie_es_conll_2003",
        "iuie_et_conll_2003",
        "iuie_re_new_york_times_re",
        "iuie_ep_nyt11",
        "iuie_epr_semval_re",
        "iuie_ee_genia",
        "iuie_ee_ace05",
        "iuie_eet_casie",
        "iuie_eea_phee",
        "iuie_ner_crossner_ai",
        "iuie_re_fewrel_0",
        "iuie_re_wiki_4",
        "iuie_ner_wikiann_en_first10k",
        "iuie_ner_synthetic",
        "iuie_eea_synthetic",
        "iuie_supervised",
        "iuie_supervised_first10k",
        "iuie_zeroshot",
        "iuie_zeroshot_first10k",
        "iuie_eval_ner",
        "iuie_eval_re",
        "iuie_eval_ee",
        "iuie_eval_eet",
        "iuie_eval_eea",
        "iuie_eval_zeroshot_ner",
        "iuie_eval_zeroshot_re",
        "iuie_synthetic",
        "iuie_synthetic_eval",
    ):
        seqio.get_mixture_or_task(name)


def test_docs_list_every_mixture():
    with open(os.path.join(REPO, "docs", "seqio_tasks.md"), encoding="utf-8") as f:
        doc = f.read()
    for name in seqio_tasks.MIXTURE_NAMES:
        assert f"`{name}`" in doc, name
    for dataset in catalog.DATASETS:
        assert dataset.name in doc, dataset.name


def test_splits_exist_in_the_shared_data(shared_root):
    # Every Task whose folder the shared slices hold: each declared split file is there and counts records.
    from iuie.ie import records

    present = {(f.task, f.name) for f in records.find_datasets(shared_root)}
    checked = 0
    for name in seqio_tasks.TASK_NAMES:
        source = seqio.get_mixture_or_task(name).source
        if (source.task, source.name) not in present or name.endswith("_synthetic"):
            continue
        for split in source.splits:
            assert os.path.isfile(source.split_path(split)), (name, split)
        checked += 1
    assert checked >= 50


@pytest.mark.parametrize("mixture", ["iuie_eval", "iuie_eval_zeroshot", "iuie_synthetic_eval"])
def test_every_eval_task_has_metrics_and_the_test_split(mixture):
    subtasks = seqio.get_subtasks(seqio.get_mixture_or_task(mixture))
    assert subtasks
    for task in subtasks:
        assert "test" in task.splits, task.name
        assert len(task.predict_metric_fns) == 2, task.name
        assert task.postprocessor is not None
    # seqio's own filter keeps all of them (the Evaluator would skip the others silently).
    assert len(evaluation.get_valid_eval_tasks(subtasks, "test")) == len(subtasks)
    assert all("validation" in t.splits for t in subtasks if not t.name.startswith(("iuie_re_fewrel", "iuie_re_wiki")))


def test_every_task_has_both_metric_modes():
    for name in seqio_tasks.TASK_NAMES:
        task = seqio.get_mixture_or_task(name)
        assert [f.__name__.rsplit("_", 1)[-1] for f in task.predict_metric_fns] == ["strict", "reference"]


def test_eval_mixtures_per_task():
    assert _names("iuie_eval_ner") == {
        catalog.task_name("NER", d.name) for d in catalog.supervised() if d.task == "NER"
    }
    assert _names("iuie_eval_re") == {catalog.task_name("RE", d.name) for d in catalog.supervised() if d.task == "RE"}
    assert _names("iuie_eval_eet") == {"iuie_eet_ace05", "iuie_eet_casie", "iuie_eet_phee"}
    assert _names("iuie_eval_eea") == {"iuie_eea_ace05", "iuie_eea_casie", "iuie_eea_phee"}
    assert _names("iuie_eval_ee") == {"iuie_ee_ace05", "iuie_ee_casie", "iuie_ee_phee"}
    assert _names("iuie_eval_zeroshot") == {catalog.task_name(d.main_view, d.name) for d in catalog.zeroshot_heldout()}


def test_training_mixtures_hold_main_and_auxiliary_views():
    supervised = _names("iuie_supervised")
    assert supervised == {catalog.task_name(v, d.name) for d in catalog.supervised() for v in d.views}
    assert "iuie_es_conll_2003" in supervised and "iuie_epr_conll04" in supervised
    assert "iuie_eet_casie" in supervised and "iuie_ee_genia" in supervised
    assert len(supervised) == 21 * 3 + 8 * 3 + 3 * 3 + 1
    assert _names("iuie_supervised_first10k") == {n + "_first10k" for n in supervised}
    zeroshot = _names("iuie_zeroshot")
    assert len(zeroshot) == (18 + 6) * 3
    assert _names("iuie_zeroshot_first10k") == {n + "_first10k" for n in zeroshot}


def _dataset_of(task_name):
    for d in catalog.DATASETS:
        for view in d.views:
            if task_name in (catalog.task_name(view, d.name), catalog.task_name(view, d.name, True)):
                return d
    return None


@pytest.mark.parametrize("mixture", ["iuie_zeroshot", "iuie_zeroshot_first10k"])
def test_heldout_datasets_never_reach_zeroshot_training(mixture):
    heldout = catalog.zeroshot_heldout()
    forbidden = {catalog.task_name(v, d.name, f) for d in heldout for v in d.views for f in (False, True)}
    # seqio.get_subtasks recurses through sub-mixtures.
    subtasks = seqio.get_subtasks(seqio.get_mixture_or_task(mixture))
    names = {t.name for t in subtasks}
    assert not names & forbidden
    # Also by the folder each Task reads, whatever its name: no held-out dataset, no sample copy of one.
    heldout_folders = {d.name for d in heldout} | {d.sample_folder for d in heldout if d.sample_folder}
    for task in subtasks:
        assert task.source.name not in heldout_folders, task.name
        assert task.source.train_folder not in heldout_folders, task.name
    # The paper's held-out sets by their paper names.
    for fragment in (
        "crossner",
        "mit_movie",
        "mit_restaurant",
        "fewrel",
        "wiki_",
        "genia_ner",
        "ade_corpus",
        "conll04",
    ):
        assert not any(fragment in n for n in names), fragment


def test_a_nested_mixture_is_checked_recursively():
    # A sub-mixture smuggling a held-out Task into a zero-shot-style mixture is caught the same way.
    seqio.MixtureRegistry.add("test_nested_inner", ["iuie_ner_crossner_ai"], default_rate=1.0)
    try:
        seqio.MixtureRegistry.add("test_nested_outer", [("iuie_ner_conll_2003", 1.0), ("test_nested_inner", 1.0)])
        names = {t.name for t in seqio.get_subtasks(seqio.get_mixture_or_task("test_nested_outer"))}
        assert "iuie_ner_crossner_ai" in names
    finally:
        seqio.MixtureRegistry.remove("test_nested_outer")
        seqio.MixtureRegistry.remove("test_nested_inner")


def _write_big_dataset(root, name, n):
    folder = root / "NER" / name
    folder.mkdir(parents=True)
    sentence = "Anna met Oslo ."
    rec = {"sentence": sentence, "entities": [{"name": "Anna", "type": "person", "pos": [0, 4]}]}
    for split, size in (("train", n), ("dev", 3), ("test", 3)):
        (folder / f"{split}.json").write_text(json.dumps([rec] * size))
    (folder / "labels.json").write_text(json.dumps(["person", "location"]))


def test_rates_and_caps(tmp_path, shared_root):
    big = "rate_cap_big"
    _write_big_dataset(tmp_path, big, 12_345)
    names = seqio_tasks.register_dataset(big, "NER", root=tmp_path, first10k=True, overwrite=True)
    try:
        assert names == [f"iuie_{v}_{big}{s}" for v in ("ner", "es", "et") for s in ("", "_first10k")]
        seqio.MixtureRegistry.add(
            "test_rate_mix",
            mixtures.training_entries(
                [catalog.Dataset(big, "NER", "test", catalog.UNUSED, supervised=False)], first10k=False
            )
            + mixtures.training_entries(
                [catalog.Dataset(big, "NER", "test", catalog.UNUSED, supervised=False)], first10k=True
            ),
        )
        mix = seqio.get_mixture_or_task("test_rate_mix")
        get = lambda n: mix.get_rate(seqio.get_mixture_or_task(n))  # noqa: E731
        assert seqio.get_mixture_or_task(f"iuie_ner_{big}").num_input_examples("train") == 12_345
        assert seqio.get_mixture_or_task(f"iuie_ner_{big}_first10k").num_input_examples("train") == 10_000
        assert get(f"iuie_ner_{big}") == pytest.approx(10_000)  # capped
        assert get(f"iuie_es_{big}") == pytest.approx(3_000)  # auxiliary: 0.3 * min(n, 10k)
        assert get(f"iuie_et_{big}_first10k") == pytest.approx(3_000)
        # Small datasets are not capped: CoNLL 2003's shared slice has 2,000 training records.
        sup = seqio.get_mixture_or_task("iuie_supervised")
        assert sup.get_rate(seqio.get_mixture_or_task("iuie_ner_conll_2003")) == pytest.approx(2_000)
        assert sup.get_rate(seqio.get_mixture_or_task("iuie_es_conll_2003")) == pytest.approx(600)
        assert sup.get_rate(seqio.get_mixture_or_task("iuie_eet_casie")) == pytest.approx(2_000)  # weight 1
        # Cap and weights are gin-settable and apply to Mixtures registered before the binding.
        with gin.unlock_config():
            gin.bind_parameter("iuie.pipeline.seqio_data.mixing_rate.maximum", 5_000)
            gin.bind_parameter("iuie.pipeline.seqio_data.mixing_rate.view_weights", {"ES": 0.5})
        try:
            assert get(f"iuie_ner_{big}") == pytest.approx(5_000)
            assert get(f"iuie_es_{big}") == pytest.approx(2_500)
            assert get(f"iuie_et_{big}") == pytest.approx(5_000)
        finally:
            gin.clear_config()
    finally:
        seqio.MixtureRegistry.remove("test_rate_mix")
        for n in names:
            seqio.TaskRegistry.remove(n)


def test_import_needs_no_data_and_a_missing_root_names_the_path(tmp_path):
    # A fresh interpreter: importing registers everything without touching the (missing) data root; the
    # first read fails with the expected path in the message.
    missing = tmp_path / "no_such_root"
    code = (
        "import seqio, seqio_tasks\n"
        "t = seqio.get_mixture_or_task('iuie_ner_conll_2003')\n"
        "try:\n"
        "    t.get_dataset(None, split='train')\n"
        "except FileNotFoundError as e:\n"
        "    print('ERROR', e)\n"
    )
    env = {**os.environ, "IUIE_DATA_DIR": str(missing), "PYTHONPATH": REPO, "TF_CPP_MIN_LOG_LEVEL": "3"}
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120, cwd=str(tmp_path)
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert "ERROR" in out.stdout
    assert os.path.join(str(missing), "NER", "CoNLL 2003", "train.json") in out.stdout
    assert not missing.exists()


def test_no_data_root_says_how_to_set_one(monkeypatch):
    monkeypatch.delenv(seqio_data.ENV_DATA_DIR, raising=False)
    with pytest.raises(seqio_data.DataNotFoundError, match="IUIE_DATA_DIR"):
        seqio.get_mixture_or_task("iuie_re_conll04").get_dataset(None, split="test")


def test_eval_mixture_for_a_run():
    assert seqio_tasks.eval_mixture_for("iuie_supervised_first10k") == "iuie_eval"
    assert seqio_tasks.eval_mixture_for("iuie_zeroshot") == "iuie_eval_zeroshot"
    assert seqio_tasks.eval_mixture_for("iuie_synthetic") == "iuie_synthetic_eval"
    assert seqio_tasks.eval_mixture_for("iuie_ner_conll_2003") == "iuie_ner_conll_2003"
    with pytest.raises(KeyError):
        seqio_tasks.eval_mixture_for("nope")
