"""``iuie convert-checkpoint`` through ``iuie.cli.main``, checked against transformers' own tensors and
loader and against a checkpoint in T5X's on-disk format (written as ``t5x/checkpoints.py`` does)."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

from iuie import cli
from iuie.interop import hf, t5x
from tests.interop.conftest import hf_tensors, t5x_train_state, write_t5x_checkpoint


def _convert(*args: str) -> int:
    return cli.main(["convert-checkpoint", *map(str, args)])


def test_hf_to_iuie_to_hf_is_bit_exact_and_loads_in_transformers(hf_model, hf_folders, tmp_path):
    import transformers

    assert _convert(hf_folders["sharded_safetensors"], tmp_path / "iuie", "--from", "hf", "--to", "iuie") == 0
    with open(tmp_path / "iuie" / "iuie_config.json") as f:
        config = json.load(f)
    assert config["num_decoder_layers"] == 3 and config["param_dtype"] == "float32"

    assert _convert(tmp_path / "iuie", tmp_path / "hf", "--from", "iuie", "--to", "hf") == 0
    state = hf.params_to_hf_state(hf.load_hf_params(str(tmp_path / "hf"))[0])
    for name, array in hf_tensors(hf_model).items():
        if name not in ("encoder.embed_tokens.weight", "decoder.embed_tokens.weight"):
            assert np.array_equal(state[name], array), name
    _, info = transformers.T5ForConditionalGeneration.from_pretrained(str(tmp_path / "hf"), output_loading_info=True)
    assert not info["missing_keys"] and not info["unexpected_keys"]


def test_t5x_to_hf_and_iuie(hf_model, hf_folders, tmp_path):
    params, _ = hf.load_hf_params(hf_folders["safetensors"])
    write_t5x_checkpoint(tmp_path / "t5x" / "checkpoint_1184000", t5x_train_state(params), gcs=True)
    assert _convert(tmp_path / "t5x" / "checkpoint_1184000", tmp_path / "hf", "--from", "t5x", "--to", "hf") == 0
    converted = hf.params_to_hf_state(hf.load_hf_params(str(tmp_path / "hf"))[0])
    np.testing.assert_array_equal(converted["lm_head.weight"], hf_tensors(hf_model)["lm_head.weight"])

    assert _convert(tmp_path / "t5x", tmp_path / "iuie", "--from", "t5x", "--to", "iuie", "--dtype", "bfloat16") == 0
    loaded, fields = t5x.read_iuie_params(str(tmp_path / "iuie"), dtype=None)
    assert loaded["decoder"]["logits_dense"]["kernel"].dtype.name == "bfloat16"
    assert fields["param_dtype"] == "bfloat16" and fields["num_encoder_layers"] == 2


def test_errors(hf_folders, tmp_path, capsys):
    assert _convert(tmp_path / "nowhere", tmp_path / "out", "--from", "hf", "--to", "iuie") == 2
    assert "SRC does not exist" in capsys.readouterr().err

    (tmp_path / "taken").mkdir()
    assert _convert(hf_folders["safetensors"], tmp_path / "taken", "--from", "hf", "--to", "hf") == 2
    assert "DST exists already" in capsys.readouterr().err
    assert _convert(hf_folders["safetensors"], tmp_path / "taken", "--from", "hf", "--to", "hf", "--overwrite") == 0
    assert os.path.isfile(tmp_path / "taken" / "model.safetensors")

    assert _convert(hf_folders["safetensors"], tmp_path / "x", "--from", "onnx", "--to", "hf") == 2
    assert "unknown --from format 'onnx'" in capsys.readouterr().err
    assert _convert(hf_folders["safetensors"], tmp_path / "x", "--from", "hf", "--to", "t5x") == 2
    assert "unknown --to format 't5x'" in capsys.readouterr().err

    # A folder of the wrong kind: the message names it, and nothing is left behind.
    # (A user error: one line and exit status 2, issue 13.3; it was exit 1 before.)
    assert _convert(hf_folders["safetensors"], tmp_path / "y", "--from", "t5x", "--to", "hf") == 2
    assert hf_folders["safetensors"] in capsys.readouterr().err
    assert not os.path.exists(tmp_path / "y")


def test_sub_command_help(capsys):
    with pytest.raises(SystemExit):
        cli.main(["convert-checkpoint", "--help"])
    out = capsys.readouterr().out
    assert "--from" in out and "--overwrite" in out and "INITIAL_CHECKPOINT_PATH" in out
