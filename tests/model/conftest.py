"""Shared builders for the model tests: tiny random FlanT5 networks (fp32, no dropout) and their batches.

Nothing here downloads: every model is initialised at random, and the Hugging Face twin of a network is built
from its config and weights by ``tests.model.hf_weights``.
"""

from __future__ import annotations

import dataclasses

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from iuie.model.network import T5Config, Transformer

# Tiny shapes that exercise odd head counts, head_dim != emb_dim / heads, and (with few buckets and a short
# max distance) the logarithmic bucket range on short sequences.
TINY_CONFIGS = {
    "h3_d5": T5Config(
        vocab_size=120,
        emb_dim=16,
        num_heads=3,
        head_dim=5,
        mlp_dim=24,
        num_encoder_layers=2,
        num_decoder_layers=2,
        relative_attention_num_buckets=8,
        relative_attention_max_distance=12,
    ),
    "h4_d8_3x2": T5Config(
        vocab_size=300,
        emb_dim=32,
        num_heads=4,
        head_dim=8,
        mlp_dim=40,
        num_encoder_layers=3,
        num_decoder_layers=2,
    ),
    "h1_d8": T5Config(
        vocab_size=100,
        emb_dim=8,
        num_heads=1,
        head_dim=8,
        mlp_dim=16,
        num_encoder_layers=2,
        num_decoder_layers=3,
        relative_attention_num_buckets=16,
        relative_attention_max_distance=20,
    ),
    "h5_d3": T5Config(
        vocab_size=150,
        emb_dim=12,
        num_heads=5,
        head_dim=3,
        mlp_dim=20,
        num_encoder_layers=2,
        num_decoder_layers=2,
        relative_attention_num_buckets=10,
        relative_attention_max_distance=9,
    ),
}


def fp32(cfg: T5Config, **overrides) -> T5Config:
    """The config in float32 without dropout: the setting for exact comparisons."""
    return dataclasses.replace(cfg, dtype="float32", dropout_rate=0.0, **overrides)


def random_tokens(rng: np.random.Generator, vocab: int, lengths: list[int], width: int) -> np.ndarray:
    """Rows of random non-special tokens (ids >= 2) of the given lengths, zero-padded to ``width``."""
    out = np.zeros((len(lengths), width), np.int32)
    for i, n in enumerate(lengths):
        out[i, :n] = rng.integers(2, vocab, n)
    return out


def shift_right(targets: np.ndarray) -> np.ndarray:
    """Decoder inputs from targets: start token 0, then the targets without their last position."""
    return np.concatenate([np.zeros_like(targets[:, :1]), targets[:, :-1]], axis=1)


def unpacked_batch(rng, vocab, input_lengths, target_lengths, input_width, target_width) -> dict[str, np.ndarray]:
    """A seqio-style unpacked batch: targets end in EOS (1) and are zero-padded."""
    inputs = random_tokens(rng, vocab, input_lengths, input_width)
    targets = random_tokens(rng, vocab, target_lengths, target_width)
    for i, n in enumerate(target_lengths):
        targets[i, n - 1] = 1
    return {
        "encoder_input_tokens": inputs,
        "decoder_input_tokens": shift_right(targets),
        "decoder_target_tokens": targets,
        "decoder_loss_weights": (targets > 0).astype(np.float32),
    }


def pack(batch: dict[str, np.ndarray], rows: list[list[int]], input_width: int, target_width: int):
    """Packs the examples of an unpacked batch into rows the way seqio's EncDecFeatureConverter does: each
    example's tokens are concatenated, decoder inputs restart at 0 for every example, segment ids count 1, 2, ...
    per row and positions restart at 0. ``rows`` lists example indices per packed row."""
    out = {
        k: np.zeros((len(rows), input_width if k.startswith("encoder") else target_width), np.int32)
        for k in (
            "encoder_input_tokens",
            "encoder_segment_ids",
            "encoder_positions",
            "decoder_input_tokens",
            "decoder_target_tokens",
            "decoder_segment_ids",
            "decoder_positions",
        )
    }
    out["decoder_loss_weights"] = np.zeros((len(rows), target_width), np.float32)
    for r, examples in enumerate(rows):
        e_at = d_at = 0
        for seg, ex in enumerate(examples, start=1):
            inp = batch["encoder_input_tokens"][ex]
            inp = inp[inp > 0]
            tgt = batch["decoder_target_tokens"][ex]
            tgt = tgt[tgt > 0]
            n, m = len(inp), len(tgt)
            out["encoder_input_tokens"][r, e_at : e_at + n] = inp
            out["encoder_segment_ids"][r, e_at : e_at + n] = seg
            out["encoder_positions"][r, e_at : e_at + n] = np.arange(n)
            out["decoder_target_tokens"][r, d_at : d_at + m] = tgt
            out["decoder_input_tokens"][r, d_at : d_at + m] = np.concatenate([[0], tgt[:-1]])
            out["decoder_segment_ids"][r, d_at : d_at + m] = seg
            out["decoder_positions"][r, d_at : d_at + m] = np.arange(m)
            out["decoder_loss_weights"][r, d_at : d_at + m] = 1.0
            e_at, d_at = e_at + n, d_at + m
    return out


def random_params(module: Transformer, batch: dict[str, np.ndarray], seed: int = 0):
    """Random params with the module's exact tree, shapes and logical-axis boxes, drawn with numpy.

    Faster than ``module.init`` (whose threefry-heavy program takes seconds to compile on CPU) and more
    searching: norm scales are drawn around 1 instead of all ones, so a mapping that swaps two norms fails.
    Kernels are N(0, 1/fan_in) like T5X's, the query kernels 1/sqrt(head_dim) smaller as T5 folds it there.
    """
    abstract = jax.eval_shape(
        lambda: module.init(
            jax.random.key(0),
            jnp.asarray(batch["encoder_input_tokens"]),
            jnp.asarray(batch["decoder_input_tokens"]),
            enable_dropout=False,
        )
    )["params"]
    rng = np.random.default_rng(seed)
    head_dim = module.config.head_dim

    def draw(path, box):
        name = "/".join(k.key for k in path)
        shape = box.value.shape
        if name.endswith("scale"):
            value = 1.0 + 0.2 * rng.standard_normal(shape)
        elif name.endswith("embedding") and "relpos" not in name:
            value = rng.standard_normal(shape)
        elif "relpos" in name:
            value = 0.5 * rng.standard_normal(shape)
        else:
            value = rng.standard_normal(shape) / np.sqrt(shape[0])
            if name.endswith("query/kernel"):
                value = value / np.sqrt(head_dim)
        return box.replace_boxed(jnp.asarray(value, box.value.dtype))

    return jax.tree_util.tree_map_with_path(draw, abstract, is_leaf=lambda x: isinstance(x, nn.LogicallyPartitioned))


def init_params(cfg: T5Config, batch: dict[str, np.ndarray], seed: int = 0):
    """``(module, random params)`` for ``cfg`` (see ``random_params``)."""
    module = Transformer(cfg)
    return module, random_params(module, batch, seed)


@pytest.fixture
def np_rng() -> np.random.Generator:
    return np.random.default_rng(1234)
