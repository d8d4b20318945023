"""Step functions: gradient accumulation equals the full batch, the step's metrics, the NaN stop.

References: the full-batch gradient of the same loss (``jax.grad`` without microbatching), and quantities
computed directly from the batch (token counts, ``optax.global_norm``, the schedule). The accumulation tests
use the real tiny FlanT5 (``iuie.model.models.EncoderDecoderModel``) on packed batches, float32, dropout off.
"""

from __future__ import annotations

import copy
import functools

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from iuie.training import configs, optimizers, partitioning, trainer
from tests.trainer import harness


def _model_and_params(**kw):
    from iuie.model import models

    model = models.EncoderDecoderModel(config=harness.tiny_config(dropout_rate=0.0), z_loss=1e-4, **kw)
    params = jax.jit(lambda rng: nn.meta.unbox(harness.init_params_fn(model)(rng)))(jax.random.key(0))
    return model, params


def _accumulate(loss_fn, params, batch, microbatches):
    fn = jax.jit(
        functools.partial(
            trainer.accumulate_gradients, loss_fn=loss_fn, num_microbatches=microbatches, dropout_rng=None
        )
    )
    return fn(params, batch)


def _assert_trees_close(a, b, rtol=1e-5):
    # float32 sums taken in another order: elements agree to rtol of the leaf's largest magnitude.
    for (path, x), y in zip(jax.tree_util.tree_leaves_with_path(a), jax.tree.leaves(b)):
        y = np.asarray(y)
        np.testing.assert_allclose(
            np.asarray(x), y, rtol=rtol, atol=rtol * float(np.max(np.abs(y))), err_msg=jax.tree_util.keystr(path)
        )


@pytest.fixture(scope="module")
def full_batch_reference():
    """The tiny model (token-sum loss, T5X's default), a packed batch whose microbatches hold unequal numbers
    of target tokens, and the full-batch ``(loss, grads, metrics)``: the reference of the tests below."""
    model, params = _model_and_params()
    batch = {k: jnp.asarray(v) for k, v in harness.make_batch(3).items()}
    batch["decoder_loss_weights"] = batch["decoder_loss_weights"].at[:3].set(0.0)
    return model, params, batch, _accumulate(model.loss_fn, params, batch, 1)


def test_accumulated_gradient_equals_full_batch_gradient(full_batch_reference):
    model, params, batch, (full_loss, full_grads, full_metrics) = full_batch_reference
    loss, grads, metrics = _accumulate(model.loss_fn, params, batch, 4)
    np.testing.assert_allclose(float(loss), float(full_loss), rtol=1e-6)
    _assert_trees_close(grads, full_grads)
    for key in ("correct", "weight_sum", "num_examples", "num_tokens"):
        assert float(metrics[key]) == float(full_metrics[key]), key
    np.testing.assert_allclose(float(metrics["z_loss"]), float(full_metrics["z_loss"]), rtol=1e-5)
    assert float(metrics["accuracy"]) == pytest.approx(float(metrics["correct"]) / float(metrics["weight_sum"]))
    assert float(full_metrics["num_examples"]) == 2 * harness.BATCH  # two packed examples per row


def test_per_token_mean_loss_accumulates_exactly_through_microbatch_loss(full_batch_reference):
    # A per-token mean (T5X's NUM_REAL_TARGET_TOKENS) normalised per microbatch is NOT the full-batch mean;
    # microbatch_loss resolves the normaliser on the full batch first, as T5X's trainer does. The full-batch
    # mean is the token sum divided by the number of real target tokens.
    sum_model, params, batch, (sum_loss, sum_grads, metrics) = full_batch_reference
    tokens = float(metrics["weight_sum"])
    model = copy.copy(sum_model)
    model.loss_normalizing_factor = "NUM_REAL_TARGET_TOKENS"
    prepare, loss_fn = trainer.microbatch_loss(model)
    loss, grads, _ = _accumulate(loss_fn, params, prepare(batch), 4)
    np.testing.assert_allclose(float(loss), float(sum_loss) / tokens, rtol=1e-6)
    _assert_trees_close(grads, jax.tree.map(lambda g: g / tokens, sum_grads))
    naive_loss, _, _ = _accumulate(model.loss_fn, params, batch, 4)
    assert abs(float(naive_loss) - float(loss)) > 1e-3 * abs(float(loss))


def test_microbatch_loss_passes_constant_normalisers_through(full_batch_reference):
    model = full_batch_reference[0]
    prepare, loss_fn = trainer.microbatch_loss(model)
    batch = {"decoder_target_tokens": jnp.ones((2, 3), jnp.int32)}
    assert prepare(batch) is batch and loss_fn == model.loss_fn


def test_split_microbatches_is_strided():
    batch = {"x": jnp.arange(12).reshape(6, 2)}
    micro = trainer.split_microbatches(batch, 3)["x"]
    assert micro.shape == (3, 2, 2)
    np.testing.assert_array_equal(np.asarray(micro[1]), [[2, 3], [8, 9]])  # rows 1 and 4
    with pytest.raises(ValueError, match="does not split"):
        trainer.split_microbatches(batch, 4)


def _linear_loss(params, batch, rng):
    # A stand-in model: squared error of a linear map, as a sum over rows (additive).
    del rng
    prediction = batch["encoder_input_tokens"].astype(jnp.float32) @ params["w"]
    loss = jnp.sum((prediction - batch["decoder_target_tokens"].astype(jnp.float32)) ** 2)
    return loss, {
        "weight_sum": jnp.sum(batch["decoder_target_tokens"] > 0).astype(jnp.float32),
        "correct": jnp.float32(0.0),
        "accuracy": jnp.float32(-1.0),
    }


def test_train_step_updates_the_state_and_reports_metrics():
    partitioner = partitioning.Partitioner.create("data_parallel")
    tx, schedule = optimizers.make_optimizer(
        configs.OptimizerConfig(
            name="adamw", schedule=configs.ScheduleConfig(name="constant", learning_rate=0.5, warmup_steps=4)
        )
    )
    layout = trainer.abstract_state(
        lambda rng: {"w": nn.LogicallyPartitioned(jnp.ones((3, 2)), ("embed", "mlp"))}, tx, partitioner
    )
    state = trainer.init_state(
        lambda rng: {"w": nn.LogicallyPartitioned(jnp.ones((3, 2)), ("embed", "mlp"))}, tx, layout, jax.random.key(0)
    )
    batch = {
        "encoder_input_tokens": np.asarray([[1, 0, 2], [3, 4, 0]], np.int32),
        "decoder_target_tokens": np.asarray([[1, 0], [2, 2]], np.int32),
    }
    step = trainer.make_train_step(
        partitioner, layout, batch, loss_fn=_linear_loss, optimizer=tx, learning_rate_fn=schedule, num_microbatches=2
    )
    expected_grads = jax.grad(lambda p: _linear_loss(p, batch, None)[0])({"w": jnp.ones((3, 2))})
    # By hand: loss = sum((X w - Y)^2), so dL/dw = 2 X^T (X w - Y); at w = 1, X w - Y = [[2, 3], [5, 5]].
    hand_grads = np.asarray([[34.0, 36.0], [40.0, 40.0], [8.0, 12.0]])
    np.testing.assert_allclose(np.asarray(expected_grads["w"]), hand_grads, rtol=1e-6)
    # The step's accumulation over 2 microbatches gives the same gradient and the same loss (63).
    acc_loss, acc_grads, _ = trainer.accumulate_gradients(
        {"w": jnp.ones((3, 2))}, batch, None, _linear_loss, num_microbatches=2
    )
    np.testing.assert_allclose(np.asarray(acc_grads["w"]), hand_grads, rtol=1e-6)
    assert float(acc_loss) == pytest.approx(63.0)
    step_metrics, params_before = [], []
    for i in range(3):
        old = np.asarray(state.params["w"])
        params_before.append(old)
        state, metrics = step(state, partitioner.global_batch(batch), jax.random.key(1))
        step_metrics.append(metrics)
        assert int(state.step) == i + 1
        assert float(metrics["learning_rate"]) == pytest.approx(0.5 * i / 4)  # warmup: the rate of this update
    assert not np.allclose(np.asarray(state.params["w"]), old)
    # Metrics of the last step: token counts straight from the batch.
    assert float(metrics["nonpadding_tokens"]) == 4 + 3
    assert float(metrics["total_tokens"]) == 6 + 4
    assert float(metrics["weight_sum"]) == 3
    assert float(metrics["accuracy"]) == 0.0  # recomputed from correct / weight_sum, not summed
    first_grads_norm = float(optax.tree.norm(expected_grads))
    assert first_grads_norm > 0
    # Every step reports the gradient and the loss at the parameters it started from: the first one
    # those of the hand-worked gradient, the later ones those of the parameters the previous update left.
    assert float(step_metrics[0]["grad_norm"]) == pytest.approx(first_grads_norm, rel=1e-6)
    assert float(step_metrics[0]["loss"]) == pytest.approx(63.0)
    for metrics_i, w in zip(step_metrics, params_before):
        want_loss, want_grads, _ = trainer.accumulate_gradients({"w": jnp.asarray(w)}, batch, None, _linear_loss)
        assert float(metrics_i["grad_norm"]) == pytest.approx(float(optax.tree.norm(want_grads)), rel=1e-5)
        assert float(metrics_i["loss"]) == pytest.approx(float(want_loss), rel=1e-6)
    loss, grads, _ = trainer.accumulate_gradients(state.params, batch, None, _linear_loss)
    assert float(metrics["grad_norm"]) > 0 and np.isfinite(float(metrics["loss"]))
    # eval_step: the same loss without an update.
    evaluate = trainer.make_eval_step(partitioner, layout, batch, loss_fn=_linear_loss)
    assert float(evaluate(state.params, partitioner.global_batch(batch))["loss"]) == pytest.approx(float(loss))


def test_terminate_on_nan_names_the_first_bad_step():
    guard = trainer.TerminateOnNan()
    guard.record(1, {"loss": jnp.float32(2.0), "grad_norm": jnp.float32(1.0)})
    guard.check()
    guard.record(2, {"loss": jnp.float32(1.5), "grad_norm": jnp.float32(1.0)})
    guard.record(3, {"loss": jnp.float32(1.2), "grad_norm": jnp.float32(np.inf)})
    guard.record(4, {"loss": jnp.float32(np.nan), "grad_norm": jnp.float32(np.nan)})
    with pytest.raises(trainer.NonFiniteLossError, match=r"at step 3\b") as info:
        guard.check()
    assert info.value.step == 3
    guard.check()  # what was pending has been examined
