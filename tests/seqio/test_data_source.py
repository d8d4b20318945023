"""The Tasks' datasets: exact features, sharding, counting, folders, user datasets.

References: ``seqio.test_utils.assert_dataset`` (seqio's own dataset comparison) against expected examples
built here from the raw JSON files by the rules of shared/FORMATS.md (the InstructUIE reference's input and
target strings), independently of ``iuie.ie.formats``; seqio's ``ShardInfo`` for sharding.
"""

from __future__ import annotations

import json
import shutil

import pytest
import seqio
from seqio import test_utils

import seqio_tasks
from iuie.ie import instructions
from iuie.ie.records import Record
from iuie.pipeline import seqio_data

LENGTHS = {"inputs": 512, "targets": 50}


def _raw(root, task, name, split_file):
    with open(root / task / name / f"{split_file}.json", encoding="utf-8") as f:
        return json.load(f)


def _labels(root, task, name):
    with open(root / task / name / "labels.json", encoding="utf-8") as f:
        return json.load(f)


def _expected(raw, index, split, inputs, targets, ground_truth, instruction, *, options):
    """One formatted example; ``options`` is the option list its input shows (it travels as JSON)."""
    vocab = seqio_tasks.VOCABULARY
    return {
        "index": index,
        "split": split,
        "record": Record.from_json(raw).to_json_string(),
        "inputs_pretokenized": inputs,
        "targets_pretokenized": targets,
        "inputs": vocab.encode(inputs) + [1],
        "targets": vocab.encode(targets) + [1],
        "ground_truth": ground_truth,
        "instruction": instruction,
        "options": json.dumps(options, ensure_ascii=False),
    }


def _first(task_name, split, n, lengths=None):
    task = seqio.get_mixture_or_task(task_name)
    return task.get_dataset(lengths, split=split, shuffle=False).take(n)


def test_re_examples_equal_the_reference_strings(shared_root, shared_data):
    # conll04 test, RE view, with the paper's own instruction file: FORMATS.md's RE input and target.
    seqio_data.set_options(instruction_file=shared_data / "instructuie_configs" / "instruction_config.json")
    paper = instructions.load_instruction_file(shared_data / "instructuie_configs" / "instruction_config.json")
    instruction = paper.get("RE")[0]
    labels = _labels(shared_root, "RE", "conll04")
    expected = []
    for i, raw in enumerate(_raw(shared_root, "RE", "conll04", "test")[:3]):
        tail = "Option: " + ", ".join(labels) + " \n" + "Text: " + "{0}" + " \n" + "Answer:"
        inputs = (instruction + tail).replace("{0}", raw["sentence"])
        rels = [r for r in raw["relations"] if r["type"] not in ("NA", "")]
        target = (
            " " + "; ".join(f"{r['type']}: {r['head']['name']}, {r['tail']['name']}" for r in rels) if rels else " None"
        )
        truth = (
            " "
            + "; ".join(
                f"{r['type'] if r['type'] not in ('NA', '') else 'NA'}: {r['head']['name']}, {r['tail']['name']}"
                for r in raw["relations"]
            )
            if raw["relations"]
            else " None"
        )
        expected.append(_expected(raw, i, "test", inputs, target, truth, instruction + tail, options=labels))
    test_utils.assert_dataset(_first("iuie_re_conll04", "test", 3, LENGTHS), expected)


def test_eea_and_epr_examples(shared_root):
    instruction = instructions.DEFAULT_INSTRUCTIONS.get("EEA")[0]
    labels = _labels(shared_root, "EEA", "CASIE")
    expected = []
    for i, raw in enumerate(_raw(shared_root, "EEA", "CASIE", "dev")[:2]):
        event = raw["events"][0]
        tail = (
            "Event type: "
            + event["type"]
            + " \n "
            + " Option: "
            + ", ".join(labels[event["type"]])
            + " \n"
            + "Text: {0} \n"
            + "Answer:"
        )
        args = ";".join(f" {a['name']}: {a['role']}" for a in event["arguments"]) or " None"
        expected.append(
            _expected(
                raw,
                i,
                "validation",
                (instruction + tail).replace("{0}", raw["sentence"]),
                args,
                args,
                instruction + tail,
                options=labels[event["type"]],
            )
        )
    test_utils.assert_dataset(_first("iuie_eea_casie", "validation", 2, LENGTHS), expected)

    # EPR: the pairs are listed in the input after two spaces; NA pairs only in the ground truth.
    instruction = instructions.DEFAULT_INSTRUCTIONS.get("EPR")[0]
    labels = _labels(shared_root, "RE", "semval-RE")
    raw = _raw(shared_root, "RE", "semval-RE", "train")[0]
    rels = [r for r in raw["relations"] if r["type"] not in ("NA", "")]
    pairs = " " + "; ".join(f"{r['head']['name']}, {r['tail']['name']}" for r in rels)
    tail = "Option: " + ", ".join(labels) + " \n" + "Text: {0} \n" + " Entity Pairs: " + pairs + " \n" + "Answer:"
    target = (
        " " + "; ".join(f"{r['type']}: {r['head']['name']}, {r['tail']['name']}" for r in rels) if rels else " None"
    )
    truth = " " + "; ".join(
        f"{r['type'] if r['type'] not in ('NA', '') else 'NA'}: {r['head']['name']}, {r['tail']['name']}"
        for r in raw["relations"]
    )
    ex = _expected(
        raw,
        0,
        "train",
        (instruction + tail).replace("{0}", raw["sentence"]),
        target,
        truth,
        instruction + tail,
        options=labels,
    )
    test_utils.assert_dataset(_first("iuie_epr_semval_re", "train", 1, LENGTHS), ex)


def test_synthetic_ner_examples(synthetic):
    instruction = instructions.DEFAULT_INSTRUCTIONS.get("NER")[0]
    labels = _labels(synthetic, "NER", "synthetic")
    expected = []
    for i, raw in enumerate(_raw(synthetic, "NER", "synthetic", "test")[:4]):
        tail = "Option: " + ", ".join(labels) + " \nText: {0} \nAnswer:"
        ents = [e for e in raw.get("entities", []) if e["type"] not in ("NA", "")]
        target = " " + "; ".join(f"{e['type']}: {e['name']}" for e in ents) if ents else " None"
        expected.append(
            _expected(
                raw,
                i,
                "test",
                (instruction + tail).replace("{0}", raw["sentence"]),
                target,
                target,
                instruction + tail,
                options=labels,
            )
        )
    test_utils.assert_dataset(_first("iuie_ner_synthetic", "test", 4), expected)


def test_truncation_keeps_eos(synthetic):
    ds = _first("iuie_ee_synthetic", "test", 20, {"inputs": 16, "targets": 4})
    for ex in ds.as_numpy_iterator():
        assert len(ex["inputs"]) <= 16 and ex["inputs"][-1] == 1
        assert len(ex["targets"]) <= 4 and ex["targets"][-1] == 1


def test_counts_equal_what_is_read(shared_root, synthetic):
    for name, split in (
        ("iuie_ner_mit_movie", "validation"),
        ("iuie_eet_casie", "test"),
        ("iuie_re_synthetic", "train"),
    ):
        task = seqio.get_mixture_or_task(name)
        n = sum(1 for _ in task.source.get_dataset(split, shuffle=False))
        assert task.num_input_examples(split) == n > 0
    # The shared CoNLL 2003 slice has 2,000 records per split; the _first10k variant keeps them all.
    assert seqio.get_mixture_or_task("iuie_ner_conll_2003_first10k").num_input_examples("train") == 2000


def test_sharding_is_disjoint_complete_and_deterministic(shared_root):
    task = seqio.get_mixture_or_task("iuie_re_conll04")
    every = [int(ex["index"]) for ex in task.source.get_dataset("test", shuffle=False).as_numpy_iterator()]
    assert every == sorted(every) and len(every) == task.num_input_examples("test")
    for num_shards in (2, 3):
        seen = []
        for index in range(num_shards):
            shard = task.get_dataset(
                None, split="test", shuffle=False, shard_info=seqio.ShardInfo(index=index, num_shards=num_shards)
            )
            got = [int(ex["index"]) for ex in shard.as_numpy_iterator()]
            assert all(i % num_shards == index for i in got)
            seen.extend(got)
        assert sorted(seen) == every  # disjoint and complete
    # Same read twice, same order; a seeded shuffle is reproducible and a permutation.
    again = [int(ex["index"]) for ex in task.source.get_dataset("test", shuffle=False).as_numpy_iterator()]
    assert again == every
    a = [int(ex["index"]) for ex in task.source.get_dataset("test", shuffle=True, seed=7).as_numpy_iterator()]
    b = [int(ex["index"]) for ex in task.source.get_dataset("test", shuffle=True, seed=7).as_numpy_iterator()]
    assert a == b != every and sorted(a) == every


def test_missing_folder_and_split_name_the_expected_path(tmp_path):
    seqio_data.set_data_dir(tmp_path)
    task = seqio.get_mixture_or_task("iuie_ner_conll_2003")
    with pytest.raises(seqio_data.DataNotFoundError) as err:
        task.get_dataset(None, split="train")
    assert str(tmp_path / "NER" / "CoNLL 2003" / "train.json") in str(err.value)
    with pytest.raises(seqio_data.DataNotFoundError, match="dev.json"):
        task.num_input_examples("validation")


def _copy_synthetic(synthetic_root, dest_root, task, name):
    shutil.copytree(synthetic_root / task / "synthetic", dest_root / task / name)


def test_train_folder_override_for_sample_copies(tmp_path, synthetic_root):
    # A root holding both the released folder and its pre-sampled copy (fewer train records).
    _copy_synthetic(synthetic_root, tmp_path, "RE", "NYT11")
    sampled = tmp_path / "RE" / "NYT11_sample_30000"
    sampled.mkdir()
    shutil.copy(tmp_path / "RE" / "NYT11" / "labels.json", sampled)
    records = json.loads((tmp_path / "RE" / "NYT11" / "train.json").read_text())
    (sampled / "train.json").write_text(json.dumps(records[:7]))
    seqio_data.set_data_dir(tmp_path)
    task = seqio.get_mixture_or_task("iuie_re_nyt11")
    assert task.source.dataset_dir("train") == str(sampled)
    assert task.num_input_examples("train") == 7
    assert task.num_input_examples("test") == 300  # other splits read the released folder
    seqio_data.set_options(use_sample_copies=False)
    assert task.num_input_examples("train") == len(records)


def test_register_a_user_folder(tmp_path, synthetic_root):
    _copy_synthetic(synthetic_root, tmp_path, "NER", "my_corpus")
    (tmp_path / "NER" / "my_corpus" / "dev.json").unlink()
    names = seqio_tasks.register_dataset("my_corpus", "NER", root=tmp_path)
    try:
        assert names == ["iuie_ner_my_corpus", "iuie_es_my_corpus", "iuie_et_my_corpus"]
        task = seqio.get_mixture_or_task("iuie_es_my_corpus")
        assert task.splits == ("train", "test")  # the split files present
        assert len(task.predict_metric_fns) == 2
        ex = next(task.get_dataset(LENGTHS, split="test", shuffle=False).as_numpy_iterator())
        assert ex["inputs_pretokenized"].decode().endswith(" \nAnswer:")
        assert ex["targets"][-1] == 1
        with pytest.raises(ValueError, match="duplicate"):
            seqio_tasks.register_dataset("my_corpus", "NER", root=tmp_path)
        # EEA-only folders register their own view.
        _copy_synthetic(synthetic_root, tmp_path, "EEA", "my_events")
        assert seqio_tasks.register_dataset("my_events", "EEA", root=tmp_path) == ["iuie_eea_my_events"]
        names.append("iuie_eea_my_events")
    finally:
        for n in names:
            seqio.TaskRegistry.remove(n)


def test_multiple_instruction_strategy_is_seeded_per_example(synthetic):
    seqio_data.set_options(instruction_strategy="multiple", instruction_seed=3)
    texts = instructions.DEFAULT_INSTRUCTIONS.get("RE")

    def read():
        ds = _first("iuie_re_synthetic", "train", 30)
        return [(int(ex["index"]), ex["instruction"].decode()) for ex in ds.as_numpy_iterator()]

    first = read()
    assert first == read()  # same instruction for the same example, every time
    assert len({instruction for _, instruction in first}) > 1
    for index, instruction in first:
        expected = instructions.example_rng(3, "RE", "synthetic", "train", index).choice(texts)
        assert instruction.startswith(expected)
