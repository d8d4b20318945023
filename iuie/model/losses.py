"""Token-level losses for sequence-to-sequence training, with T5X's semantics.

* ``cross_entropy_with_logits``: softmax cross-entropy against (soft) targets plus T5's auxiliary z-loss
  ``z_loss * log(Z)^2`` (Z = the softmax normaliser), which keeps logits near zero so bfloat16 stays accurate.
  Its custom VJP computes the softmax once and treats the returned z-loss as a logging value only.
* ``compute_weighted_cross_entropy``: integer targets, label smoothing (shifted so a perfect prediction scores 0),
  per-token weights, an optional constant normaliser; returns *sums*, so packed and unpacked batches agree.
* ``get_loss_normalizing_factor_and_weights``: T5X's special normalisers (by number of real target tokens, by
  all target tokens, or the average of per-sequence means that weighs every example equally, packed or not).

A leaf module: it imports nothing from iuie.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping

import jax
import jax.numpy as jnp
import numpy as np

Array = jax.Array


@jax.custom_vjp
def cross_entropy_with_logits(logits: Array, targets: Array, z_loss: float) -> tuple[Array, Array]:
    """Cross-entropy of ``logits`` against the distributions ``targets``, plus z-loss.

    Args:
      logits: ``[..., vocab]`` float.
      targets: ``[..., vocab]`` float target distributions (one-hot or smoothed).
      z_loss: coefficient of ``log(Z)^2``; 0 disables it.

    Returns:
      ``(loss, z_loss_term)``, both ``[...]``; ``loss`` already includes ``z_loss_term``.
    """
    return _cross_entropy_fwd(logits, targets, z_loss)[0]


def _cross_entropy_fwd(logits, targets, z_loss):
    logits = jnp.asarray(logits, jnp.float32)
    max_logit = jax.lax.stop_gradient(jnp.max(logits, axis=-1, keepdims=True))
    shifted = logits - max_logit
    exp_shifted = jnp.exp(shifted)
    sum_exp = jnp.sum(exp_shifted, axis=-1, keepdims=True)
    log_softmax = shifted - jnp.log(sum_exp)
    log_z = jnp.squeeze(jnp.log(sum_exp) + max_logit, axis=-1)
    z_term = z_loss * jnp.square(log_z)
    loss = -jnp.sum(targets * log_softmax, axis=-1) + z_term
    residuals = (targets, z_loss, exp_shifted / sum_exp, log_softmax, log_z)
    return (loss, z_term), residuals


def _cross_entropy_bwd(residuals, grads):
    targets, z_loss, softmax, log_softmax, log_z = residuals
    g = grads[0][..., None]  # the z-loss output is for logging: its cotangent is ignored
    # d/dlogits [-sum(t * log_softmax) + z * log_z^2] = softmax * sum(t) - t + 2 z log_z softmax. Targets are
    # distributions (sum(t) = 1), as T5X assumes.
    d_logits = (1.0 + 2.0 * z_loss * log_z)[..., None] * softmax - targets
    return g * d_logits, -g * log_softmax, jnp.zeros_like(jnp.asarray(z_loss, jnp.float32))


cross_entropy_with_logits.defvjp(_cross_entropy_fwd, _cross_entropy_bwd)


def smoothed_targets(targets: Array, vocab_size: int, label_smoothing: float) -> tuple[Array, Array]:
    """One-hot targets smoothed to ``1 - label_smoothing`` on the label, the rest spread evenly.

    Returns ``(soft_targets, entropy)``; ``entropy`` is the minimum achievable cross-entropy, subtracted from the
    loss so that a perfect prediction still scores 0 (as in T5X).
    """
    confidence = 1.0 - label_smoothing
    low = (1.0 - confidence) / max(vocab_size - 1, 1) if vocab_size > 1 else 1.0 - confidence
    entropy = -(confidence * np.log(confidence) + (vocab_size - 1) * low * np.log(low + 1e-20))
    soft = jax.nn.one_hot(targets, vocab_size, dtype=jnp.float32) * (confidence - low) + low
    return soft, jnp.float32(entropy)


def compute_weighted_cross_entropy(
    logits: Array,
    targets: Array,
    weights: Array | None = None,
    label_smoothing: float = 0.0,
    z_loss: float = 0.0,
    loss_normalizing_factor: float | Array | None = None,
) -> tuple[Array, Array, Array]:
    """Summed, weighted token cross-entropy.

    Args:
      logits: ``[batch, length, vocab]``.
      targets: ``[batch, length]`` int.
      weights: ``[batch, length]`` or None (all tokens count).
      label_smoothing: see ``smoothed_targets``.
      z_loss: z-loss coefficient.
      loss_normalizing_factor: divide the sums by this constant; None keeps plain sums (T5X's default: a
        scale-invariant optimizer such as Adafactor does not care, and every token counts the same).

    Returns:
      ``(loss, z_loss, weight_sum)``: scalar sums (``loss`` includes ``z_loss``), and the sum of weights.
    """
    if logits.ndim != targets.ndim + 1:
        raise ValueError(f"logits {logits.shape} and targets {targets.shape} do not match")
    soft, entropy = smoothed_targets(targets, logits.shape[-1], label_smoothing)
    loss, z_term = cross_entropy_with_logits(logits, soft, z_loss)
    loss = loss - entropy
    if weights is None:
        weight_sum = jnp.asarray(np.prod(targets.shape), jnp.float32)
    else:
        loss, z_term = loss * weights, z_term * weights
        weight_sum = jnp.sum(weights)
    if loss_normalizing_factor is not None:
        loss, z_term = loss / loss_normalizing_factor, z_term / loss_normalizing_factor
    return jnp.sum(loss), jnp.sum(z_term), weight_sum


@enum.unique
class SpecialLossNormalizingFactor(enum.Enum):
    """Normalisers computed from the batch (T5X's names).

    NUM_REAL_TARGET_TOKENS: the sum of the loss weights (non-padding tokens): a per-token mean.
    NUM_TOTAL_TARGET_TOKENS: batch * target length, padding included.
    AVERAGE_PER_SEQUENCE: mean over examples of each example's per-token mean, so long and short examples weigh
      the same; packed rows are split by segment.
    """

    NUM_REAL_TARGET_TOKENS = 1
    NUM_TOTAL_TARGET_TOKENS = 2
    AVERAGE_PER_SEQUENCE = 3


def as_special_normalizer(value: str | SpecialLossNormalizingFactor) -> SpecialLossNormalizingFactor:
    """Accepts the enum or its name in any case (gin passes strings)."""
    if isinstance(value, SpecialLossNormalizingFactor):
        return value
    try:
        return SpecialLossNormalizingFactor[value.upper()]
    except KeyError:
        raise ValueError(f"unknown loss normalizing factor {value!r}") from None


def sum_weights_per_segment(segment_ids: Array, weights: Array) -> Array:
    """For each token, the total weight of the (packed) example it belongs to. Padding (segment 0) gets 0.

    ``[batch, length]`` -> ``[batch, length]``. Segment ids are seqio's: 1, 2, ... within a row (any order,
    contiguous or not), at most ``length``; memory stays O(batch * length).
    """
    num_segments = segment_ids.shape[-1] + 1

    def one_row(ids, w):
        ids = jnp.clip(ids, 0, num_segments - 1)
        return jax.ops.segment_sum(w, ids, num_segments=num_segments)[ids]

    totals = jax.vmap(one_row)(segment_ids.astype(jnp.int32), weights)
    return jnp.where(segment_ids != 0, totals, 0.0)


def get_loss_normalizing_factor_and_weights(
    loss_normalizing_factor: float | int | str | SpecialLossNormalizingFactor | None,
    batch: Mapping[str, Array],
) -> tuple[float | Array | None, Array | None]:
    """Resolves a (possibly special) normaliser into ``(constant factor, per-token weights)``.

    Constants and None pass through with the batch's ``decoder_loss_weights``. Special factors derive weights from
    ``decoder_loss_weights`` (or non-zero ``decoder_target_tokens`` when absent) and return the matching factor;
    AVERAGE_PER_SEQUENCE rescales each example's weights to sum to 1 and normalises by the number of examples.
    """
    weights = batch.get("decoder_loss_weights")
    if loss_normalizing_factor is None or not isinstance(loss_normalizing_factor, (str, SpecialLossNormalizingFactor)):
        return loss_normalizing_factor, weights

    special = as_special_normalizer(loss_normalizing_factor)
    targets = batch["decoder_target_tokens"]
    if weights is None:
        weights = (targets > 0).astype(jnp.float32)
    weights = jnp.asarray(weights, jnp.float32)
    if special is SpecialLossNormalizingFactor.NUM_REAL_TARGET_TOKENS:
        return jnp.sum(weights), weights
    if special is SpecialLossNormalizingFactor.NUM_TOTAL_TARGET_TOKENS:
        return float(np.prod(targets.shape)), weights
    # AVERAGE_PER_SEQUENCE
    if "decoder_segment_ids" in batch and batch["decoder_segment_ids"] is not None:
        per_example = sum_weights_per_segment(batch["decoder_segment_ids"], weights)
    else:
        per_example = jnp.sum(weights, axis=-1, keepdims=True)
    weights = jnp.where(per_example > 0, weights / jnp.where(per_example > 0, per_example, 1.0), 0.0)
    return jnp.sum(weights), weights
