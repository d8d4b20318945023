"""The T5 v1.1 / Flan-T5 encoder-decoder Transformer in Flax linen.

Architecture (what Flan-T5 checkpoints expect): pre-norm residual blocks with RMS norm (eps 1e-6), gated-GELU
feed-forward (tanh-approximate GELU), no biases anywhere, learned relative position buckets (one bias table per
stack, shared by its layers; bidirectional in the encoder, causal in the decoder), no 1/sqrt(d) attention scaling
at run time, and an untied output layer ``decoder/logits_dense``.

The parameter tree equals T5X's ``t5x/examples/t5/network.py``::

  token_embedder/embedding                              (vocab, embed)
  encoder/relpos_bias/rel_embedding                     (heads, relpos_buckets)
  encoder/layers_{i}/pre_attention_layer_norm/scale     (embed,)
  encoder/layers_{i}/attention/{query,key,value}/kernel (embed, joined_kv)     joined_kv = heads * head_dim
  encoder/layers_{i}/attention/out/kernel               (joined_kv, embed)
  encoder/layers_{i}/pre_mlp_layer_norm/scale           (embed,)
  encoder/layers_{i}/mlp/{wi_0,wi_1}/kernel             (embed, mlp)
  encoder/layers_{i}/mlp/wo/kernel                      (mlp, embed)
  encoder/encoder_norm/scale
  decoder/relpos_bias/rel_embedding
  decoder/layers_{i}/{pre_self_attention_layer_norm, self_attention, pre_cross_attention_layer_norm,
                      encoder_decoder_attention, pre_mlp_layer_norm, mlp}/...
  decoder/decoder_norm/scale
  decoder/logits_dense/kernel                           (embed, vocab)

The network knows nothing about losses, decoding loops or optimizers (see ``iuie.model.models``).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from iuie.model import layers

Array = jax.Array

_names = jax.checkpoint_policies.save_only_these_names
_QKV = ("query_proj", "key_proj", "value_proj")
# Per-layer rematerialisation policies under T5X's / MaxText's names (what the backward pass keeps from the
# forward pass; everything else is recomputed). The named ones select the projection outputs tagged in
# ``iuie.model.layers``.
REMAT_POLICIES = {
    "none": None,  # no rematerialisation: keep every activation
    "full": jax.checkpoint_policies.nothing_saveable,  # keep only the layer's inputs, recompute the rest
    # Keep every matmul output without batch dimensions (the projections and FFN matmuls, not the attention
    # scores): T5X's and MaxText's "minimal".
    "minimal": jax.checkpoint_policies.checkpoint_dots_with_no_batch_dims,
    "dots_with_no_batch_dims": jax.checkpoint_policies.checkpoint_dots_with_no_batch_dims,  # jax's name
    "dots_saveable": jax.checkpoint_policies.dots_saveable,  # every matmul output, attention scores too
    "dots": jax.checkpoint_policies.checkpoint_dots,  # the same, jax's older name
    "save_dot_except_mlpwi": _names(*_QKV, "out_proj", "mlpwo"),
    "save_dot_except_mlp": _names(*_QKV, "out_proj"),
    "save_qkv_proj": _names(*_QKV),
    "save_out_proj": _names("out_proj"),
}


@dataclasses.dataclass(frozen=True)
class T5Config:
    """Hyperparameters of the network. Defaults are Flan-T5 small's published dimensions.

    Attributes:
      vocab_size: rows of the embedding and columns of the output layer (32128 for Flan-T5).
      emb_dim: d_model.
      num_heads: attention heads.
      num_encoder_layers, num_decoder_layers: stack depths.
      head_dim: d_kv, the per-head width (need not equal emb_dim / num_heads).
      mlp_dim: d_ff.
      mlp_activations: ('gelu', 'linear') is gated GELU; ('relu',) is the original T5 FFN.
      dropout_rate: for embeddings, residual branches, attention weights and the FFN.
      dtype: activation/compute dtype ('bfloat16' or 'float32').
      param_dtype: stored parameter dtype.
      logits_via_embedding: tie the output layer to the embedding (original T5); Flan-T5 unties them.
      float32_attention_logits: compute query-key products in float32.
      relative_attention_num_buckets, relative_attention_max_distance: T5's relative position buckets.
      layer_norm_epsilon: RMS norm epsilon.
      remat_policy: per-layer rematerialisation: 'none', 'full', 'minimal', 'dots_saveable',
        'save_dot_except_mlpwi', 'save_dot_except_mlp', 'save_qkv_proj', 'save_out_proj' (and jax's names
        'dots', 'dots_with_no_batch_dims'; see ``REMAT_POLICIES``); it changes memory and speed, never the
        parameter tree or the values.
    """

    vocab_size: int = 32128
    emb_dim: int = 512
    num_heads: int = 6
    num_encoder_layers: int = 8
    num_decoder_layers: int = 8
    head_dim: int = 64
    mlp_dim: int = 1024
    mlp_activations: tuple[str, ...] = ("gelu", "linear")
    dropout_rate: float = 0.1
    dtype: Any = "bfloat16"
    param_dtype: Any = "float32"
    logits_via_embedding: bool = False
    float32_attention_logits: bool = False
    relative_attention_num_buckets: int = 32
    relative_attention_max_distance: int = 128
    layer_norm_epsilon: float = 1e-6
    remat_policy: str = "none"

    def __post_init__(self):
        # Lists (from gin or JSON) become tuples so the config stays hashable.
        object.__setattr__(self, "mlp_activations", tuple(self.mlp_activations))
        if self.remat_policy not in REMAT_POLICIES:
            raise ValueError(f"remat_policy must be one of {sorted(REMAT_POLICIES)}, got {self.remat_policy!r}")

    @property
    def compute_dtype(self) -> jnp.dtype:
        return jnp.dtype(self.dtype)

    @property
    def weight_dtype(self) -> jnp.dtype:
        return jnp.dtype(self.param_dtype)


def _maybe_remat(layer_cls: type[nn.Module], cfg: T5Config, training_graph: bool) -> type[nn.Module]:
    policy_name = cfg.remat_policy
    if policy_name == "none" or not training_graph:
        return layer_cls
    return nn.remat(layer_cls, policy=REMAT_POLICIES[policy_name], prevent_cse=True)


def _dropout(cfg: T5Config, deterministic: bool, x: Array, broadcast_length: bool = True) -> Array:
    dims = (-2,) if broadcast_length else ()
    return nn.Dropout(rate=cfg.dropout_rate, broadcast_dims=dims)(x, deterministic=deterministic)


def _mlp_sublayer(cfg: T5Config, deterministic: bool, x: Array) -> Array:
    """The pre-norm gated-GELU block with its residual, the last sub-layer of both layer kinds.

    Called inside a layer's ``nn.compact`` method, so its modules (``pre_mlp_layer_norm``, ``mlp``) are the
    calling layer's children, with T5X's names.
    """
    dt, pdt = cfg.compute_dtype, cfg.weight_dtype
    y = layers.RMSNorm(cfg.layer_norm_epsilon, dtype=dt, param_dtype=pdt, name="pre_mlp_layer_norm")(x)
    y = layers.MlpBlock(
        intermediate_dim=cfg.mlp_dim,
        activations=cfg.mlp_activations,
        dropout_rate=cfg.dropout_rate,
        dtype=dt,
        param_dtype=pdt,
        name="mlp",
    )(y, deterministic=deterministic)
    y = _dropout(cfg, deterministic, y) + x
    return nn.with_logical_constraint(y, ("batch", "length", "embed"))


class EncoderLayer(nn.Module):
    """Pre-norm self-attention block, then pre-norm gated-GELU block, each with a residual connection."""

    config: T5Config
    deterministic: bool = True

    @nn.compact
    def __call__(self, inputs: Array, mask: Array | None, position_bias: Array) -> Array:
        cfg = self.config
        dt, pdt = cfg.compute_dtype, cfg.weight_dtype
        norm = lambda name: layers.RMSNorm(cfg.layer_norm_epsilon, dtype=dt, param_dtype=pdt, name=name)

        x = norm("pre_attention_layer_norm")(inputs)
        x = layers.MultiHeadAttention(
            num_heads=cfg.num_heads,
            head_dim=cfg.head_dim,
            dropout_rate=cfg.dropout_rate,
            dtype=dt,
            param_dtype=pdt,
            float32_logits=cfg.float32_attention_logits,
            name="attention",
        )(x, x, mask, position_bias, deterministic=self.deterministic)
        x = _dropout(cfg, self.deterministic, x) + inputs

        return _mlp_sublayer(cfg, self.deterministic, x)


class DecoderLayer(nn.Module):
    """Self-attention, cross-attention to the encoder, gated-GELU block; pre-norm residuals.

    With ``decode=True`` the layer runs one token at a time against the key/value caches (see
    ``layers.MultiHeadAttention``).
    """

    config: T5Config
    deterministic: bool = True
    decode: bool = False
    max_decode_length: int | None = None

    @nn.compact
    def __call__(
        self,
        inputs: Array,
        encoded: Array | None,
        self_mask: Array | None,
        cross_mask: Array | None,
        position_bias: Array,
        decode_position: Array | None = None,
    ) -> Array:
        cfg = self.config
        dt, pdt = cfg.compute_dtype, cfg.weight_dtype
        norm = lambda name: layers.RMSNorm(cfg.layer_norm_epsilon, dtype=dt, param_dtype=pdt, name=name)
        attention = lambda name: layers.MultiHeadAttention(
            num_heads=cfg.num_heads,
            head_dim=cfg.head_dim,
            dropout_rate=cfg.dropout_rate,
            dtype=dt,
            param_dtype=pdt,
            float32_logits=cfg.float32_attention_logits,
            name=name,
        )

        x = norm("pre_self_attention_layer_norm")(inputs)
        x = attention("self_attention")(
            x,
            x,
            self_mask,
            position_bias,
            deterministic=self.deterministic,
            decode_position=decode_position if self.decode else None,
            max_decode_length=self.max_decode_length,
        )
        x = _dropout(cfg, self.deterministic, x) + inputs

        y = norm("pre_cross_attention_layer_norm")(x)
        y = attention("encoder_decoder_attention")(
            y, encoded, cross_mask, deterministic=self.deterministic, cache_kv=self.decode
        )
        y = _dropout(cfg, self.deterministic, y) + x

        return _mlp_sublayer(cfg, self.deterministic, y)


def _relpos_module(cfg: T5Config) -> layers.RelativePositionBiases:
    return layers.RelativePositionBiases(
        num_buckets=cfg.relative_attention_num_buckets,
        max_distance=cfg.relative_attention_max_distance,
        num_heads=cfg.num_heads,
        dtype=cfg.compute_dtype,
        param_dtype=cfg.weight_dtype,
        name="relpos_bias",
    )


def _default_positions(length: int) -> Array:
    return jnp.arange(length, dtype=jnp.int32)[None, :]


def _index_position_bias(cfg: T5Config, length: int, bidirectional: bool) -> Array:
    """The relative position bias of a whole row, ``[1, heads, length, length]``, from the row's indices.

    Packed rows need no per-example bias: within a segment the distance between two positions is the distance
    between their indices, and pairs across segments are masked, so the ``*_positions`` features change nothing
    (T5X and transformers compute the bias from indices as well). A bias from the positions would be
    ``[batch, heads, q, k]``: a per-example gather whose gradient is a scatter-add over every (row, query, key);
    for the tiny model at the paper's batch and lengths on a v5e 2x2 the TPU compiler's temporaries were 12.44 GiB
    per device with it and are 0.87 GiB without (docs/performance.md).
    """
    positions = _default_positions(length)
    return _relpos_module(cfg)(positions, positions, bidirectional=bidirectional)


class Encoder(nn.Module):
    """Embeds the input tokens and runs the encoder stack."""

    config: T5Config
    shared_embedding: nn.Module

    @nn.compact
    def __call__(self, tokens: Array, mask: Array | None, deterministic: bool = True) -> Array:
        cfg = self.config
        # Computed once and shared by every layer (T5X recomputes it per layer from the same table; the result
        # is identical), from the row's indices: see _index_position_bias.
        position_bias = _index_position_bias(cfg, tokens.shape[-1], bidirectional=True)

        x = self.shared_embedding(tokens.astype(jnp.int32))
        x = _dropout(cfg, deterministic, x).astype(cfg.compute_dtype)
        layer_cls = _maybe_remat(EncoderLayer, cfg, training_graph=not deterministic)
        for i in range(cfg.num_encoder_layers):
            x = layer_cls(cfg, deterministic=deterministic, name=f"layers_{i}")(x, mask, position_bias)
        x = layers.RMSNorm(
            cfg.layer_norm_epsilon, dtype=cfg.compute_dtype, param_dtype=cfg.weight_dtype, name="encoder_norm"
        )(x)
        return _dropout(cfg, deterministic, x, broadcast_length=False)


class Decoder(nn.Module):
    """Embeds the decoder input tokens, runs the decoder stack and projects to vocabulary logits (float32)."""

    config: T5Config
    shared_embedding: nn.Module

    @nn.compact
    def __call__(
        self,
        encoded: Array | None,
        tokens: Array,
        positions: Array | None,
        self_mask: Array | None,
        cross_mask: Array | None,
        deterministic: bool = True,
        decode: bool = False,
        max_decode_length: int | None = None,
    ) -> Array:
        cfg = self.config
        if decode:
            # One token per row at `positions` [batch, 1], attending to cache slots 0..max_decode_length-1.
            position_bias = _relpos_module(cfg)(positions, _default_positions(max_decode_length), bidirectional=False)
            decode_position = positions[:, 0]
        else:
            position_bias = _index_position_bias(cfg, tokens.shape[-1], bidirectional=False)
            decode_position = None

        y = self.shared_embedding(tokens.astype(jnp.int32))
        y = _dropout(cfg, deterministic, y).astype(cfg.compute_dtype)
        layer_cls = _maybe_remat(DecoderLayer, cfg, training_graph=not deterministic and not decode)
        for i in range(cfg.num_decoder_layers):
            y = layer_cls(
                cfg, deterministic=deterministic, decode=decode, max_decode_length=max_decode_length, name=f"layers_{i}"
            )(y, encoded, self_mask, cross_mask, position_bias, decode_position)
        y = layers.RMSNorm(
            cfg.layer_norm_epsilon, dtype=cfg.compute_dtype, param_dtype=cfg.weight_dtype, name="decoder_norm"
        )(y)
        y = _dropout(cfg, deterministic, y)

        if cfg.logits_via_embedding:
            # Tied output layer (original T5): rescale so the logits keep unit scale.
            logits = self.shared_embedding.attend(y) / jnp.sqrt(jnp.float32(y.shape[-1]))
        else:
            logits = layers.DenseGeneral(
                cfg.vocab_size,
                kernel_axes=("embed", "vocab"),
                dtype=jnp.float32,  # logits in float32 for a stable softmax / loss
                param_dtype=cfg.weight_dtype,
                name="logits_dense",
            )(y)
        return nn.with_logical_constraint(logits, ("batch", "length", "vocab"))


class Transformer(nn.Module):
    """The encoder-decoder model. Methods: ``encode``, ``decode`` and ``__call__`` (both, teacher-forced).

    Inputs use seqio's EncDecFeatureConverter names. Token id 0 is padding (and the decoder start token); packed
    batches add ``*_segment_ids`` (0 = padding, examples 1, 2, ...) and ``*_positions`` (position within the
    example). Packed rows give the same per-example logits as unpacked ones: attention never crosses segments, and
    within a segment relative distances are index distances, so ``*_positions`` are accepted (T5X's features)
    but the relative position bias is computed from indices (``_index_position_bias``).
    """

    config: T5Config

    def setup(self):
        cfg = self.config
        self.token_embedder = layers.Embed(
            num_embeddings=cfg.vocab_size,
            features=cfg.emb_dim,
            dtype=cfg.compute_dtype,
            param_dtype=cfg.weight_dtype,
        )
        self.encoder = Encoder(cfg, shared_embedding=self.token_embedder)
        self.decoder = Decoder(cfg, shared_embedding=self.token_embedder)

    def encode(
        self,
        encoder_input_tokens: Array,
        encoder_segment_ids: Array | None = None,
        encoder_positions: Array | None = None,
        *,
        enable_dropout: bool = True,
    ) -> Array:
        """``[batch, len]`` tokens -> ``[batch, len, emb_dim]`` encodings."""
        if encoder_input_tokens.ndim != 2:
            raise ValueError(f"encoder_input_tokens must be [batch, length], got {encoder_input_tokens.shape}")
        valid = encoder_input_tokens > 0
        mask = layers.make_attention_mask(valid, valid)
        if encoder_segment_ids is not None:
            mask = layers.combine_masks(
                mask, layers.make_attention_mask(encoder_segment_ids, encoder_segment_ids, jnp.equal)
            )
        del encoder_positions  # within a segment, relative positions are index differences (_index_position_bias)
        return self.encoder(encoder_input_tokens, mask, deterministic=not enable_dropout)

    def decode(
        self,
        encoded: Array | None,
        encoder_input_tokens: Array,
        decoder_input_tokens: Array,
        decoder_target_tokens: Array | None = None,
        encoder_segment_ids: Array | None = None,
        decoder_segment_ids: Array | None = None,
        decoder_positions: Array | None = None,
        *,
        enable_dropout: bool = True,
        decode: bool = False,
        max_decode_length: int | None = None,
    ) -> Array:
        """Decoder logits ``[batch, len, vocab]`` (float32).

        Teacher-forced (``decode=False``): ``decoder_input_tokens`` is the right-shifted target; padding is taken
        from ``decoder_target_tokens`` (0 = pad) when given.

        Single-step (``decode=True``, mutable ``'cache'``): ``decoder_input_tokens`` is ``[batch, 1]``, the
        current token, and ``decoder_positions`` ``[batch, 1]`` its position; ``max_decode_length`` is the cache
        length. The first call creates the caches (self-attention keys/values as zeros, cross-attention
        keys/values projected from ``encoded``); later calls may pass ``encoded=None``. ``encoder_input_tokens``
        is only used for its padding mask. Packing is not supported while decoding.
        """
        if decode:
            if encoder_segment_ids is not None or decoder_segment_ids is not None:
                raise ValueError("packed inputs cannot be decoded step by step")
            if decoder_positions is None or max_decode_length is None:
                raise ValueError("decode=True needs decoder_positions [batch, 1] and max_decode_length")
            if decoder_input_tokens.shape[-1] != 1:
                raise ValueError(f"decode=True takes one token per row, got {decoder_input_tokens.shape}")
            key_slots = jnp.arange(max_decode_length)
            self_mask = (key_slots[None, None, None, :] <= decoder_positions[:, None, :, None]).astype(jnp.bool_)
            cross_mask = layers.make_attention_mask(
                jnp.ones_like(decoder_input_tokens, jnp.bool_), encoder_input_tokens > 0
            )
        else:
            length = decoder_input_tokens.shape[-1]
            target_valid = (
                decoder_target_tokens > 0
                if decoder_target_tokens is not None
                else jnp.ones_like(decoder_input_tokens, jnp.bool_)
            )
            self_mask = layers.combine_masks(
                layers.make_causal_mask(length), layers.make_attention_mask(target_valid, target_valid)
            )
            cross_mask = layers.make_attention_mask(target_valid, encoder_input_tokens > 0)
            if decoder_segment_ids is not None:
                self_mask = layers.combine_masks(
                    self_mask, layers.make_attention_mask(decoder_segment_ids, decoder_segment_ids, jnp.equal)
                )
            if encoder_segment_ids is not None:
                if decoder_segment_ids is None:
                    raise ValueError("packed encoder inputs need decoder_segment_ids too")
                cross_mask = layers.combine_masks(
                    cross_mask, layers.make_attention_mask(decoder_segment_ids, encoder_segment_ids, jnp.equal)
                )
        return self.decoder(
            encoded,
            decoder_input_tokens,
            decoder_positions,
            self_mask,
            cross_mask,
            deterministic=not enable_dropout,
            decode=decode,
            max_decode_length=max_decode_length,
        )

    def __call__(
        self,
        encoder_input_tokens: Array,
        decoder_input_tokens: Array,
        decoder_target_tokens: Array | None = None,
        encoder_segment_ids: Array | None = None,
        decoder_segment_ids: Array | None = None,
        encoder_positions: Array | None = None,
        decoder_positions: Array | None = None,
        *,
        enable_dropout: bool = True,
    ) -> Array:
        """Teacher-forced logits ``[batch, target_len, vocab]`` (T5X's argument order)."""
        encoded = self.encode(
            encoder_input_tokens, encoder_segment_ids, encoder_positions, enable_dropout=enable_dropout
        )
        return self.decode(
            encoded,
            encoder_input_tokens,
            decoder_input_tokens,
            decoder_target_tokens,
            encoder_segment_ids=encoder_segment_ids,
            decoder_segment_ids=decoder_segment_ids,
            decoder_positions=decoder_positions,
            enable_dropout=enable_dropout,
        )
