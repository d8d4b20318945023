"""Hugging Face import and export, checked against transformers itself.

References: the tensors of a ``transformers.T5ForConditionalGeneration`` (its ``state_dict``), the folders its
``save_pretrained`` writes, and its ``from_pretrained`` loading report (missing / unexpected keys).
"""

from __future__ import annotations

import json
import os

import ml_dtypes
import numpy as np
import pytest

from iuie.interop import hf
from tests.interop.conftest import HF_DIMS, hf_tensors, make_hf_model

# Tied copies of shared.weight that transformers keeps in memory; the importer skips them.
TIED = {"encoder.embed_tokens.weight", "decoder.embed_tokens.weight"}


def _assert_same_tensors(actual: dict, expected: dict) -> None:
    assert set(actual) == set(expected) - TIED
    for name, array in actual.items():
        assert array.dtype == expected[name].dtype, name
        assert array.shape == expected[name].shape, name
        assert np.array_equal(array.view(np.uint32), expected[name].view(np.uint32)), name  # bit for bit


@pytest.mark.parametrize("layout", ["safetensors", "sharded_safetensors", "bin", "sharded_bin"])
def test_hf_iuie_hf_round_trip_is_bit_exact(hf_model, hf_folders, layout):
    params, fields = hf.load_hf_params(hf_folders[layout])
    _assert_same_tensors(hf.params_to_hf_state(params), hf_tensors(hf_model))
    assert fields["num_encoder_layers"] == 2 and fields["num_decoder_layers"] == 3
    assert fields["relative_attention_num_buckets"] == 8 and fields["relative_attention_max_distance"] == 20


def test_sharded_save_really_is_sharded(hf_folders):
    files = hf.weight_files(hf_folders["sharded_safetensors"])
    assert len(files) > 1 and all(f.endswith(".safetensors") for f in files)
    assert len(hf.weight_files(hf_folders["sharded_bin"])) > 1


def test_iuie_tree_orientation(hf_model, hf_folders):
    """Spot checks of the documented mapping, independent of the round trip."""
    params, _ = hf.load_hf_params(hf_folders["safetensors"])
    ref = hf_tensors(hf_model)
    d, heads, d_kv, vocab = HF_DIMS["d_model"], HF_DIMS["num_heads"], HF_DIMS["d_kv"], HF_DIMS["vocab_size"]
    layer = params["decoder"]["layers_1"]
    assert layer["encoder_decoder_attention"]["query"]["kernel"].shape == (d, heads * d_kv)
    np.testing.assert_array_equal(
        layer["encoder_decoder_attention"]["out"]["kernel"], ref["decoder.block.1.layer.1.EncDecAttention.o.weight"].T
    )
    np.testing.assert_array_equal(
        params["encoder"]["relpos_bias"]["rel_embedding"],
        ref["encoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight"].T,
    )
    np.testing.assert_array_equal(params["decoder"]["logits_dense"]["kernel"], ref["lm_head.weight"].T)
    assert params["decoder"]["logits_dense"]["kernel"].shape == (d, vocab)
    np.testing.assert_array_equal(params["token_embedder"]["embedding"], ref["shared.weight"])
    np.testing.assert_array_equal(
        params["decoder"]["layers_2"]["pre_cross_attention_layer_norm"]["scale"],
        ref["decoder.block.2.layer.1.layer_norm.weight"],
    )


def test_export_loads_in_transformers_without_missing_or_unexpected_keys(hf_model, hf_folders, tmp_path):
    import transformers

    params, fields = hf.load_hf_params(hf_folders["bin"])
    hf.save_hf(params, fields, str(tmp_path / "out"))
    assert sorted(os.listdir(tmp_path / "out")) == ["config.json", "model.safetensors"]
    loaded, info = transformers.T5ForConditionalGeneration.from_pretrained(
        str(tmp_path / "out"), output_loading_info=True
    )
    assert not info["missing_keys"] and not info["unexpected_keys"] and not info["mismatched_keys"]
    assert loaded.lm_head.weight is not loaded.shared.weight
    reloaded = hf_tensors(loaded)
    for name, array in hf_tensors(hf_model).items():
        np.testing.assert_array_equal(reloaded[name], array, err_msg=name)
    config = loaded.config
    assert (
        config.num_layers,
        config.num_decoder_layers,
        config.relative_attention_num_buckets,
        config.relative_attention_max_distance,
        config.feed_forward_proj,
    ) == (2, 3, 8, 20, "gated-gelu")


def test_split_attention_layout_round_trip(hf_model, hf_folders):
    params, _ = hf.load_hf_params(hf_folders["safetensors"], attention_layout="split")
    attention = params["encoder"]["layers_0"]["attention"]
    assert attention["key"]["kernel"].shape == (16, 3, 4)
    assert attention["out"]["kernel"].shape == (3, 4, 16)
    _assert_same_tensors(hf.params_to_hf_state(params), hf_tensors(hf_model))


def test_bfloat16_kept_with_dtype_none(tmp_path):
    import torch

    model = make_hf_model(seed=1).to(dtype=torch.bfloat16)
    model.save_pretrained(str(tmp_path / "bf16"))
    params, _ = hf.load_hf_params(str(tmp_path / "bf16"), dtype=None)
    assert params["token_embedder"]["embedding"].dtype == ml_dtypes.bfloat16
    state = hf.params_to_hf_state(params)
    expected = model.state_dict()["decoder.block.2.layer.2.DenseReluDense.wo.weight"]
    np.testing.assert_array_equal(
        state["decoder.block.2.layer.2.DenseReluDense.wo.weight"].astype(np.float32), expected.float().numpy()
    )


def test_lm_head_omitted_by_transformers5_comes_from_shared(tmp_path):
    """transformers 5 drops lm_head.weight from the file when it is tied (equal) to shared.weight."""
    model = make_hf_model(untie=False)
    model.save_pretrained(str(tmp_path / "tied"))
    params, _ = hf.load_hf_params(str(tmp_path / "tied"))
    np.testing.assert_array_equal(params["decoder"]["logits_dense"]["kernel"], params["token_embedder"]["embedding"].T)


def _copy_with_config(src: str, dst, **changes) -> str:
    os.makedirs(dst)
    for name in os.listdir(src):
        if name != "config.json":
            os.link(os.path.join(src, name), os.path.join(dst, name))
    with open(os.path.join(src, "config.json")) as f:
        config = json.load(f)
    for key, value in changes.items():
        if value is None:
            config.pop(key, None)
        else:
            config[key] = value
    with open(os.path.join(dst, "config.json"), "w") as f:
        json.dump(config, f)
    return str(dst)


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"feed_forward_proj": "relu"}, "'feed_forward_proj'"),
        ({"scale_decoder_outputs": True}, "'scale_decoder_outputs'"),
        ({"scale_decoder_outputs": None, "tie_word_embeddings": True}, "'tie_word_embeddings'"),
        ({"d_kv": None}, "'d_kv' is missing"),
    ],
)
def test_config_errors_name_file_and_key(hf_folders, tmp_path, changes, message):
    folder = _copy_with_config(hf_folders["safetensors"], tmp_path / "bad", **changes)
    with pytest.raises(hf.CheckpointError, match=message) as error:
        hf.load_hf_params(folder)
    assert os.path.join(folder, "config.json") in str(error.value)


def test_unexpected_and_missing_tensors_are_named_with_their_file(hf_folders, tmp_path):
    from safetensors.numpy import load_file, save_file

    state = load_file(os.path.join(hf_folders["safetensors"], "model.safetensors"))
    extra = _copy_with_config(hf_folders["safetensors"], tmp_path / "extra")
    os.remove(os.path.join(extra, "model.safetensors"))
    save_file(
        {**state, "encoder.block.9.layer.0.layer_norm.weight": np.ones(16, np.float32)},
        os.path.join(extra, "model.safetensors"),
        metadata={"format": "pt"},
    )
    with pytest.raises(
        hf.CheckpointError,
        match=r"model\.safetensors: unexpected tensor "
        r"'encoder\.block\.9\.layer\.0\.layer_norm\.weight'",
    ):
        hf.load_hf_params(extra)

    missing = _copy_with_config(hf_folders["safetensors"], tmp_path / "missing")
    os.remove(os.path.join(missing, "model.safetensors"))
    del state["decoder.block.1.layer.2.DenseReluDense.wi_1.weight"]
    save_file(state, os.path.join(missing, "model.safetensors"), metadata={"format": "pt"})
    with pytest.raises(
        hf.CheckpointError,
        match=r"model\.safetensors: missing tensor.*"
        r"decoder\.block\.1\.layer\.2\.DenseReluDense\.wi_1\.weight",
    ):
        hf.load_hf_params(missing)


def test_shape_that_does_not_fit_the_config_is_named(hf_folders, tmp_path):
    folder = _copy_with_config(hf_folders["safetensors"], tmp_path / "wide", d_ff=32)
    with pytest.raises(
        hf.CheckpointError,
        match=r"model\.safetensors: tensor '.*DenseReluDense\.w.*' has shape "
        r"\((24, 16|16, 24)\); the config says \((32, 16|16, 32)\)",
    ):
        hf.load_hf_params(folder)


def test_lm_head_is_required_where_the_config_unties_it(hf_folders, tmp_path):
    """A transformers 4 config (tie_word_embeddings=false) promises an lm_head of its own."""
    model = make_hf_model(untie=False)
    model.save_pretrained(str(tmp_path / "tied"))
    folder = _copy_with_config(
        str(tmp_path / "tied"), tmp_path / "v4", scale_decoder_outputs=None, tie_word_embeddings=False
    )
    with pytest.raises(hf.CheckpointError, match=r"missing tensor\(s\) \['lm_head\.weight'\]"):
        hf.load_hf_params(folder)


def test_folder_without_weights_or_config(tmp_path):
    with pytest.raises(hf.CheckpointError, match="no weights found"):
        hf.weight_files(str(tmp_path))
    with pytest.raises(hf.CheckpointError, match="config.json: missing"):
        hf.load_hf_params(str(tmp_path))
