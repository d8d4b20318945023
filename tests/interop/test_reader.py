"""The one checkpoint reader (``iuie.interop.reader``): every format, every training-run layout, relative paths.

References: the arrays that were written (a read must return them exactly); the Hugging Face folders that
transformers itself saved (``conftest.hf_folders``); T5X's on-disk format as ``conftest.write_t5x_checkpoint``
writes it; an iuie training run as ``iuie.training.checkpoints.Checkpointer`` writes it
(``MODEL_DIR/checkpoints/<step>/{state,data}``).
"""

from __future__ import annotations

import jax
import numpy as np
import pytest

from iuie.interop import hf, reader, t5x
from tests.interop.conftest import t5x_train_state, write_t5x_checkpoint
from tests.interop.test_t5x import _assert_trees_equal


@pytest.fixture(scope="module")
def hf_params(hf_folders):
    return hf.load_hf_params(hf_folders["safetensors"])


def test_detect_format(hf_params, hf_folders, tmp_path):
    params, fields = hf_params
    write_t5x_checkpoint(tmp_path / "t5x" / "checkpoint_7", t5x_train_state(params))
    t5x.save_iuie(params, fields, str(tmp_path / "iuie"))
    assert reader.detect_format(hf_folders["bin"]) == "hf"
    assert reader.detect_format(str(tmp_path / "t5x")) == "t5x"
    assert reader.detect_format(str(tmp_path / "t5x" / "checkpoint_7")) == "t5x"
    assert reader.detect_format(str(tmp_path / "iuie")) == "iuie"
    assert reader.detect_format(str(tmp_path / "iuie" / "params")) == "iuie"
    for path in (hf_folders["bin"], tmp_path / "t5x", tmp_path / "iuie"):
        _assert_trees_equal(reader.read_checkpoint(str(path))[0], params)


@pytest.fixture(scope="module")
def training_run(tmp_path_factory):
    """A MODEL_DIR with two steps written by the trainer's Checkpointer, and the state of each step."""
    from iuie.training import checkpoints, configs, optimizers, partitioning, trainer
    from tests.trainer import harness

    model = harness.make_model()
    tx, _ = optimizers.make_optimizer(configs.OptimizerConfig())
    partitioner = partitioning.Partitioner.create("data_parallel")
    init_fn = harness.init_params_fn(model)
    layout = trainer.abstract_state(init_fn, tx, partitioner)
    states = {step: trainer.init_state(init_fn, tx, layout, jax.random.key(step)) for step in (2, 5)}
    model_dir = tmp_path_factory.mktemp("run")
    with checkpoints.Checkpointer(str(model_dir / "checkpoints"), async_checkpointing=False) as ckpt:
        for step, state in states.items():
            ckpt.save(step, state, {"position": step})
    host = {step: jax.tree.map(np.asarray, jax.device_get(s.params)) for step, s in states.items()}
    return model_dir, layout, host


def _same(actual, expected):
    for (path, x), y in zip(jax.tree_util.tree_leaves_with_path(actual), jax.tree.leaves(expected), strict=True):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y), err_msg=jax.tree_util.keystr(path))


def test_every_training_run_layout_reads_the_right_step(training_run):
    """MODEL_DIR and MODEL_DIR/checkpoints mean the newest step (5); a step folder means that step."""
    model_dir, layout, host = training_run
    cases = {model_dir: 5, model_dir / "checkpoints": 5, model_dir / "checkpoints" / "2": 2}
    for path, step in cases.items():
        read = reader.read_params(str(path))
        assert read.source.format == "iuie-train"
        assert read.source.state_dir == str(model_dir / "checkpoints" / str(step) / "state")
        _same(read.params, host[step])
        assert read.fields["emb_dim"] == 32 and read.fields["num_encoder_layers"] == 1
        # Into the model's layout: same values, the layout's shardings.
        placed = reader.read_params(str(path), layout.abstract.params).params
        _same(placed, host[step])
        leaf = placed["decoder"]["logits_dense"]["kernel"]
        assert leaf.sharding == layout.shardings.params["decoder"]["logits_dense"]["kernel"]


def test_relative_paths_are_read_from_the_working_directory(training_run, hf_folders, hf_params, monkeypatch):
    """The regression of `iuie extract --checkpoint demo_model` (a relative MODEL_DIR crashed inside Orbax
    with "'NoneType' object is not subscriptable" while the absolute path worked)."""
    import os

    model_dir, _, host = training_run
    monkeypatch.chdir(model_dir.parent)
    read = reader.read_params(model_dir.name)
    assert read.source.path == str(model_dir) and os.path.isabs(read.source.state_dir)
    _same(read.params, host[5])
    monkeypatch.chdir(os.path.dirname(hf_folders["bin"]))
    _assert_trees_equal(reader.read_params(os.path.basename(hf_folders["bin"])).params, hf_params[0])


def test_missing_and_empty_paths_say_what_is_expected(tmp_path):
    with pytest.raises(FileNotFoundError, match="checkpoint .*nowhere.* does not exist"):
        reader.read_params(str(tmp_path / "nowhere"))
    with pytest.raises(FileNotFoundError, match="does not exist"):
        reader.read_params("")
    (tmp_path / "empty").mkdir()
    with pytest.raises(hf.CheckpointError, match=r"not an iuie training run \(checkpoints/<step>/state\)"):
        reader.read_params(str(tmp_path / "empty"))
    with pytest.raises(ValueError, match="unknown checkpoint format 'onnx'"):
        reader.read_params(str(tmp_path / "empty"), fmt="onnx")
