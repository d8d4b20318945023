"""T5X checkpoint reading, checked against T5X's on-disk format as its source defines it, and the iuie
(Orbax) format.

The writer (``conftest.write_t5x_checkpoint``) does by hand what ``t5x/checkpoints.py``
``Checkpointer.save`` does (t5x is not installed, and is not on PyPI): every array of the train state dict
``{'target': params, 'state': {'step', 'param_states'}}`` goes to a zarr array written by TensorStore in
``<checkpoint_dir>/<name with '.' for '/'>`` (``_get_spec``: gzip, ``chunks`` from the metadata), and the
msgpack file ``checkpoint`` holds ``{'version': 3, 'optimizer': state_dict}`` with each such array replaced
by its ``ts.Spec`` JSON (``_write_state_to_tensorstore``). Arrays that stay in the msgpack use Flax's ext
type 1 encoding, ``(shape, dtype name, C-order bytes)`` (``flax/serialization.py`` ``_ndarray_to_bytes``),
here written with msgpack directly.
"""

from __future__ import annotations

import os

import ml_dtypes
import numpy as np
import pytest

from iuie.interop import hf, t5x
from tests.interop.conftest import t5x_train_state, write_t5x_checkpoint


@pytest.fixture(scope="module")
def hf_params(hf_folders):
    return hf.load_hf_params(hf_folders["safetensors"])


def _assert_trees_equal(actual, expected, path=""):
    assert isinstance(actual, dict) and set(actual) == set(expected), path
    for key, value in expected.items():
        if isinstance(value, dict):
            _assert_trees_equal(actual[key], value, f"{path}/{key}")
        else:
            assert actual[key].dtype == value.dtype and actual[key].shape == value.shape, f"{path}/{key}"
            np.testing.assert_array_equal(actual[key], value, err_msg=f"{path}/{key}")


@pytest.mark.parametrize("gcs", [False, True], ids=["local", "written_to_gcs"])
def test_reads_t5x_msgpack_tensorstore_checkpoint(hf_params, tmp_path, gcs):
    params, _ = hf_params
    write_t5x_checkpoint(tmp_path / "checkpoint_1184000", t5x_train_state(params, optimizer_slots=True), gcs=gcs)
    _assert_trees_equal(t5x.load_t5x(str(tmp_path / "checkpoint_1184000")), params)
    # T5X's find_checkpoint also accepts the msgpack file and the model dir (latest step).
    _assert_trees_equal(t5x.load_t5x(str(tmp_path / "checkpoint_1184000" / "checkpoint")), params)
    _assert_trees_equal(t5x.load_t5x(str(tmp_path)), params)


def test_bfloat16_t5x_checkpoint(hf_params, tmp_path):
    params, _ = hf_params
    write_t5x_checkpoint(tmp_path / "checkpoint_10", t5x_train_state(params), save_dtype=ml_dtypes.bfloat16)
    kept = t5x.load_t5x(str(tmp_path / "checkpoint_10"), dtype=None)
    assert kept["encoder"]["layers_1"]["mlp"]["wo"]["kernel"].dtype == ml_dtypes.bfloat16
    as_fp32 = t5x.load_t5x(str(tmp_path / "checkpoint_10"))
    expected = params["encoder"]["layers_1"]["mlp"]["wo"]["kernel"].astype(ml_dtypes.bfloat16).astype(np.float32)
    np.testing.assert_array_equal(as_fp32["encoder"]["layers_1"]["mlp"]["wo"]["kernel"], expected)


def test_model_dir_takes_latest_step(tmp_path):
    for step in (900, 1000, 80):
        (tmp_path / f"checkpoint_{step}").mkdir()
        (tmp_path / f"checkpoint_{step}" / "checkpoint").write_bytes(b"")
    (tmp_path / "checkpoint_2000.tmp-1700000000").mkdir()  # an unfinished save, as T5X names it
    assert t5x.find_checkpoint_dir(str(tmp_path)) == str(tmp_path / "checkpoint_1000")


def test_reads_orbax_format_t5x_checkpoint(hf_params, tmp_path):
    """Newer T5X (Orbax) writes the same state dict as an Orbax PyTree under checkpoint_<step>/state."""
    import orbax.checkpoint as ocp

    params, _ = hf_params
    ocp.PyTreeCheckpointer().save(
        str(tmp_path / "checkpoint_5" / "state"), {"target": params, "state": {"step": np.asarray(5, np.int32)}}
    )
    _assert_trees_equal(t5x.load_t5x(str(tmp_path / "checkpoint_5")), params)


def test_split_layout_from_t5x(hf_params, tmp_path):
    params, _ = hf_params
    write_t5x_checkpoint(tmp_path / "checkpoint_1", t5x_train_state(params))
    split = t5x.load_t5x(str(tmp_path / "checkpoint_1"), attention_layout="split")
    assert split["decoder"]["layers_0"]["self_attention"]["out"]["kernel"].shape == (3, 4, 16)
    _assert_trees_equal(hf.with_attention_layout(split, "joined"), params)


def test_inferred_config_matches_hf_config(hf_params):
    params, fields = hf_params
    inferred = t5x.infer_config_fields(params)
    for key in (
        "vocab_size",
        "emb_dim",
        "num_heads",
        "num_encoder_layers",
        "num_decoder_layers",
        "head_dim",
        "mlp_dim",
        "mlp_activations",
        "logits_via_embedding",
        "relative_attention_num_buckets",
    ):
        assert inferred[key] == fields[key], key
    assert inferred["relative_attention_max_distance"] == 128  # T5X's constant; the shapes cannot tell.


def test_missing_tensorstore_array_is_named(hf_params, tmp_path):
    import shutil

    params, _ = hf_params
    write_t5x_checkpoint(tmp_path / "checkpoint_2", t5x_train_state(params))
    shutil.rmtree(tmp_path / "checkpoint_2" / "target.decoder.layers_1.mlp.wi_0.kernel")
    with pytest.raises(
        hf.CheckpointError,
        match=r"target\.decoder\.layers_1\.mlp\.wi_0\.kernel.*"
        r"'target/decoder/layers_1/mlp/wi_0/kernel'",
    ):
        t5x.load_t5x(str(tmp_path / "checkpoint_2"))


def test_pre_0_1_14_tensorstore_spec_with_path_beside_kvstore(tmp_path):
    """tensorstore < 0.1.14 wrote the array path next to ``kvstore``, not in it (T5X still reads both)."""
    old = {
        "driver": "zarr",
        "kvstore": {"driver": "gcs", "bucket": "t5x-dummy-bucket"},
        "path": "target.token_embedder.embedding",
        "metadata": {"shape": [4, 2], "chunks": [4, 2], "compressor": {"id": "gzip"}},
    }
    local = t5x._local_spec(old, str(tmp_path))
    assert local["kvstore"] == {"driver": "file", "path": str(tmp_path / "target.token_embedder.embedding")}
    assert "path" not in local and local["metadata"] == {"shape": [4, 2]}


def test_not_a_checkpoint(tmp_path):
    with pytest.raises(hf.CheckpointError, match="neither a T5X checkpoint folder"):
        t5x.load_t5x(str(tmp_path))
    (tmp_path / "checkpoint_3").mkdir()
    (tmp_path / "checkpoint_3" / "checkpoint").write_bytes(b"\xc1 not msgpack")
    with pytest.raises(hf.CheckpointError, match="not a T5X msgpack checkpoint"):
        t5x.load_t5x(str(tmp_path / "checkpoint_3"))


def test_iuie_orbax_round_trip(hf_params, tmp_path):
    params, fields = hf_params
    t5x.save_iuie(params, fields, str(tmp_path / "ckpt"))
    assert sorted(os.listdir(tmp_path / "ckpt")) == ["iuie_config.json", "params"]
    loaded, loaded_fields = t5x.read_iuie_params(str(tmp_path / "ckpt"))
    _assert_trees_equal(loaded, params)
    assert loaded_fields["relative_attention_max_distance"] == 20
    # The Orbax folder alone (config found beside it), and a train state with params inside.
    _assert_trees_equal(t5x.read_iuie_params(str(tmp_path / "ckpt" / "params"))[0], params)
    import orbax.checkpoint as ocp

    checkpointer = ocp.StandardCheckpointer()
    checkpointer.save(str(tmp_path / "train_state"), {"params": params, "step": np.int32(3)})
    checkpointer.wait_until_finished()
    bare, bare_fields = t5x.read_iuie_params(str(tmp_path / "train_state"))
    _assert_trees_equal(bare, params)
    assert bare_fields["num_decoder_layers"] == 3  # inferred from shapes: no iuie_config.json here
