"""Tests of ``iuie.model.network`` / ``iuie.model.layers``.

References:
* the parameter tree: T5X's ``t5x/examples/t5/network.py`` layout, written out by hand below;
* numerics: Hugging Face transformers' PyTorch ``T5ForConditionalGeneration`` (T5 v1.1 / gated GELU, untied
  output layer) holding the same random weights: encoder outputs and logits agree to 1e-4 in float32, packed and
  unpacked, for several tiny shapes including odd head counts;
* the cached single-step decoder and the remat / bfloat16 / dropout options: iuie's own teacher-forced pass,
  itself checked against transformers above.
"""

from __future__ import annotations

import dataclasses

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from iuie.model import layers
from iuie.model.network import T5Config, Transformer
from tests.model.conftest import TINY_CONFIGS, fp32, init_params, pack, unpacked_batch

TOL = 1e-4
FEATURES = (
    "encoder_input_tokens",
    "decoder_input_tokens",
    "decoder_target_tokens",
    "encoder_segment_ids",
    "decoder_segment_ids",
    "encoder_positions",
    "decoder_positions",
)


def _encode_and_decode(
    module,
    encoder_input_tokens,
    decoder_input_tokens,
    decoder_target_tokens,
    encoder_segment_ids=None,
    decoder_segment_ids=None,
    encoder_positions=None,
    decoder_positions=None,
):
    encoded = module.encode(encoder_input_tokens, encoder_segment_ids, encoder_positions, enable_dropout=False)
    logits = module.decode(
        encoded,
        encoder_input_tokens,
        decoder_input_tokens,
        decoder_target_tokens,
        encoder_segment_ids,
        decoder_segment_ids,
        decoder_positions,
        enable_dropout=False,
    )
    return encoded, logits


def forward(module, params, batch):
    """Jitted ``(encoder outputs, logits)`` of a batch (one compile instead of op-by-op dispatch)."""
    features = {k: jnp.asarray(v) for k, v in batch.items() if k in FEATURES}
    fn = jax.jit(lambda p, f: module.apply({"params": p}, **f, method=_encode_and_decode))
    encoded, logits = fn(params, features)
    return np.asarray(encoded), np.asarray(logits)


# --------------------------------------------------------------------------------------------------------------
# Parameter tree and logical axes (reference: T5X's network.py)
# --------------------------------------------------------------------------------------------------------------


def _expected_t5x_tree(cfg: T5Config) -> dict[str, tuple[tuple[int, ...], tuple[str, ...]]]:
    e, j, m, v, h, b = cfg.emb_dim, cfg.num_heads * cfg.head_dim, cfg.mlp_dim, cfg.vocab_size, cfg.num_heads, 32
    attn = lambda p: {
        **{f"{p}/{n}/kernel": ((e, j), ("embed", "joined_kv")) for n in ("query", "key", "value")},
        f"{p}/out/kernel": ((j, e), ("joined_kv", "embed")),
    }
    mlp = lambda p: {
        f"{p}/wi_0/kernel": ((e, m), ("embed", "mlp")),
        f"{p}/wi_1/kernel": ((e, m), ("embed", "mlp")),
        f"{p}/wo/kernel": ((m, e), ("mlp", "embed")),
    }
    norm = lambda p: {f"{p}/scale": ((e,), ("embed",))}
    tree = {
        "token_embedder/embedding": ((v, e), ("vocab", "embed")),
        "encoder/relpos_bias/rel_embedding": ((h, b), ("heads", "relpos_buckets")),
        "decoder/relpos_bias/rel_embedding": ((h, b), ("heads", "relpos_buckets")),
        **norm("encoder/encoder_norm"),
        **norm("decoder/decoder_norm"),
        "decoder/logits_dense/kernel": ((e, v), ("embed", "vocab")),
    }
    for i in range(cfg.num_encoder_layers):
        p = f"encoder/layers_{i}"
        tree.update(attn(f"{p}/attention"))
        tree.update(norm(f"{p}/pre_attention_layer_norm"))
        tree.update(norm(f"{p}/pre_mlp_layer_norm"))
        tree.update(mlp(f"{p}/mlp"))
    for i in range(cfg.num_decoder_layers):
        p = f"decoder/layers_{i}"
        tree.update(attn(f"{p}/self_attention"))
        tree.update(attn(f"{p}/encoder_decoder_attention"))
        for n in ("pre_self_attention_layer_norm", "pre_cross_attention_layer_norm", "pre_mlp_layer_norm"):
            tree.update(norm(f"{p}/{n}"))
        tree.update(mlp(f"{p}/mlp"))
    return tree


def _flatten(tree) -> dict[str, object]:
    leaves = jax.tree_util.tree_flatten_with_path(tree, is_leaf=lambda x: isinstance(x, nn.LogicallyPartitioned))[0]
    return {"/".join(k.key for k in path): leaf for path, leaf in leaves}


def test_param_tree_shapes_and_logical_axes_equal_t5x():
    """Every parameter path, shape and logical axis name equals T5X's T5 1.1 network (no more, no fewer)."""
    cfg = T5Config(
        vocab_size=64,
        emb_dim=16,
        num_heads=3,
        head_dim=5,
        mlp_dim=24,
        num_encoder_layers=2,
        num_decoder_layers=3,
        dropout_rate=0.0,
    )
    shapes = {"encoder_input_tokens": (1, 6), "decoder_input_tokens": (1, 4)}
    module = Transformer(cfg)
    abstract = jax.eval_shape(
        lambda: module.init(
            jax.random.key(0),
            jnp.ones(shapes["encoder_input_tokens"], jnp.int32),
            jnp.ones(shapes["decoder_input_tokens"], jnp.int32),
            enable_dropout=False,
        )
    )
    got = _flatten(abstract["params"])
    expected = _expected_t5x_tree(cfg)
    assert sorted(got) == sorted(expected)
    for name, (shape, axes) in expected.items():
        leaf = got[name]
        assert isinstance(leaf, nn.LogicallyPartitioned), name
        assert leaf.value.shape == shape, name
        assert leaf.value.dtype == jnp.float32, name
        assert tuple(leaf.names) == axes, name
    # The spec tree the trainer turns into shardings.
    specs = nn.get_partition_spec(abstract["params"])
    assert specs["decoder"]["logits_dense"]["kernel"] == jax.sharding.PartitionSpec("embed", "vocab")


# --------------------------------------------------------------------------------------------------------------
# Relative position buckets (reference: transformers' T5Attention._relative_position_bucket)
# --------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("num_buckets,max_distance", [(32, 128), (8, 12), (16, 20), (10, 9), (32, 64)])
@pytest.mark.parametrize("bidirectional", [True, False])
def test_relative_position_buckets_equal_transformers(num_buckets, max_distance, bidirectional):
    torch = pytest.importorskip("torch", reason="needs torch to compare with transformers")
    modeling_t5 = pytest.importorskip("transformers.models.t5.modeling_t5", reason="needs transformers")
    rel = np.arange(-400, 401)
    theirs = modeling_t5.T5Attention._relative_position_bucket(
        torch.tensor(rel), bidirectional=bidirectional, num_buckets=num_buckets, max_distance=max_distance
    ).numpy()
    ours = layers.relative_position_bucket(
        jnp.asarray(rel, jnp.int32), bidirectional=bidirectional, num_buckets=num_buckets, max_distance=max_distance
    )
    np.testing.assert_array_equal(np.asarray(ours), theirs)


# --------------------------------------------------------------------------------------------------------------
# Logits against transformers
# --------------------------------------------------------------------------------------------------------------


def _hf_forward(hf_model, batch):
    import torch

    with torch.no_grad():
        out = hf_model(
            input_ids=torch.tensor(batch["encoder_input_tokens"], dtype=torch.long),
            attention_mask=torch.tensor(batch["encoder_input_tokens"] != 0, dtype=torch.long),
            decoder_input_ids=torch.tensor(batch["decoder_input_tokens"], dtype=torch.long),
        )
    return out.encoder_last_hidden_state.numpy(), out.logits.numpy()


@pytest.fixture(scope="module")
def hf_available():
    pytest.importorskip("torch", reason="transformers comparisons need torch")
    pytest.importorskip("transformers", reason="transformers comparisons need transformers")


@pytest.mark.parametrize("name", sorted(TINY_CONFIGS))
def test_logits_match_transformers_unpacked_and_packed(name, np_rng, hf_available):
    """Same weights, fp32: encoder outputs and decoder logits equal transformers' T5ForConditionalGeneration
    (max abs diff <= 1e-4) at every non-padding position; packing the same examples changes nothing."""
    from tests.model.hf_weights import build_hf_model

    cfg = fp32(TINY_CONFIGS[name])
    batch = unpacked_batch(np_rng, cfg.vocab_size, [17, 9, 4, 13], [7, 11, 3, 5], input_width=20, target_width=12)
    module, params = init_params(cfg, batch)
    hf_encoded, hf_logits = _hf_forward(build_hf_model(params, cfg), batch)

    encoded, logits = forward(module, params, batch)
    enc_valid = batch["encoder_input_tokens"] > 0
    dec_valid = batch["decoder_target_tokens"] > 0
    assert np.abs(encoded - hf_encoded)[enc_valid].max() <= TOL
    assert np.abs(logits - hf_logits)[dec_valid].max() <= TOL

    # Packed: example 0 alone, examples 1+2+3 in one row (with padding after them).
    rows = [[0], [1, 2, 3]]
    packed_encoded, packed_logits = forward(module, params, pack(batch, rows, input_width=32, target_width=20))
    for r, examples in enumerate(rows):
        e_at = d_at = 0
        for ex in examples:
            n, m = int(enc_valid[ex].sum()), int(dec_valid[ex].sum())
            np.testing.assert_allclose(packed_encoded[r, e_at : e_at + n], hf_encoded[ex, :n], atol=TOL, rtol=0)
            np.testing.assert_allclose(packed_logits[r, d_at : d_at + m], hf_logits[ex, :m], atol=TOL, rtol=0)
            e_at, d_at = e_at + n, d_at + m


def _equations(jaxpr):
    """Every equation of a jaxpr and of the jaxprs nested in it (remat, pjit, custom derivatives)."""
    for eqn in jaxpr.eqns:
        yield eqn
        for param in eqn.params.values():
            for sub in param if isinstance(param, (list, tuple)) else (param,):
                inner = getattr(sub, "jaxpr", sub)
                if hasattr(inner, "eqns"):
                    yield from _equations(inner)


def test_packed_rows_share_one_position_bias_per_row_in_the_training_graph(np_rng):
    """The gradient of a packed batch gathers the relative position table once per stack for all rows
    (``[heads, 1, q, k]``), not per example (``[heads, rows, q, k]``, whose backward pass is a scatter-add over
    every row, query and key: 12.44 GiB of TPU temporaries for the tiny model at the paper's batch, 0.87 without)."""
    cfg = fp32(TINY_CONFIGS[sorted(TINY_CONFIGS)[0]])
    batch = unpacked_batch(np_rng, cfg.vocab_size, [9, 4, 13], [7, 3, 5], input_width=14, target_width=8)
    packed = pack(batch, [[0], [1, 2]], input_width=20, target_width=10)
    module, params = init_params(cfg, packed)
    features = {k: jnp.asarray(v) for k, v in packed.items() if k in FEATURES}
    loss = lambda p: module.apply({"params": p}, **features, enable_dropout=False).sum()
    jaxpr = jax.make_jaxpr(jax.grad(loss))(params).jaxpr
    table_shape = (cfg.num_heads, cfg.relative_attention_num_buckets)
    gathers = [e for e in _equations(jaxpr) if e.primitive.name == "gather" and e.invars[0].aval.shape == table_shape]
    shapes = sorted(e.outvars[0].aval.shape for e in gathers)
    assert shapes == [(cfg.num_heads, 1, 10, 10), (cfg.num_heads, 1, 20, 20)]  # decoder, encoder: one per stack


def test_tied_output_layer_matches_transformers_original_t5(np_rng, hf_available):
    """``logits_via_embedding=True`` (original T5: tied output layer, decoder output scaled by d_model**-0.5)
    equals transformers with ``tie_word_embeddings=True``."""
    import torch
    import transformers

    from tests.model.hf_weights import hf_config, hf_state_dict

    cfg = fp32(TINY_CONFIGS["h3_d5"], logits_via_embedding=True)
    batch = unpacked_batch(np_rng, cfg.vocab_size, [12, 5], [6, 4], input_width=12, target_width=6)
    module, params = init_params(cfg, batch)
    hf_model = transformers.T5ForConditionalGeneration(hf_config(cfg)).float().eval()
    assert hf_model.config.scale_decoder_outputs
    own = dict(hf_model.named_parameters())  # lm_head is shared.weight here
    with torch.no_grad():
        for k, v in hf_state_dict(params, cfg).items():
            if k != "lm_head.weight":
                own[k].copy_(torch.from_numpy(np.array(v, np.float32)))
    _, hf_logits = _hf_forward(hf_model, batch)
    _, logits = forward(module, params, batch)
    valid = batch["decoder_target_tokens"] > 0
    assert np.abs(logits - hf_logits)[valid].max() <= TOL


# --------------------------------------------------------------------------------------------------------------
# Cached decoding, remat, dtypes, dropout (reference: iuie's teacher-forced pass, checked above)
# --------------------------------------------------------------------------------------------------------------


def test_cached_single_step_decoding_equals_teacher_forcing(np_rng):
    """Feeding the target one token at a time through the key/value caches reproduces the teacher-forced logits;
    the cross-attention keys/values are projected once and later steps need no encoder outputs."""
    cfg = fp32(TINY_CONFIGS["h3_d5"])
    batch = unpacked_batch(np_rng, cfg.vocab_size, [14, 6], [9, 9], input_width=14, target_width=9)
    module, params = init_params(cfg, batch)
    enc = jnp.asarray(batch["encoder_input_tokens"])
    dec_in = jnp.asarray(batch["decoder_input_tokens"])
    teacher = module.apply(
        {"params": params}, enc, dec_in, jnp.asarray(batch["decoder_target_tokens"]), enable_dropout=False
    )
    encoded = module.apply({"params": params}, enc, enable_dropout=False, method=module.encode)
    length = dec_in.shape[1]

    @jax.jit
    def step(cache, t, encoded_or_none):
        variables = {"params": params} if cache is None else {"params": params, "cache": cache}
        logits, new_vars = module.apply(
            variables,
            encoded_or_none,
            enc,
            jax.lax.dynamic_slice_in_dim(dec_in, t, 1, axis=1),
            decoder_positions=jnp.full((2, 1), t),
            enable_dropout=False,
            decode=True,
            max_decode_length=length,
            mutable=["cache"],
            method=module.decode,
        )
        return logits[:, 0], new_vars["cache"]

    cache = None
    for t in range(length):
        logits, cache = step(cache, t, encoded if t == 0 else None)
        np.testing.assert_allclose(np.asarray(logits), np.asarray(teacher[:, t]), atol=1e-5, rtol=0)
    # Heads-major caches (layers.MultiHeadAttention): [batch, heads, length, head_dim].
    assert cache["decoder"]["layers_0"]["self_attention"]["cached_key"].shape == (2, 3, length, 5)
    assert cache["decoder"]["layers_0"]["encoder_decoder_attention"]["cached_key"].shape == (2, 3, 14, 5)


def _loss(module, params, batch, rng=None):
    features = {k: jnp.asarray(v) for k, v in batch.items() if k in FEATURES}
    logits = module.apply(
        {"params": params}, **features, enable_dropout=rng is not None, rngs=None if rng is None else {"dropout": rng}
    )
    log_probs = jax.nn.log_softmax(logits)
    token = jnp.take_along_axis(log_probs, features["decoder_target_tokens"][..., None], axis=-1)[..., 0]
    return -jnp.sum(token * batch["decoder_loss_weights"])


@pytest.mark.parametrize("policy", ["full", "minimal", "save_dot_except_mlpwi"])
def test_remat_changes_neither_values_nor_gradients(np_rng, policy):
    """Per-layer rematerialisation (full, and policies that keep some matmuls or the named projections
    tagged in ``layers``), with dropout on: same loss and gradients as without (the dropout masks recomputed
    in the backward pass are the forward pass's)."""
    cfg = dataclasses.replace(fp32(TINY_CONFIGS["h3_d5"]), dropout_rate=0.1)
    batch = unpacked_batch(np_rng, cfg.vocab_size, [10, 7], [6, 4], input_width=10, target_width=6)
    module, params = init_params(cfg, batch)
    remat_module = Transformer(dataclasses.replace(cfg, remat_policy=policy))
    rng = jax.random.key(3, impl="rbg")  # rbg: a much cheaper compile than threefry on CPU
    loss, grads = jax.jit(jax.value_and_grad(lambda p: _loss(module, p, batch, rng)))(nn.unbox(params))
    loss_r, grads_r = jax.jit(jax.value_and_grad(lambda p: _loss(remat_module, p, batch, rng)))(nn.unbox(params))
    np.testing.assert_allclose(loss, loss_r, rtol=1e-6)
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, atol=1e-5, rtol=1e-4), grads, grads_r)


def test_bfloat16_activations_stay_close_to_float32(np_rng):
    """bf16 activations (the default) with fp32 params: logits stay float32 and near the fp32 result."""
    cfg = fp32(TINY_CONFIGS["h4_d8_3x2"])
    batch = unpacked_batch(np_rng, cfg.vocab_size, [10, 7], [6, 4], input_width=10, target_width=6)
    module, params = init_params(cfg, batch)
    bf16_module = Transformer(dataclasses.replace(cfg, dtype="bfloat16"))
    _, ref = forward(module, params, batch)
    _, out = forward(bf16_module, params, batch)
    assert out.dtype == np.float32
    valid = batch["decoder_target_tokens"] > 0
    scale = np.abs(np.asarray(ref)[valid]).max()
    assert np.abs(out - ref)[valid].max() <= 0.05 * scale
    assert jax.tree.leaves(nn.unbox(params))[0].dtype == jnp.float32


def test_dropout_needs_an_rng_and_is_off_when_disabled(np_rng):
    cfg = dataclasses.replace(fp32(TINY_CONFIGS["h3_d5"]), dropout_rate=0.3)
    batch = unpacked_batch(np_rng, cfg.vocab_size, [8], [5], input_width=8, target_width=5)
    module, params = init_params(cfg, batch)
    loss = jax.jit(lambda rng: _loss(module, params, batch, rng))
    assert not np.isclose(loss(jax.random.key(0, impl="rbg")), loss(jax.random.key(1, impl="rbg")))
    np.testing.assert_allclose(forward(module, params, batch)[1], forward(module, params, batch)[1])
    with pytest.raises(Exception):
        features = {k: jnp.asarray(v) for k, v in batch.items() if k in FEATURES}
        module.apply({"params": params}, **features, enable_dropout=True)


def test_config_validation():
    with pytest.raises(ValueError):
        T5Config(remat_policy="sometimes")
    assert T5Config(mlp_activations=["gelu", "linear"]).mlp_activations == ("gelu", "linear")
    hash(T5Config())  # usable as a static jit argument
