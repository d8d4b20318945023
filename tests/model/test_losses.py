"""Tests of ``iuie.model.losses``.

References: hand-worked numbers (written out in each test), optax's ``softmax_cross_entropy`` for the plain
cross-entropy, and ``jax.grad`` of the textbook formula for the custom VJP. The semantics being reproduced are
T5X's ``t5x/losses.py`` (z-loss, label smoothing shifted by the target entropy, sums by default, special
normalising factors).
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from iuie.model import losses


def _plain(logits, targets, z_loss):
    """The textbook formula, differentiated by JAX itself."""
    log_z = jax.scipy.special.logsumexp(logits, axis=-1)
    return -jnp.sum(targets * jax.nn.log_softmax(logits), axis=-1) + z_loss * log_z**2


def test_cross_entropy_hand_worked():
    # logits [0, ln 3] -> softmax [1/4, 3/4]; label 1 -> CE = -ln(3/4); log Z = ln 4.
    logits = jnp.array([[0.0, math.log(3.0)]])
    targets = jnp.array([[0.0, 1.0]])
    loss, z = losses.cross_entropy_with_logits(logits, targets, 0.1)
    np.testing.assert_allclose(z, [0.1 * math.log(4.0) ** 2], rtol=1e-6)
    np.testing.assert_allclose(loss, [-math.log(0.75) + 0.1 * math.log(4.0) ** 2], rtol=1e-6)


def test_cross_entropy_equals_optax_without_z_loss():
    logits = jax.random.normal(jax.random.key(0), (3, 5, 11)) * 4
    labels = jax.random.randint(jax.random.key(1), (3, 5), 0, 11)
    onehot = jax.nn.one_hot(labels, 11)
    loss, z = losses.cross_entropy_with_logits(logits, onehot, 0.0)
    np.testing.assert_allclose(loss, optax.softmax_cross_entropy(logits, onehot), rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(z, np.zeros_like(z))


@pytest.mark.parametrize("z_loss", [0.0, 1e-4, 0.5])
def test_custom_vjp_equals_autodiff_of_the_formula(z_loss):
    """Gradients w.r.t. logits (and targets) equal those of the plain formula; the z-loss *output* is only
    logged, so it carries no gradient of its own (as in T5X)."""
    logits = jax.random.normal(jax.random.key(2), (4, 7)) * 3 + 2
    targets = jax.nn.softmax(jax.random.normal(jax.random.key(3), (4, 7)))  # soft targets
    weights = jnp.arange(1.0, 5.0)

    def ours(lg, tg):
        return jnp.sum(losses.cross_entropy_with_logits(lg, tg, z_loss)[0] * weights)

    def reference(lg, tg):
        return jnp.sum(_plain(lg, tg, z_loss) * weights)

    got = jax.grad(ours, argnums=(0, 1))(logits, targets)
    want = jax.grad(reference, argnums=(0, 1))(logits, targets)
    np.testing.assert_allclose(got[0], want[0], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(got[1], want[1], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(ours(logits, targets), reference(logits, targets), rtol=1e-6)
    # Ignored cotangent of the z-loss output:
    g = jax.grad(lambda lg: jnp.sum(losses.cross_entropy_with_logits(lg, targets, z_loss)[1]))(logits)
    np.testing.assert_array_equal(g, np.zeros_like(g))


def test_label_smoothing_hand_worked():
    # vocab 4, smoothing 0.3: on-value 0.7, off-value 0.1; minimal CE = -(0.7 ln 0.7 + 3 * 0.1 ln 0.1).
    soft, entropy = losses.smoothed_targets(jnp.array([2]), 4, 0.3)
    np.testing.assert_allclose(soft, [[0.1, 0.1, 0.7, 0.1]], rtol=1e-6)
    np.testing.assert_allclose(entropy, -(0.7 * math.log(0.7) + 0.3 * math.log(0.1)), rtol=1e-6)
    # Predicting exactly the smoothed distribution scores 0 after the entropy shift.
    logits = jnp.log(soft)[None]  # [1, 1, 4]
    loss, _, _ = losses.compute_weighted_cross_entropy(logits, jnp.array([[2]]), label_smoothing=0.3)
    np.testing.assert_allclose(loss, 0.0, atol=1e-6)


def test_weighted_sums_and_constant_normalizer():
    logits = jax.random.normal(jax.random.key(4), (2, 3, 6))
    targets = jnp.array([[1, 2, 0], [3, 0, 0]])
    weights = jnp.array([[1.0, 1.0, 0.0], [1.0, 0.0, 0.0]])
    per_token = optax.softmax_cross_entropy_with_integer_labels(logits, targets)
    loss, z, weight_sum = losses.compute_weighted_cross_entropy(logits, targets, weights)
    np.testing.assert_allclose(loss, jnp.sum(per_token * weights), rtol=1e-6)
    assert weight_sum == 3 and z == 0
    loss_all, _, weight_sum_all = losses.compute_weighted_cross_entropy(logits, targets)
    np.testing.assert_allclose(loss_all, jnp.sum(per_token), rtol=1e-6)
    assert weight_sum_all == 6
    halved, _, _ = losses.compute_weighted_cross_entropy(logits, targets, weights, loss_normalizing_factor=2.0)
    np.testing.assert_allclose(halved, loss / 2, rtol=1e-6)
    with pytest.raises(ValueError):
        losses.compute_weighted_cross_entropy(logits, targets[0])


def test_special_normalizers_hand_worked():
    batch = {
        "decoder_target_tokens": jnp.array([[5, 1, 0], [1, 0, 0]]),
        "decoder_loss_weights": jnp.array([[1.0, 1.0, 0.0], [1.0, 0.0, 0.0]]),
    }
    factor, w = losses.get_loss_normalizing_factor_and_weights("num_real_target_tokens", batch)
    assert factor == 3
    np.testing.assert_array_equal(w, batch["decoder_loss_weights"])
    factor, _ = losses.get_loss_normalizing_factor_and_weights(
        losses.SpecialLossNormalizingFactor.NUM_TOTAL_TARGET_TOKENS, batch
    )
    assert factor == 6
    factor, w = losses.get_loss_normalizing_factor_and_weights("AVERAGE_PER_SEQUENCE", batch)
    np.testing.assert_allclose(w, [[0.5, 0.5, 0.0], [1.0, 0.0, 0.0]])
    assert factor == 2  # two examples, each weighing 1
    # Constants and None pass straight through with the batch's weights.
    assert losses.get_loss_normalizing_factor_and_weights(7.0, batch)[0] == 7.0
    assert losses.get_loss_normalizing_factor_and_weights(None, batch)[1] is batch["decoder_loss_weights"]
    # Without explicit weights, non-padding targets count.
    factor, _ = losses.get_loss_normalizing_factor_and_weights(
        "NUM_REAL_TARGET_TOKENS", {"decoder_target_tokens": batch["decoder_target_tokens"]}
    )
    assert factor == 3
    with pytest.raises(ValueError):
        losses.get_loss_normalizing_factor_and_weights("PER_MOON_PHASE", batch)


def test_average_per_sequence_packed_equals_unpacked():
    """Two examples (2 and 3 tokens) packed in one row get the same weights as when unpacked."""
    packed = {
        "decoder_target_tokens": jnp.array([[4, 1, 6, 7, 1, 0]]),
        "decoder_segment_ids": jnp.array([[1, 1, 2, 2, 2, 0]]),
        "decoder_positions": jnp.array([[0, 1, 0, 1, 2, 0]]),
        "decoder_loss_weights": jnp.array([[1.0, 1, 1, 1, 1, 0]]),
    }
    factor, w = losses.get_loss_normalizing_factor_and_weights("AVERAGE_PER_SEQUENCE", packed)
    np.testing.assert_allclose(w, [[1 / 2, 1 / 2, 1 / 3, 1 / 3, 1 / 3, 0]], rtol=1e-6)
    np.testing.assert_allclose(factor, 2.0, rtol=1e-6)
    unpacked = {"decoder_target_tokens": jnp.array([[4, 1, 0], [6, 7, 1]])}
    factor_u, w_u = losses.get_loss_normalizing_factor_and_weights("AVERAGE_PER_SEQUENCE", unpacked)
    np.testing.assert_allclose(factor_u, factor, rtol=1e-6)
    np.testing.assert_allclose(w_u[w_u > 0], w[w > 0], rtol=1e-6)


def test_sum_weights_per_segment_any_numbering():
    seg = jnp.array([[2, 2, 1, 1, 1, 0], [1, 3, 3, 1, 0, 0]])
    w = jnp.array([[1.0, 2, 3, 4, 5, 9], [1, 1, 1, 1, 9, 9]])
    np.testing.assert_allclose(losses.sum_weights_per_segment(seg, w), [[3, 3, 12, 12, 12, 0], [2, 2, 2, 2, 0, 0]])
