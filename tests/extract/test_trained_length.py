"""The window length defaults to the input length the checkpoint was trained with.

References: the lengths the tiny training run of conftest.py was given (``TASK_FEATURE_LENGTHS`` of
tests/tiny_runs.py: inputs 128, targets 32), and hand-written ``run_info.json`` / ``config.gin`` files in the
shapes ``iuie.train`` and T5X write (gin's operative config: macros, then scoped bindings)."""

from __future__ import annotations

import json
import logging
import shutil

import pytest

from iuie.extraction.extractor import DEFAULT_MAX_INPUT_TOKENS, Extractor
from iuie.interop import reader
from iuie.interop.hf import CheckpointError

TRAINED = {"inputs": 128, "targets": 32}


def test_the_training_binary_records_its_lengths(trained_checkpoint):
    info = json.loads((trained_checkpoint / "run_info.json").read_text(encoding="utf-8"))
    assert info["task_feature_lengths"] == TRAINED
    for path in (trained_checkpoint, trained_checkpoint / "checkpoints"):
        lengths, source = reader.read_trained_lengths(path)
        assert lengths == TRAINED and source == str(trained_checkpoint / "run_info.json")


def test_config_gin_alone_is_read_too(trained_checkpoint, tmp_path):
    """A run without run_info.json (a T5X model dir, an older iuie run): the operative config.gin it wrote."""
    shutil.copy(trained_checkpoint / "config.gin", tmp_path / "config.gin")
    (tmp_path / "checkpoint_1000").mkdir()
    assert reader.read_trained_lengths(tmp_path) == (TRAINED, str(tmp_path / "config.gin"))
    assert reader.trained_lengths(tmp_path / "checkpoint_1000") == TRAINED


@pytest.mark.parametrize(
    "gin,expected",
    [
        (
            "INPUT_LENGTH = 384\nTASK_FEATURE_LENGTHS = {'inputs': %INPUT_LENGTH, 'targets': 96}\n",
            {"inputs": 384, "targets": 96},
        ),
        ("TASK_FEATURE_LENGTHS = \\\n    {'inputs': 1024, 'targets': 256}\n", {"inputs": 1024, "targets": 256}),
        (
            "infer/utils.DatasetConfig.task_feature_lengths = {'inputs': 64}\n"
            "train/utils.DatasetConfig.task_feature_lengths = {'inputs': 2048, 'targets': 512}\n",
            {"inputs": 2048, "targets": 512},
        ),
        ("MODEL_DIR = '/x'\n", None),
    ],
)
def test_t5x_style_configs(tmp_path, gin, expected):
    (tmp_path / "config.gin").write_text(gin, encoding="utf-8")
    assert reader.trained_lengths(tmp_path) == expected


def test_no_record_and_bad_records(tmp_path):
    # A plain folder is not walked up: the parent's config.gin may belong to something else.
    (tmp_path / "config.gin").write_text("TASK_FEATURE_LENGTHS = {'inputs': 256}\n", encoding="utf-8")
    (tmp_path / "hf_export").mkdir()
    assert reader.read_trained_lengths(tmp_path / "hf_export") is None
    (tmp_path / "run_info.json").write_text("{not json", encoding="utf-8")
    with pytest.raises(CheckpointError, match="run_info.json: not readable JSON"):
        reader.read_trained_lengths(tmp_path)
    (tmp_path / "run_info.json").write_text('{"task_feature_lengths": {"targets": 64}}', encoding="utf-8")
    with pytest.raises(CheckpointError, match="no positive integer 'inputs'"):
        reader.read_trained_lengths(tmp_path)


def test_extractor_windows_default_to_the_trained_length(trained_checkpoint, tmp_path, caplog):
    extractor = Extractor.from_checkpoint(trained_checkpoint)
    assert extractor.max_input_tokens == TRAINED["inputs"]
    assert extractor.window_source == f"trained length, {trained_checkpoint / 'run_info.json'}"
    assert Extractor.from_checkpoint(trained_checkpoint, max_input_tokens=300).max_input_tokens == 300

    # The same checkpoint without its records: the default, and a logged line saying why.
    shutil.copytree(trained_checkpoint / "checkpoints", tmp_path / "checkpoints")
    with caplog.at_level(logging.INFO, logger="iuie.extraction"):
        bare = Extractor.from_checkpoint(tmp_path)
    assert bare.max_input_tokens == DEFAULT_MAX_INPUT_TOKENS == 512
    assert bare.window_source == "default: no trained length recorded"
    assert any("records no trained input length" in r.getMessage() and "512" in r.getMessage() for r in caplog.records)
