"""Optimizers and schedules against values worked out by hand, and Adafactor against T5X's algorithm.

References: the arithmetic in each test's comments; for Adafactor, a NumPy transcription of T5X's
``Adafactor.apply_param_gradient`` (``t5x/adafactor.py``, heuristic factorisation, no momentum, no weight
decay: the Flan fine-tuning setting).
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from iuie.training import configs, optimizers


def _schedule(name, **kw):
    return optimizers.make_schedule(configs.ScheduleConfig(name=name, learning_rate=1.0, **kw), total_steps=12)


def test_constant_schedule_with_and_without_warmup():
    s = _schedule("constant")
    assert [float(s(i)) for i in (0, 1, 100)] == [1.0, 1.0, 1.0]
    s = _schedule("constant", warmup_steps=4)
    # min(1, step / 4)
    np.testing.assert_allclose([float(s(i)) for i in (0, 1, 2, 4, 9)], [0.0, 0.25, 0.5, 1.0, 1.0])


def test_rsqrt_schedule_is_t5x_constant_linear_warmup_rsqrt_decay():
    s = _schedule("rsqrt", warmup_steps=4)
    # lr * min(1, step/4) / sqrt(max(step, 4)): step 2 -> 0.5 / 2; step 4 -> 1 / 2; step 16 -> 1 / 4.
    np.testing.assert_allclose([float(s(i)) for i in (0, 2, 4, 16, 100)], [0.0, 0.25, 0.5, 0.25, 0.1], rtol=1e-6)
    with pytest.raises(ValueError, match="warmup_steps >= 1"):
        _schedule("rsqrt")


def test_linear_and_cosine_decay():
    s = _schedule("linear", warmup_steps=4)  # decays over 12 - 4 = 8 steps
    np.testing.assert_allclose([float(s(i)) for i in (2, 4, 8, 12, 20)], [0.5, 1.0, 0.5, 0.0, 0.0], atol=1e-6)
    s = _schedule("linear")  # no warmup: 1 - step / 12
    np.testing.assert_allclose(float(s(3)), 0.75, rtol=1e-6)
    s = _schedule("cosine", warmup_steps=4)
    # halfway through the decay: (1 + cos(pi / 2)) / 2 = 0.5; a quarter: (1 + cos(pi / 4)) / 2.
    np.testing.assert_allclose(
        [float(s(i)) for i in (2, 6, 8, 12)], [0.5, (1 + np.cos(np.pi / 4)) / 2, 0.5, 0.0], atol=1e-6
    )
    s = optimizers.make_schedule(
        configs.ScheduleConfig(name="linear", learning_rate=2.0, decay_steps=4, end_learning_rate=1.0)
    )
    np.testing.assert_allclose(float(s(2)), 1.5, rtol=1e-6)
    with pytest.raises(ValueError, match="decay_steps or total_steps"):
        optimizers.make_schedule(configs.ScheduleConfig(name="cosine"))


def _adafactor(lr, **kw):
    config = dataclasses.replace(configs.ADAFACTOR_FLAN, schedule=configs.ScheduleConfig(learning_rate=lr), **kw)
    return optimizers.make_optimizer(config)[0]


def test_adafactor_first_step_by_hand():
    # Constant gradient c on a factored (128, 256) kernel of 0.5s. Step 0: decay = 1 - 1^-0.8 = 0, so
    # v_row = v_col = c^2; row factor 1, column factor 1/c; y = c * 1/c = 1; rms(y) = 1 (no clipping);
    # parameter scale rms(p) = 0.5; new p = 0.5 - lr * 0.5 * 1 = 0.495 for lr = 0.01.
    params = {"kernel": jnp.full((128, 256), 0.5), "scale": jnp.asarray([1.0, 2.0, 3.0, 4.0])}
    grads = {"kernel": jnp.full((128, 256), 3.0), "scale": jnp.asarray([0.1, -0.2, 0.3, -0.4])}
    tx = _adafactor(0.01)
    updates, _ = tx.update(grads, tx.init(params), params)
    new = optax.apply_updates(params, updates)
    np.testing.assert_allclose(np.asarray(new["kernel"]), 0.495, rtol=1e-6)
    # Unfactored vector: y = g / |g| = sign(g); rms(p) = sqrt(7.5); p - 0.01 * sqrt(7.5) * sign(g).
    expected = np.asarray([1.0, 2.0, 3.0, 4.0]) - 0.01 * np.sqrt(7.5) * np.sign([0.1, -0.2, 0.3, -0.4])
    np.testing.assert_allclose(np.asarray(new["scale"]), expected, rtol=1e-6)


def _t5x_adafactor_step(
    param, grad, state, step, lr, *, decay_exponent=0.8, clip=1.0, eps1=1e-30, eps2=1e-3, min_dim=128
):
    """T5X's apply_param_gradient (heuristic rule, beta1=None, no weight decay), in NumPy float64."""
    decay = 1.0 - (step + 1.0) ** (-decay_exponent)
    update_scale = lr * max(np.sqrt(np.mean(param * param)), eps2)
    grad_sqr = grad * grad + eps1
    factored = None
    if param.ndim >= 2:
        order = np.argsort(param.shape)
        if param.shape[order[-2]] >= min_dim:
            factored = int(order[-2]), int(order[-1])
    if factored is not None:
        d1, d0 = factored
        v_row = decay * state["v_row"] + (1 - decay) * np.mean(grad_sqr, axis=d0)
        v_col = decay * state["v_col"] + (1 - decay) * np.mean(grad_sqr, axis=d1)
        reduced_d1 = d1 - 1 if d1 > d0 else d1
        row_factor = (v_row / np.mean(v_row, axis=reduced_d1, keepdims=True)) ** -0.5
        y = grad * np.expand_dims(row_factor, d0) * np.expand_dims(v_col**-0.5, d1)
        state = {"v_row": v_row, "v_col": v_col}
    else:
        v = decay * state["v"] + (1 - decay) * grad_sqr
        y = grad * v**-0.5
        state = {"v": v}
    y = y / max(1.0, np.sqrt(np.mean(y * y)) / clip)
    return param - update_scale * y, state


def test_adafactor_matches_t5x_over_several_steps():
    rng = np.random.default_rng(0)
    params = {
        "wide": rng.normal(size=(128, 200)),
        "tall": rng.normal(size=(300, 130)) * 0.01,
        "small": rng.normal(size=(8, 4)),
        "vector": rng.normal(size=(130,)),
    }
    states = {k: ({"v_row": 0.0, "v_col": 0.0} if k in ("wide", "tall") else {"v": 0.0}) for k in params}
    tx = _adafactor(0.05)
    jparams = {k: jnp.asarray(v, jnp.float32) for k, v in params.items()}
    opt_state = tx.init(jparams)
    for step in range(4):
        # Outliers make the clipping threshold bite in some steps.
        grads = {k: rng.normal(size=v.shape) * (1 + 20 * (rng.random(v.shape) < 0.01)) for k, v in params.items()}
        jgrads = {k: jnp.asarray(g, jnp.float32) for k, g in grads.items()}
        updates, opt_state = tx.update(jgrads, opt_state, jparams)
        jparams = optax.apply_updates(jparams, updates)
        for k in params:
            params[k], states[k] = _t5x_adafactor_step(params[k], grads[k], states[k], step, 0.05)
    for k in params:
        np.testing.assert_allclose(np.asarray(jparams[k]), params[k], rtol=2e-5, atol=1e-6, err_msg=k)


def test_adamw_first_step_by_hand_and_no_decay_on_scales():
    # Step 1: bias-corrected m = g, v = g^2, so the Adam direction is g / (|g| + eps) = sign(g). Decoupled
    # decay adds wd * p on matrices only: p - lr * (sign(g) + wd * p); the 1-D scale gets p - lr * sign(g).
    config = configs.OptimizerConfig(
        name="adamw", schedule=configs.ScheduleConfig(learning_rate=0.1), weight_decay=0.01
    )
    tx, _ = optimizers.make_optimizer(config)
    params = {"kernel": jnp.asarray([[1.0, 2.0], [3.0, 4.0]]), "scale": jnp.asarray([1.0, 1.0])}
    grads = {"kernel": jnp.asarray([[0.1, -0.2], [0.3, -0.4]]), "scale": jnp.asarray([0.5, -0.5])}
    updates, _ = tx.update(grads, tx.init(params), params)
    new = optax.apply_updates(params, updates)
    kernel = np.asarray(params["kernel"])
    np.testing.assert_allclose(
        np.asarray(new["kernel"]), kernel - 0.1 * (np.sign(np.asarray(grads["kernel"])) + 0.01 * kernel), rtol=1e-6
    )
    np.testing.assert_allclose(np.asarray(new["scale"]), [0.9, 1.1], rtol=1e-6)


def test_reference_adamw_clips_the_global_norm_first():
    # ADAMW_REFERENCE: lr 5e-5, gradients clipped to global norm 1 before Adam. Two steps with a gradient of
    # norm 10 then 0.5 equal plain AdamW fed the clipped gradients (g / 10, then unchanged).
    assert configs.ADAMW_REFERENCE.schedule.learning_rate == 5e-5
    tx, schedule = optimizers.make_optimizer(configs.ADAMW_REFERENCE)
    assert float(schedule(1000)) == pytest.approx(5e-5)
    plain = optax.adamw(5e-5, weight_decay=0.0)
    params = {"w": jnp.ones((2, 2))}
    g1 = {"w": jnp.full((2, 2), 5.0)}  # norm 10
    g2 = {"w": jnp.asarray([[0.25, -0.25], [0.25, -0.25]])}  # norm 0.5
    s, p = tx.init(params), params
    s_ref, p_ref = plain.init(params), params
    for g, g_clipped in ((g1, jax.tree.map(lambda x: x / 10.0, g1)), (g2, g2)):
        u, s = tx.update(g, s, p)
        p = optax.apply_updates(p, u)
        u_ref, s_ref = plain.update(g_clipped, s_ref, p_ref)
        p_ref = optax.apply_updates(p_ref, u_ref)
    np.testing.assert_allclose(np.asarray(p["w"]), np.asarray(p_ref["w"]), rtol=1e-7)


def test_unknown_names_are_rejected():
    with pytest.raises(ValueError, match="optimizer must be one of"):
        configs.OptimizerConfig(name="lamb")
    with pytest.raises(ValueError, match="schedule must be one of"):
        configs.ScheduleConfig(name="step")
