"""Building blocks of the T5 v1.1 / Flan-T5 network, in Flax linen.

Every parameter is created through ``nn.with_logical_partitioning`` with T5X's logical axis names, and stored in
T5X's layout (attention kernels flattened to 2-D ``(embed, joined_kv)`` / ``(joined_kv, embed)``), so a T5X
Flan-T5 checkpoint maps onto these modules leaf for leaf. Activations are annotated with
``nn.with_logical_constraint``; outside a mesh context these annotations are no-ops.

Two dtypes travel through every module: ``param_dtype`` (what is stored and updated, float32 by default) and
``dtype`` (what the matmuls run in, bfloat16 by default). Norm statistics, softmax and the output logits always
run in float32, because bfloat16 loses too much there.

The projections' outputs carry ``jax.ad_checkpoint.checkpoint_name`` tags (``query_proj``, ``key_proj``,
``value_proj``, ``out_proj``, ``mlpwi``, ``mlpwo``: MaxText's names) that the named rematerialisation policies
of ``iuie.model.network.REMAT_POLICIES`` select; a tag is the identity outside ``jax.checkpoint``.
"""

from __future__ import annotations

import functools
import math
import operator
from collections.abc import Callable, Sequence
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
from jax import lax
from jax.ad_checkpoint import checkpoint_name

Array = jax.Array
DType = Any
Initializer = Callable[..., Array]

# A large negative number added to masked attention logits. Not -inf: a fully masked row (padding queries)
# must still give finite softmax weights rather than NaN.
MASK_BIAS = -1e10

default_kernel_init = nn.initializers.variance_scaling(1.0, "fan_in", "truncated_normal")
attention_kernel_init = nn.initializers.variance_scaling(1.0, "fan_in", "normal")


def _as_tuple(x: int | Sequence[int]) -> tuple[int, ...]:
    return tuple(x) if isinstance(x, Sequence) else (x,)


def _normalize_axes(axes: Sequence[int], ndim: int) -> tuple[int, ...]:
    return tuple(a if a >= 0 else ndim + a for a in axes)


def scaled_init(init: Initializer, factor: float) -> Initializer:
    """Wraps an initializer so its draws are multiplied by ``factor``.

    T5 never divides attention logits by sqrt(head_dim) at run time; instead the query projection starts
    1/sqrt(head_dim) smaller. Under Adafactor (scale-invariant updates) the two are equivalent, and keeping the
    scaling out of the forward pass is what makes T5 checkpoints work unchanged.
    """

    def init_fn(key, shape, dtype=jnp.float32):
        return init(key, shape, dtype) * jnp.asarray(factor, dtype)

    return init_fn


class RMSNorm(nn.Module):
    """T5's layer norm: scale only, no mean subtraction, no bias (root-mean-square norm).

    The statistic is computed in float32 whatever ``dtype`` is, like T5X and Hugging Face.
    """

    epsilon: float = 1e-6
    dtype: DType = jnp.float32
    param_dtype: DType = jnp.float32

    @nn.compact
    def __call__(self, x: Array) -> Array:
        x32 = jnp.asarray(x, jnp.float32)
        mean2 = jnp.mean(jnp.square(x32), axis=-1, keepdims=True)
        y = jnp.asarray(x32 * lax.rsqrt(mean2 + self.epsilon), self.dtype)
        scale = self.param(
            "scale",
            nn.with_logical_partitioning(nn.initializers.ones, ("embed",)),
            (x.shape[-1],),
            self.param_dtype,
        )
        return y * jnp.asarray(scale, self.dtype)


class DenseGeneral(nn.Module):
    """A bias-free linear map over one or more input axes to one or more output axes.

    The kernel is *stored* as a 2-D matrix ``(prod(input dims), prod(output features))`` (T5X's layout: what a T5X
    checkpoint holds) and reshaped to its N-D form for the contraction.
    """

    features: int | Sequence[int]
    axis: int | Sequence[int] = -1
    kernel_axes: tuple[str, ...] = ()
    kernel_init: Initializer = default_kernel_init
    dtype: DType = jnp.float32
    param_dtype: DType = jnp.float32

    @nn.compact
    def __call__(self, inputs: Array) -> Array:
        features = _as_tuple(self.features)
        inputs = jnp.asarray(inputs, self.dtype)
        axis = _normalize_axes(_as_tuple(self.axis), inputs.ndim)
        in_dims = tuple(inputs.shape[a] for a in axis)
        kernel = self.param(
            "kernel",
            nn.with_logical_partitioning(self.kernel_init, self.kernel_axes),
            (math.prod(in_dims), math.prod(features)),
            self.param_dtype,
        )
        kernel = jnp.reshape(jnp.asarray(kernel, self.dtype), in_dims + features)
        contract = (axis, tuple(range(len(axis))))
        return lax.dot_general(inputs, kernel, (contract, ((), ())))


class Embed(nn.Module):
    """Token embedding table ``(vocab, embed)``, also usable as a tied output layer via ``attend``."""

    num_embeddings: int
    features: int
    dtype: DType = jnp.float32
    param_dtype: DType = jnp.float32
    embedding_init: Initializer = nn.initializers.normal(stddev=1.0)

    def setup(self):
        self.embedding = self.param(
            "embedding",
            nn.with_logical_partitioning(self.embedding_init, ("vocab", "embed")),
            (self.num_embeddings, self.features),
            self.param_dtype,
        )

    def __call__(self, ids: Array) -> Array:
        if not jnp.issubdtype(ids.dtype, jnp.integer):
            raise ValueError(f"token ids must be integers, got {ids.dtype}")
        out = jnp.take(jnp.asarray(self.embedding, self.dtype), ids, axis=0)
        return nn.with_logical_constraint(out, ("batch", "length", "embed"))

    def attend(self, query: Array) -> Array:
        """Logits against every embedding row, in float32 (used when the output layer is tied)."""
        return jnp.dot(jnp.asarray(query, jnp.float32), jnp.asarray(self.embedding, jnp.float32).T)


def activation_fn(name: str | Callable[[Array], Array]) -> Callable[[Array], Array]:
    """'linear' is the identity; any other string names a ``flax.linen`` activation.

    Note: ``nn.gelu`` defaults to the tanh approximation, which is Hugging Face's ``gelu_new`` used by Flan-T5.
    """
    if callable(name):
        return name
    if name == "linear":
        return lambda x: x
    fn = getattr(nn, name, None)
    if fn is None:
        raise ValueError(f"unknown activation {name!r}")
    return fn


class MlpBlock(nn.Module):
    """The feed-forward block. With activations ('gelu', 'linear') it is T5 v1.1's gated GELU:
    ``wo(gelu(wi_0 x) * wi_1 x)``."""

    intermediate_dim: int
    activations: Sequence[str] = ("gelu", "linear")
    dropout_rate: float = 0.0
    dtype: DType = jnp.float32
    param_dtype: DType = jnp.float32
    kernel_init: Initializer = default_kernel_init

    @nn.compact
    def __call__(self, inputs: Array, deterministic: bool = True) -> Array:
        dense = functools.partial(
            DenseGeneral, dtype=self.dtype, param_dtype=self.param_dtype, kernel_init=self.kernel_init
        )
        single = len(self.activations) == 1
        branches = [
            activation_fn(act)(
                checkpoint_name(
                    dense(self.intermediate_dim, kernel_axes=("embed", "mlp"), name="wi" if single else f"wi_{i}")(
                        inputs
                    ),
                    "mlpwi",
                )
            )
            for i, act in enumerate(self.activations)
        ]
        x = functools.reduce(operator.mul, branches)
        # T5 drops whole feature vectors, broadcast along the length axis.
        x = nn.Dropout(rate=self.dropout_rate, broadcast_dims=(-2,))(x, deterministic=deterministic)
        x = nn.with_logical_constraint(x, ("batch", "length", "mlp"))
        return checkpoint_name(dense(inputs.shape[-1], kernel_axes=("mlp", "embed"), name="wo")(x), "mlpwo")


def dot_product_attention(
    query: Array,
    key: Array,
    value: Array,
    bias: Array | None = None,
    *,
    dropout_rate: float = 0.0,
    dropout_rng: Array | None = None,
    dtype: DType = jnp.float32,
    float32_logits: bool = False,
    kv_heads_major: bool = False,
) -> Array:
    """Unscaled dot-product attention (T5 folds 1/sqrt(d) into the query init).

    Args:
      query: ``[batch, q_len, heads, head_dim]``.
      key, value: ``[batch, kv_len, heads, head_dim]``, or ``[batch, heads, kv_len, head_dim]`` with
        ``kv_heads_major`` (the decode caches' layout: see :class:`MultiHeadAttention`).
      bias: broadcastable to ``[batch, heads, q_len, kv_len]``: masks and relative position biases, summed.
      dropout_rate, dropout_rng: attention-weight dropout; skipped when ``dropout_rng`` is None.
      dtype: dtype of the weights used to mix the values.
      float32_logits: compute the query-key products in float32 (for bfloat16 stability).
      kv_heads_major: ``key`` and ``value`` are laid out heads before length.

    Returns:
      ``[batch, q_len, heads, head_dim]``.
    """
    if float32_logits:
        query, key = query.astype(jnp.float32), key.astype(jnp.float32)
    kv = "bhkd" if kv_heads_major else "bkhd"
    logits = jnp.einsum(f"bqhd,{kv}->bhqk", query, key)
    if bias is not None:
        logits = logits + bias.astype(logits.dtype)
    # Softmax in float32 always: cheap, and bfloat16 softmax visibly hurts long inputs.
    weights = jax.nn.softmax(logits.astype(jnp.float32), axis=-1).astype(dtype)
    if dropout_rng is not None and dropout_rate > 0.0:
        keep_prob = 1.0 - dropout_rate
        # Like T5X: one keep mask per key, shared by all query positions.
        shape = weights.shape[:-2] + (1,) + weights.shape[-1:]
        keep = jax.random.bernoulli(dropout_rng, keep_prob, shape)
        weights = weights * (keep.astype(dtype) / jnp.asarray(keep_prob, dtype))
    return jnp.einsum(f"bhqk,{kv}->bqhd", weights, value.astype(dtype))


class MultiHeadAttention(nn.Module):
    """Multi-head dot-product attention with T5X's parameter layout and an optional key/value cache.

    Decoding uses the ``'cache'`` collection in two ways:

    * self-attention (``decode_position`` given): one new query token per call. ``cached_key`` /
      ``cached_value`` of shape ``[batch, heads, max_decode_length, head_dim]`` are created as zeros on the first
      call; each call writes its key/value at ``decode_position`` (one position per row) and attends to the whole
      cache (the caller masks positions after ``decode_position``).
    * cross-attention (``cache_kv=True``): the encoder's keys/values are projected on the first call (when the
      cache does not exist yet), stored as ``[batch, heads, encoder_length, head_dim]`` and reused afterwards, so
      later calls may pass ``inputs_kv=None``.

    Both caches are heads-major (heads before length): each decode step's attention contracts over
    ``head_dim`` and the cached length of one head at a time, and with that layout it reads the cache as it
    lies instead of transposing all of it at every step; only the new token's key/value is transposed. Cache leaves all have the batch as their leading axis, so beam search can gather and expand them
    with plain ``jax.tree.map``.
    """

    num_heads: int
    head_dim: int
    dropout_rate: float = 0.0
    dtype: DType = jnp.float32
    param_dtype: DType = jnp.float32
    float32_logits: bool = False
    kernel_init: Initializer = attention_kernel_init

    @nn.compact
    def __call__(
        self,
        inputs_q: Array,
        inputs_kv: Array | None,
        mask: Array | None = None,
        bias: Array | None = None,
        *,
        deterministic: bool = True,
        decode_position: Array | None = None,
        max_decode_length: int | None = None,
        cache_kv: bool = False,
    ) -> Array:
        """Args:
          inputs_q: ``[batch, q_len, embed]``.
          inputs_kv: ``[batch, kv_len, embed]``; may be None for cached cross-attention after the first call.
          mask: boolean, broadcastable to ``[batch, heads, q_len, kv_len]``; True = may attend.
          bias: additive, broadcastable to ``[batch, heads, q_len, kv_len]`` (relative position bias).
          deterministic: disables dropout.
          decode_position: ``[batch]`` int positions of the single query token: cached self-attention step.
          max_decode_length: cache length; required with ``decode_position``.
          cache_kv: cached cross-attention (see the class docstring).

        Returns:
          ``[batch, q_len, embed]``.
        """
        projection = functools.partial(
            DenseGeneral,
            features=(self.num_heads, self.head_dim),
            kernel_axes=("embed", "joined_kv"),
            dtype=self.dtype,
            param_dtype=self.param_dtype,
        )
        query = projection(kernel_init=scaled_init(self.kernel_init, self.head_dim**-0.5), name="query")(inputs_q)
        query = nn.with_logical_constraint(checkpoint_name(query, "query_proj"), ("batch", "length", "heads", "kv"))

        heads_major = cache_kv or decode_position is not None  # the decode caches' layout (class docstring)
        if cache_kv:
            key, value = self._cached_cross_kv(projection, inputs_kv)
        else:
            key = projection(kernel_init=self.kernel_init, name="key")(inputs_kv)
            value = projection(kernel_init=self.kernel_init, name="value")(inputs_kv)
            if decode_position is not None:
                key, value = self._update_self_cache(key, value, decode_position, max_decode_length)
        kv_axes = ("batch", "heads", "length", "kv") if heads_major else ("batch", "length", "heads", "kv")
        key = nn.with_logical_constraint(checkpoint_name(key, "key_proj"), kv_axes)
        value = nn.with_logical_constraint(checkpoint_name(value, "value_proj"), kv_axes)

        attention_bias = None
        if mask is not None:
            attention_bias = jnp.where(mask, 0.0, MASK_BIAS).astype(self.dtype)
        if bias is not None:
            attention_bias = bias if attention_bias is None else attention_bias + bias.astype(self.dtype)

        dropout_rng = None
        if not deterministic and self.dropout_rate > 0.0:
            dropout_rng = self.make_rng("dropout")
        x = dot_product_attention(
            query,
            key,
            value,
            attention_bias,
            dropout_rate=self.dropout_rate,
            dropout_rng=dropout_rng,
            dtype=self.dtype,
            float32_logits=self.float32_logits,
            kv_heads_major=heads_major,
        )
        out = DenseGeneral(
            features=inputs_q.shape[-1],
            axis=(-2, -1),
            kernel_axes=("joined_kv", "embed"),
            kernel_init=self.kernel_init,
            dtype=self.dtype,
            param_dtype=self.param_dtype,
            name="out",
        )(x)
        return nn.with_logical_constraint(checkpoint_name(out, "out_proj"), ("batch", "length", "embed"))

    def _update_self_cache(self, key, value, decode_position, max_decode_length):
        if max_decode_length is None:
            raise ValueError("cached self-attention needs max_decode_length")
        batch, q_len, heads, head_dim = key.shape
        if q_len != 1:
            raise ValueError(f"cached self-attention takes one token per call, got {q_len}")
        shape = (batch, heads, max_decode_length, head_dim)
        cached_key = self.variable("cache", "cached_key", jnp.zeros, shape, key.dtype)
        cached_value = self.variable("cache", "cached_value", jnp.zeros, shape, value.dtype)
        # A select against a one-hot position writes each row at its own index; it fuses well and, unlike a
        # scatter, needs no gather/scatter partitioning. The new token ([batch, 1, heads, d]) becomes
        # [batch, heads, 1, d]: the only transpose of the step.
        here = (jnp.arange(max_decode_length)[None, :] == decode_position[:, None])[:, None, :, None]
        key = jnp.where(here, jnp.swapaxes(key, 1, 2), cached_key.value)
        value = jnp.where(here, jnp.swapaxes(value, 1, 2), cached_value.value)
        cached_key.value, cached_value.value = key, value
        return key, value

    def _cached_cross_kv(self, projection, inputs_kv):
        initialized = self.has_variable("cache", "cached_key")
        if not initialized:
            if inputs_kv is None:
                raise ValueError("the first cached cross-attention call needs the encoder outputs")
            # Projected once per decode and stored heads-major: [batch, heads, encoder_length, head_dim].
            key = jnp.swapaxes(projection(kernel_init=self.kernel_init, name="key")(inputs_kv), 1, 2)
            value = jnp.swapaxes(projection(kernel_init=self.kernel_init, name="value")(inputs_kv), 1, 2)
            self.variable("cache", "cached_key", lambda: key)
            self.variable("cache", "cached_value", lambda: value)
            return key, value
        return self.get_variable("cache", "cached_key"), self.get_variable("cache", "cached_value")


def relative_position_bucket(
    relative_position: Array, *, bidirectional: bool, num_buckets: int, max_distance: int
) -> Array:
    """Maps ``key_position - query_position`` to T5's bucket ids.

    Half the buckets (per direction when bidirectional) hold exact small distances; the rest cover distances up to
    ``max_distance`` on a log scale; everything farther shares the last bucket. Causal (not bidirectional) attention
    only ever sees keys at or before the query, so it spends all buckets on that side. This is Mesh TensorFlow's
    formula, which T5X and Hugging Face share (tests check bucket-for-bucket equality with the latter).
    """
    buckets = jnp.zeros_like(relative_position)
    n = num_buckets
    if bidirectional:
        n //= 2
        buckets = buckets + (relative_position > 0).astype(relative_position.dtype) * n
        distance = jnp.abs(relative_position)
    else:
        distance = -jnp.minimum(relative_position, 0)
    max_exact = n // 2
    is_small = distance < max_exact
    log_ratio = jnp.log(jnp.maximum(distance, 1).astype(jnp.float32) / max_exact) / math.log(max_distance / max_exact)
    if_large = max_exact + (log_ratio * (n - max_exact)).astype(relative_position.dtype)
    if_large = jnp.minimum(if_large, n - 1)
    return buckets + jnp.where(is_small, distance, if_large)


class RelativePositionBiases(nn.Module):
    """T5's learned relative position bias: one scalar per (head, bucket), added to the attention logits.

    One instance per stack is shared by all its layers (parameter ``relpos_bias/rel_embedding`` of shape
    ``(heads, buckets)``).
    """

    num_buckets: int
    max_distance: int
    num_heads: int
    dtype: DType = jnp.float32
    param_dtype: DType = jnp.float32
    embedding_init: Initializer = nn.initializers.variance_scaling(1.0, "fan_avg", "uniform")

    @nn.compact
    def __call__(self, query_positions: Array, key_positions: Array, bidirectional: bool) -> Array:
        """Args:
          query_positions: ``[batch or 1, q_len]`` int positions.
          key_positions: ``[batch or 1, kv_len]`` int positions.
          bidirectional: encoder-style (True) or causal (False) buckets.

        Returns:
          ``[batch or 1, heads, q_len, kv_len]`` bias in ``dtype``.
        """
        relative = key_positions[:, None, :].astype(jnp.int32) - query_positions[:, :, None].astype(jnp.int32)
        buckets = relative_position_bucket(
            relative, bidirectional=bidirectional, num_buckets=self.num_buckets, max_distance=self.max_distance
        )
        table = self.param(
            "rel_embedding",
            nn.with_logical_partitioning(self.embedding_init, ("heads", "relpos_buckets")),
            (self.num_heads, self.num_buckets),
            self.param_dtype,
        )
        # [heads, buckets] gathered at [b, q, k] -> [heads, b, q, k] -> [b, heads, q, k]
        values = jnp.take(jnp.asarray(table, self.dtype), buckets, axis=1)
        return jnp.moveaxis(values, 0, 1)


def make_attention_mask(
    query_input: Array, key_input: Array, pairwise_fn: Callable[[Array, Array], Array] = jnp.logical_and
) -> Array:
    """``[batch, q]`` x ``[batch, k]`` -> boolean ``[batch, 1, q, k]`` mask (the 1 broadcasts over heads)."""
    mask = pairwise_fn(query_input[..., :, None], key_input[..., None, :])
    return mask[..., None, :, :].astype(jnp.bool_)


def make_causal_mask(length: int) -> Array:
    """``[1, 1, length, length]``: query i may see keys j <= i."""
    idx = jnp.arange(length)
    return (idx[None, :] <= idx[:, None])[None, None]


def combine_masks(*masks: Array | None) -> Array | None:
    """Logical AND of the masks that are not None (None if all are)."""
    masks = [m for m in masks if m is not None]
    if not masks:
        return None
    return functools.reduce(jnp.logical_and, masks)
