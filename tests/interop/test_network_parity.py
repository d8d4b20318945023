"""Imported Hugging Face weights in the iuie network, checked against transformers' PyTorch T5.

The test that matters most for interop: the same weights give the same logits in both implementations
(float32, max abs difference <= 1e-4), and the converted tree has exactly the structure, shapes and dtypes of
the iuie network's own init (``jax.eval_shape``), so a trainer can restore it in place of a fresh init.
The network is imported plainly: a broken import is a failure, never a skip.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from iuie.interop import hf
from iuie.model import network


@pytest.fixture(scope="module")
def imported(hf_folders):
    params, config = hf.load_hf(hf_folders["safetensors"])
    return params, dataclasses.replace(config, dtype="float32", param_dtype="float32")


def _tokens(seed: int = 0):
    rng = np.random.default_rng(seed)
    encoder = rng.integers(2, 64, size=(2, 13)).astype(np.int32)
    encoder[1, 9:] = 0  # padding in the second row
    targets = rng.integers(2, 64, size=(2, 11)).astype(np.int32)
    decoder_input = np.concatenate([np.zeros((2, 1), np.int32), targets[:, :-1]], axis=1)  # 0 = start token
    return encoder, decoder_input, targets


def test_converted_tree_matches_network_init(imported):
    import jax
    import jax.numpy as jnp
    from flax.core import meta

    params, config = imported
    tokens = jnp.ones((1, 4), jnp.int32)
    shapes = jax.eval_shape(
        lambda: network.Transformer(config).init(jax.random.key(0), tokens, tokens, tokens, enable_dropout=False)
    )
    expected = meta.unbox(shapes)["params"]
    flat_expected = {
        jax.tree_util.keystr(k): (v.shape, v.dtype) for k, v in jax.tree_util.tree_leaves_with_path(expected)
    }
    flat_actual = {jax.tree_util.keystr(k): (v.shape, v.dtype) for k, v in jax.tree_util.tree_leaves_with_path(params)}
    assert flat_actual == flat_expected


def test_logits_equal_transformers(hf_model, imported):
    import torch

    params, config = imported
    encoder, decoder_input, targets = _tokens()
    logits = network.Transformer(config).apply(
        {"params": params}, encoder, decoder_input, targets, enable_dropout=False
    )
    with torch.no_grad():
        reference = hf_model(
            input_ids=torch.from_numpy(encoder).long(),
            attention_mask=torch.from_numpy(encoder > 0).long(),
            decoder_input_ids=torch.from_numpy(decoder_input).long(),
        ).logits.numpy()
    logits = np.asarray(logits)
    assert logits.shape == reference.shape == (2, 11, 64)
    assert np.abs(reference).max() > 0.1  # not a comparison of near-zero outputs
    np.testing.assert_allclose(logits, reference, atol=1e-4, rtol=0)
