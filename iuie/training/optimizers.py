"""Optimizers and learning-rate schedules, through optax.

Two optimizers:

* **Adafactor**, T5X's Flan fine-tuning default. ``optax.adafactor`` implements the same algorithm as T5X's
  ``t5x/adafactor.py``; the mapping of T5X's ``adafactor.Adafactor`` arguments (Flan fine-tuning leaves all at
  their defaults except the learning rate) is:

  ===================================  =========================================  =======================
  T5X ``adafactor.Adafactor``          ``optax.adafactor``                        value
  ===================================  =========================================  =======================
  ``decay_rate`` (exponent of          ``decay_rate`` (same schedule:             0.8
  ``adafactor_decay_rate_pow``)        ``1 - (step - offset + 1)^-0.8``)
  ``step_offset``                      ``decay_offset``                           0
  ``factored``                         ``factored``                               True
  ``min_dim_size_to_factor``           ``min_dim_size_to_factor``                 128
  ``beta1``                            ``momentum``                               None (no first moment)
  ``clipping_threshold``               ``clipping_threshold`` (block-RMS update    1.0
                                       clipping, ``u / max(1, rms(u) / t)``)
  ``multiply_by_parameter_scale``      ``multiply_by_parameter_scale``            True
  ``epsilon1``                         ``eps``                                    1e-30
  ``epsilon2`` (parameter-scale floor)  fixed ``min_scale`` of                    1e-3 (both defaults)
                                       ``scale_by_param_block_rms``
  ``weight_decay_rate``                ``weight_decay_rate``                      None
  ``global_norm_clip_threshold``       ``optax.clip_by_global_norm`` before it    None
  ``logical_factor_rules``             (none)                                     see below
  ===================================  =========================================  =======================

  T5X's ``logical_factor_rules`` only change the factorisation of parameters of rank > 2; for rank <= 2 (all
  of T5 1.1's parameters, whose attention kernels are stored joined as 2-D) T5X falls back to the same
  "two largest dimensions" heuristic optax uses. The step counter that drives the decay is the optimizer's
  own, which starts at 0 for a fresh run; T5X resumes it from a pre-training checkpoint's optimizer state
  when one is present (use ``step_offset`` to reproduce that).

* **AdamW**, the InstructUIE reference's optimizer (Hugging Face Trainer: lr 5e-5 at batch 256, betas
  0.9/0.999, eps 1e-8, weight decay 0, gradients clipped to global norm 1.0): ``optax.adamw``.

Schedules (``make_schedule``; ``step`` is the number of updates already applied, so the first update uses
``step = 0``, as in both T5X and optax), with ``lr`` = ``learning_rate`` and ``w`` = ``warmup_steps``:

* ``constant``: ``lr * min(1, step / w)`` (``lr`` when ``w = 0``);
* ``rsqrt``: T5X's ``constant * linear_warmup * rsqrt_decay``: ``lr * min(1, step / w) / sqrt(max(step, w))``
  (peak ``lr / sqrt(w)`` at ``step = w``; ``w >= 1``);
* ``linear``: warmup, then ``lr`` down to ``end_learning_rate`` over ``decay_steps`` (HF's default);
* ``cosine``: warmup, then half a cosine from ``lr`` down to ``end_learning_rate`` over ``decay_steps``.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import optax

from iuie.training.configs import OptimizerConfig, ScheduleConfig


def _warmup_factor(step: jax.Array, warmup_steps: int) -> jax.Array:
    if warmup_steps <= 0:
        return jnp.ones_like(step)
    return jnp.minimum(1.0, step / warmup_steps)


def make_schedule(config: ScheduleConfig, total_steps: int | None = None) -> optax.Schedule:
    """The learning rate schedule of ``config``; ``total_steps`` fills in a missing ``decay_steps``."""
    lr = float(config.learning_rate)
    warmup = int(config.warmup_steps)

    if config.name == "constant":

        def constant(step):
            return lr * _warmup_factor(jnp.asarray(step, jnp.float32), warmup)

        return constant

    if config.name == "rsqrt":
        if warmup < 1:
            raise ValueError("the rsqrt schedule needs warmup_steps >= 1 (it decays as 1/sqrt(max(step, warmup)))")

        def rsqrt(step):
            step = jnp.asarray(step, jnp.float32)
            return lr * _warmup_factor(step, warmup) * jax.lax.rsqrt(jnp.maximum(step, float(warmup)))

        return rsqrt

    decay = config.decay_steps
    if decay is None:
        if total_steps is None:
            raise ValueError(f"the {config.name} schedule needs decay_steps or total_steps")
        decay = total_steps - warmup
        if decay < 1:
            raise ValueError(
                f"configs.ScheduleConfig.warmup_steps = {warmup} leaves the {config.name} schedule no steps to "
                f"decay over in a run of {total_steps} steps (TRAIN_STEPS): set "
                f"--gin.configs.ScheduleConfig.warmup_steps to less than {total_steps}, or raise TRAIN_STEPS"
            )
    if decay < 1:
        raise ValueError(
            f"configs.ScheduleConfig.decay_steps = {decay}: the {config.name} schedule needs at least 1 step to "
            "decay over"
        )
    end = float(config.end_learning_rate)
    if config.name == "linear":
        decay_part = optax.linear_schedule(lr, end, decay)
        if not warmup:
            return decay_part
        return optax.join_schedules([optax.linear_schedule(0.0, lr, warmup), decay_part], [warmup])
    # cosine; optax counts decay_steps from step 0, warmup included.
    return optax.warmup_cosine_decay_schedule(0.0, lr, warmup, warmup + decay, end)


def _decay_mask(params):
    # Norm scales (1-D) are never decayed, like Hugging Face's "no decay for LayerNorm weights".
    return jax.tree.map(lambda p: jnp.ndim(p) > 1, params)


def adafactor(config: OptimizerConfig, schedule: optax.Schedule) -> optax.GradientTransformation:
    """T5X's Adafactor (see the module docstring for the argument mapping)."""
    return optax.adafactor(
        learning_rate=schedule,
        min_dim_size_to_factor=config.min_dim_size_to_factor,
        decay_rate=config.decay_rate,
        decay_offset=config.step_offset,
        multiply_by_parameter_scale=config.multiply_by_parameter_scale,
        clipping_threshold=config.clipping_threshold,
        momentum=config.momentum,
        dtype_momentum=jnp.float32,
        weight_decay_rate=config.weight_decay or None,
        eps=config.epsilon1,
        factored=config.factored,
        weight_decay_mask=_decay_mask if config.weight_decay else None,
    )


def adamw(config: OptimizerConfig, schedule: optax.Schedule) -> optax.GradientTransformation:
    """AdamW with decoupled weight decay (none on norm scales)."""
    return optax.adamw(
        learning_rate=schedule,
        b1=config.b1,
        b2=config.b2,
        eps=config.eps,
        weight_decay=config.weight_decay,
        mask=_decay_mask,
    )


def make_optimizer(
    config: OptimizerConfig, total_steps: int | None = None
) -> tuple[optax.GradientTransformation, optax.Schedule]:
    """``(optimizer, schedule)``; the trainer reports ``schedule(step)`` as the learning rate.

    Global-norm clipping, when configured, runs first, on the raw accumulated gradient (T5X's
    ``global_norm_clip_threshold`` and Hugging Face's ``max_grad_norm`` both clip before the moments).
    """
    schedule = make_schedule(config.schedule, total_steps)
    build = {"adafactor": adafactor, "adamw": adamw}[config.name]
    tx = build(config, schedule)
    if config.global_norm_clip is not None:
        tx = optax.chain(optax.clip_by_global_norm(config.global_norm_clip), tx)
    return tx, schedule
