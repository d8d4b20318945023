"""Tests of the model gin files ``gin/models/flan_t5_*.gin``.

Reference: Flan-T5's published dimensions (the ``config.json`` of google/flan-t5-{small,base,large,xl,xxl}:
d_model, num_heads, d_kv, d_ff, num_layers / num_decoder_layers, vocab_size 32128), written out below. Each file
is parsed with the repo's ``gin/`` folder as search path (as the binaries do) and the model built from it;
nothing is initialised except the tiny model.
"""

from __future__ import annotations

import importlib.util  # noqa: F401  (gin's resource reader uses importlib.util without importing it)
import pathlib

import jax
import jax.numpy as jnp
import pytest

import gin
from iuie.model.models import EncoderDecoderModel
from iuie.model.network import T5Config

GIN_DIR = pathlib.Path(__file__).resolve().parents[2] / "gin"

# size: (emb_dim, num_heads, head_dim, mlp_dim, encoder layers, decoder layers)
PUBLISHED = {
    "small": (512, 6, 64, 1024, 8, 8),
    "base": (768, 12, 64, 2048, 12, 12),
    "large": (1024, 16, 64, 2816, 24, 24),
    "xl": (2048, 32, 64, 5120, 24, 24),
    "xxl": (4096, 64, 64, 10240, 24, 24),
    "tiny": (64, 4, 16, 128, 2, 2),
}


def build(size: str, *bindings: str) -> EncoderDecoderModel:
    gin.clear_config()
    try:
        gin.add_config_file_search_path(str(GIN_DIR))
        gin.parse_config_files_and_bindings([f"models/flan_t5_{size}.gin"], ["DROPOUT_RATE = 0.0", *bindings])
        return gin.query_parameter("%MODEL").scoped_configurable_fn()
    finally:
        gin.clear_config()


def test_every_model_gin_file_is_tested():
    assert sorted(p.stem for p in (GIN_DIR / "models").glob("flan_t5_*.gin")) == sorted(
        f"flan_t5_{s}" for s in PUBLISHED
    )


@pytest.mark.parametrize("size", sorted(PUBLISHED))
def test_model_gin_builds_the_published_config(size):
    model = build(size)
    assert isinstance(model, EncoderDecoderModel)
    cfg = model.config
    assert isinstance(cfg, T5Config)
    got = (cfg.emb_dim, cfg.num_heads, cfg.head_dim, cfg.mlp_dim, cfg.num_encoder_layers, cfg.num_decoder_layers)
    assert got == PUBLISHED[size]
    assert cfg.vocab_size == 32128
    assert cfg.mlp_activations == ("gelu", "linear") and not cfg.logits_via_embedding
    assert (cfg.relative_attention_num_buckets, cfg.relative_attention_max_distance) == (32, 128)
    assert cfg.param_dtype == "float32" and cfg.dropout_rate == 0.0
    assert cfg.dtype == ("float32" if size == "tiny" else "bfloat16")
    assert cfg.remat_policy == ("dots_with_no_batch_dims" if size in ("xl", "xxl") else "none")
    assert model.z_loss == 1e-4 and model.loss_normalizing_factor is None and model.decode_method == "greedy"


def test_dropout_rate_is_required():
    gin.clear_config()
    try:
        gin.add_config_file_search_path(str(GIN_DIR))
        with pytest.raises(ValueError, match="DROPOUT_RATE"):
            gin.parse_config_files_and_bindings(["models/flan_t5_small.gin"], [])
    finally:
        gin.clear_config()


def test_tiny_with_a_project_vocabulary_runs():
    """VOCAB_SIZE and the loss macros are overridable; the tiny model's forward pass runs on CPU."""
    model = build("tiny", "VOCAB_SIZE = 256", "LOSS_NORMALIZING_FACTOR = 'NUM_REAL_TARGET_TOKENS'")
    assert model.config.vocab_size == 256 and model.loss_normalizing_factor == "NUM_REAL_TARGET_TOKENS"
    batch = {
        "encoder_input_tokens": jnp.array([[5, 6, 7, 1]]),
        "decoder_input_tokens": jnp.array([[0, 8, 9]]),
        "decoder_target_tokens": jnp.array([[8, 9, 1]]),
        "decoder_loss_weights": jnp.ones((1, 3)),
    }
    shapes = {k: v.shape for k, v in batch.items()}
    variables = jax.jit(lambda key: model.get_initial_variables(key, shapes))(jax.random.key(0, impl="rbg"))
    loss, metrics = jax.jit(model.loss_fn)(variables["params"], batch, None)
    assert jnp.isfinite(loss) and metrics["weight_sum"] == 3
