"""Pure train and eval step functions, the train state, and their jit-compiled, partitioned wrappers.

In T5X's layout this module holds the steps (``train_step``: microbatched gradient accumulation, then the
optimizer update; ``eval_step``) and the stopping rule for a non-finite loss; the loop, I/O and flags belong to
the binary. Nothing here knows the network: the model enters as a ``loss_fn`` callable,
``loss_fn(params, batch, dropout_rng) -> (loss, metrics)`` (``models.EncoderDecoderModel.loss_fn`` has this
signature; ``microbatch_loss(model)`` adapts it for exact accumulation).

The accumulation contract: ``loss`` and the scalar ``metrics`` are *additive over rows*, so a batch's value is
the sum of its microbatches' values (T5X's summed losses, or a loss divided by a constant). The gradient of the
summed microbatch losses then equals the full batch's gradient, whatever the split. Ratio metrics are not
additive: the trainer drops ``accuracy`` and recomputes it as ``correct / weight_sum``. A loss divided by a
batch-dependent normaliser (a per-token mean) is made additive by ``microbatch_loss``, which resolves the
normaliser once on the full batch, as T5X's trainer does.

Dropout randomness is a pure function of ``(rng, step, microbatch)``: ``fold_in(fold_in(rng, step), i)``, so a
resumed run draws the same masks as an uninterrupted one without saving any RNG state.
"""

from __future__ import annotations

import copy
import dataclasses
import functools
from collections.abc import Callable, Mapping
from typing import Any

import flax
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax

PyTree = Any
Batch = Mapping[str, jax.Array]
LossFn = Callable[[PyTree, Batch, jax.Array | None], tuple[jax.Array, Mapping[str, jax.Array]]]

# Features a batch's rows are counted from for the token statistics (seqio's EncDecFeatureConverter names).
_TOKEN_FEATURES = ("encoder_input_tokens", "decoder_target_tokens")
# Metrics the trainer derives itself rather than summing over microbatches.
_DERIVED = ("accuracy",)


@flax.struct.dataclass
class TrainState:
    """What a train step updates: the number of updates applied so far, parameters, optimizer state.

    The optimizer itself (an ``optax.GradientTransformation``) is not part of the state: it is static, given
    to the step functions, so the state is a plain tree of arrays that Orbax saves and jit shards.
    """

    step: jax.Array
    params: PyTree
    opt_state: PyTree

    @classmethod
    def create(cls, params: PyTree, optimizer: optax.GradientTransformation) -> TrainState:
        return cls(step=jnp.zeros((), jnp.int32), params=params, opt_state=optimizer.init(params))


# ------------------------------------------------------------------------------------------------------------
# Pure step functions.


def microbatch_loss(model: Any) -> tuple[Callable[[Batch], Batch], LossFn]:
    """``(prepare_batch, loss_fn)`` for an ``EncoderDecoderModel``, exact under gradient accumulation.

    A model whose ``loss_normalizing_factor`` is special (computed from the batch, e.g. the number of real
    target tokens) would normalise each microbatch by its own count. ``prepare_batch`` (run once on the full
    batch, before the split) resolves the factor and per-token weights on the full batch and stores them as
    batch features; ``loss_fn`` then calls the model with that constant factor. Models with a constant or no
    normaliser pass through unchanged.
    """
    from iuie.model import losses

    special = model.loss_normalizing_factor
    if not isinstance(special, (str, losses.SpecialLossNormalizingFactor)):
        return (lambda batch: batch), model.loss_fn

    def prepare_batch(batch: Batch) -> Batch:
        factor, weights = losses.get_loss_normalizing_factor_and_weights(special, batch)
        rows = batch["decoder_target_tokens"].shape[0]
        return {
            **batch,
            "decoder_loss_weights": weights,
            "loss_normalizing_factor": jnp.full((rows,), factor, jnp.float32),
        }

    def loss_fn(params, batch, dropout_rng):
        batch = dict(batch)
        factor = batch.pop("loss_normalizing_factor")[0]
        constant = copy.copy(model)
        constant.loss_normalizing_factor = factor
        return constant.loss_fn(params, batch, dropout_rng)

    return prepare_batch, loss_fn


def split_microbatches(batch: Batch, num_microbatches: int) -> dict[str, jax.Array]:
    """``[B, ...]`` features -> ``[M, B/M, ...]``; microbatch ``m`` holds rows ``m, m + M, m + 2M, ...``.

    Strided rather than contiguous so that, with the batch sharded over devices in contiguous blocks, every
    device holds its share of every microbatch: the split needs no communication (the logical constraint
    keeps XLA from choosing otherwise). Which rows form a microbatch does not change the summed gradient.
    """

    def split(x):
        rows = x.shape[0]
        if rows % num_microbatches:
            raise ValueError(f"batch of {rows} rows does not split into {num_microbatches} microbatches")
        x = x.reshape((rows // num_microbatches, num_microbatches) + x.shape[1:]).swapaxes(0, 1)
        return nn.with_logical_constraint(x, (None, "batch") + (None,) * (x.ndim - 2))

    return {name: split(value) for name, value in batch.items()}


def _add_tree(a: PyTree, b: PyTree) -> PyTree:
    return jax.tree.map(jnp.add, a, b)


def accumulate_gradients(
    params: PyTree,
    batch: Batch,
    dropout_rng: jax.Array | None,
    loss_fn: LossFn,
    num_microbatches: int = 1,
    accumulation_dtype: Any = jnp.float32,
) -> tuple[jax.Array, PyTree, dict[str, jax.Array]]:
    """``(loss, grads, metrics)`` summed over microbatches (a ``lax.scan``; one pass when ``M = 1``).

    Microbatch ``i`` gets dropout key ``fold_in(dropout_rng, i)``. Gradients accumulate in
    ``accumulation_dtype`` and come back in each parameter's dtype.
    """
    grad_fn = jax.value_and_grad(loss_fn, has_aux=True)

    def one(mb: Batch, index):
        rng = None if dropout_rng is None else jax.random.fold_in(dropout_rng, index)
        (loss, metrics), grads = grad_fn(params, mb, rng)
        metrics = {k: jnp.asarray(v, jnp.float32) for k, v in metrics.items() if k not in _DERIVED}
        grads = jax.tree.map(lambda g: g.astype(accumulation_dtype), grads)
        return loss.astype(jnp.float32), grads, metrics

    if num_microbatches <= 1:
        loss, grads, metrics = one(batch, 0)
    else:
        micro = split_microbatches(batch, num_microbatches)
        first = jax.tree.map(lambda x: x[0], micro)
        shapes = jax.eval_shape(one, first, 0)
        zeros = jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype), shapes)

        def body(carry, xs):
            mb, index = xs
            return _add_tree(carry, one(mb, index)), None

        (loss, grads, metrics), _ = jax.lax.scan(body, zeros, (micro, jnp.arange(num_microbatches)))
    grads = jax.tree.map(lambda g, p: g.astype(p.dtype), grads, params)
    if "correct" in metrics and "weight_sum" in metrics:
        metrics["accuracy"] = metrics["correct"] / jnp.maximum(metrics["weight_sum"], 1.0)
    return loss, grads, metrics


def token_statistics(batch: Batch) -> dict[str, jax.Array]:
    """Non-padding and total token counts over the encoder inputs and decoder targets (for throughput)."""
    present = [batch[name] for name in _TOKEN_FEATURES if name in batch]
    nonpadding = sum(jnp.sum(x > 0, dtype=jnp.float32) for x in present)
    total = sum(float(np.prod(x.shape)) for x in present)
    return {"nonpadding_tokens": jnp.asarray(nonpadding, jnp.float32), "total_tokens": jnp.float32(total)}


def train_step(
    state: TrainState,
    batch: Batch,
    rng: jax.Array | None,
    *,
    loss_fn: LossFn,
    optimizer: optax.GradientTransformation,
    learning_rate_fn: optax.Schedule | None = None,
    num_microbatches: int = 1,
    prepare_batch: Callable[[Batch], Batch] | None = None,
    accumulation_dtype: Any = jnp.float32,
) -> tuple[TrainState, dict[str, jax.Array]]:
    """One optimizer update from one (global) batch. Pure: :func:`make_train_step` jits it with the shardings.

    Args:
      state: the current state; ``state.step`` updates have been applied.
      batch: the full batch, ``[B, ...]`` per feature.
      rng: the run's dropout key (constant over the run); None disables dropout.
      loss_fn: ``(params, batch, dropout_rng) -> (loss, metrics)``, additive over rows (module docstring).
      optimizer: the optax transformation whose state is ``state.opt_state``.
      learning_rate_fn: the optimizer's schedule, only to report the rate used by this update.
      num_microbatches: gradient accumulation steps.
      prepare_batch: run on the full batch before the split (see ``microbatch_loss``).
      accumulation_dtype: dtype of the gradient accumulator.

    Returns:
      ``(new_state, metrics)``: scalars: ``loss`` (the objective, summed over microbatches), the loss_fn's
      metrics summed (``z_loss``, ``correct``, ``weight_sum``, ...), ``accuracy``, ``grad_norm`` (global L2
      norm of the accumulated gradient, before any clipping), ``learning_rate``, ``nonpadding_tokens``,
      ``total_tokens``.
    """
    if prepare_batch is not None:
        batch = prepare_batch(batch)
    dropout_rng = None if rng is None else jax.random.fold_in(rng, state.step)
    loss, grads, metrics = accumulate_gradients(
        state.params, batch, dropout_rng, loss_fn, num_microbatches, accumulation_dtype
    )
    updates, opt_state = optimizer.update(grads, state.opt_state, state.params)
    params = optax.apply_updates(state.params, updates)
    new_state = state.replace(step=state.step + 1, params=params, opt_state=opt_state)
    metrics = {
        **metrics,
        "loss": loss,
        "grad_norm": optax.tree.norm(grads),
        **token_statistics(batch),
    }
    if learning_rate_fn is not None:
        metrics["learning_rate"] = jnp.asarray(learning_rate_fn(state.step), jnp.float32)
    return new_state, metrics


def eval_step(params: PyTree, batch: Batch, *, loss_fn: LossFn) -> dict[str, jax.Array]:
    """Loss and metrics of one batch without dropout (sums: add them over batches, then divide)."""
    loss, metrics = loss_fn(params, batch, None)
    metrics = {k: jnp.asarray(v, jnp.float32) for k, v in metrics.items() if k not in _DERIVED}
    return {**metrics, "loss": jnp.asarray(loss, jnp.float32), **token_statistics(batch)}


# ------------------------------------------------------------------------------------------------------------
# Shardings and jit.


def _with_shardings(abstract: PyTree, shardings: PyTree) -> PyTree:
    return jax.tree.map(lambda a, s: jax.ShapeDtypeStruct(a.shape, a.dtype, sharding=s), abstract, shardings)


@dataclasses.dataclass(frozen=True)
class StateLayout:
    """The train state's abstract shapes and shardings, from ``abstract_state``.

    ``abstract`` is a ``TrainState`` of ``jax.ShapeDtypeStruct``s carrying their shardings (what Orbax
    restores into and what ``.lower()`` compiles against); ``shardings`` the same tree of ``NamedSharding``s.
    """

    abstract: TrainState
    shardings: TrainState
    logical_specs: PyTree  # per parameter, the logical axis names (``nn.get_partition_spec``)


def abstract_state(
    init_params_fn: Callable[[jax.Array], PyTree],
    optimizer: optax.GradientTransformation,
    partitioner: Any,
) -> StateLayout:
    """Shapes and shardings of ``TrainState.create(init_params_fn(rng), optimizer)`` without allocating it.

    ``init_params_fn(rng)`` returns the boxed parameters (``nn.with_logical_partitioning``), e.g.
    ``lambda rng: model.get_initial_variables(rng, shapes)['params']``. Parameter shardings come from their
    logical names and the partitioner's rules; optimizer-state shardings follow them
    (``partitioning.optimizer_state_shardings``); the step counter is replicated.
    """
    boxed = jax.eval_shape(init_params_fn, jax.random.key(0))
    param_shardings = partitioner.param_shardings(boxed)
    abstract_params = nn.meta.unbox(boxed)
    opt_shardings = partitioner.optimizer_state_shardings(optimizer, abstract_params, param_shardings)
    abstract_opt = jax.eval_shape(optimizer.init, abstract_params)
    shardings = TrainState(step=partitioner.replicated, params=param_shardings, opt_state=opt_shardings)
    abstract = TrainState(
        step=jax.ShapeDtypeStruct((), jnp.int32, sharding=partitioner.replicated),
        params=_with_shardings(abstract_params, param_shardings),
        opt_state=_with_shardings(abstract_opt, opt_shardings),
    )
    return StateLayout(abstract=abstract, shardings=shardings, logical_specs=nn.get_partition_spec(boxed))


def init_state(
    init_params_fn: Callable[[jax.Array], PyTree],
    optimizer: optax.GradientTransformation,
    layout: StateLayout,
    rng: jax.Array,
) -> TrainState:
    """A fresh train state, created directly in its shardings (no device ever holds all of it)."""

    def create(rng):
        return TrainState.create(nn.meta.unbox(init_params_fn(rng)), optimizer)

    return jax.jit(create, out_shardings=layout.shardings)(rng)


def place_params(params: PyTree, abstract_params: PyTree) -> PyTree:
    """``params`` (host or device arrays) cast to ``abstract_params``' dtypes and put in their shardings."""

    def place(value, abstract):
        if isinstance(value, jax.Array):
            if value.dtype != abstract.dtype:
                value = value.astype(abstract.dtype)
            return jax.device_put(value, abstract.sharding)
        return jax.device_put(np.asarray(value, abstract.dtype), abstract.sharding)

    return jax.tree.map(place, params, abstract_params)


def state_from_params(params: PyTree, optimizer: optax.GradientTransformation, layout: StateLayout) -> TrainState:
    """A train state at step 0 around given parameters (e.g. from ``checkpoints.load_initial_params``):
    parameters placed in their shardings and cast to the layout's dtypes, a fresh optimizer state."""
    params = place_params(params, layout.abstract.params)
    create = functools.partial(TrainState.create, optimizer=optimizer)
    return jax.jit(create, in_shardings=(layout.shardings.params,), out_shardings=layout.shardings)(params)


class PartitionedStep:
    """A jit-compiled step with explicit shardings, traced inside the partitioner's mesh-and-rules context
    (so the network's ``nn.with_logical_constraint`` annotations apply). Call it like the step; ``lower``
    takes abstract arguments (``jax.ShapeDtypeStruct`` with shardings) for ahead-of-time compilation."""

    def __init__(self, fn: Callable, partitioner: Any, **jit_kwargs):
        self._jitted = jax.jit(fn, **jit_kwargs)
        self._partitioner = partitioner

    def __call__(self, *args):
        with self._partitioner.context():
            return self._jitted(*args)

    def lower(self, *args):
        with self._partitioner.context():
            return self._jitted.lower(*args)


def make_train_step(
    partitioner: Any,
    layout: StateLayout,
    batch_spec: Mapping[str, Any],
    *,
    loss_fn: LossFn,
    optimizer: optax.GradientTransformation,
    learning_rate_fn: optax.Schedule | None = None,
    num_microbatches: int = 1,
    prepare_batch: Callable[[Batch], Batch] | None = None,
    accumulation_dtype: Any = jnp.float32,
    donate_state: bool = True,
) -> PartitionedStep:
    """``train_step`` under ``jax.jit`` with the state's and batch's shardings; the state is donated, so
    the old state's buffers are reused for the new one (do not touch a state after passing it in).

    ``batch_spec`` maps feature names to arrays or ``ShapeDtypeStruct``s (only their ranks are read).
    Metrics come back replicated.
    """
    step = functools.partial(
        train_step,
        loss_fn=loss_fn,
        optimizer=optimizer,
        learning_rate_fn=learning_rate_fn,
        num_microbatches=num_microbatches,
        prepare_batch=prepare_batch,
        accumulation_dtype=jnp.dtype(accumulation_dtype),
    )
    return PartitionedStep(
        step,
        partitioner,
        in_shardings=(layout.shardings, partitioner.batch_shardings(batch_spec), partitioner.replicated),
        out_shardings=(layout.shardings, partitioner.replicated),
        donate_argnums=(0,) if donate_state else (),
    )


def make_eval_step(partitioner: Any, layout: StateLayout, batch_spec: Mapping[str, Any], *, loss_fn: LossFn):
    """``eval_step`` under ``jax.jit``: parameters in their shardings (not donated), replicated metrics.

    Used only by tests (tests/trainer/test_trainer.py: the loss of held-out batches under each preset); the
    binaries evaluate by decoding with seqio's Evaluator instead.
    """
    return PartitionedStep(
        functools.partial(eval_step, loss_fn=loss_fn),
        partitioner,
        in_shardings=(layout.shardings.params, partitioner.batch_shardings(batch_spec)),
        out_shardings=partitioner.replicated,
    )


# ------------------------------------------------------------------------------------------------------------
# Stopping on a non-finite loss.


class NonFiniteLossError(FloatingPointError):
    """The loss or the gradient norm of a train step was NaN or infinite."""

    def __init__(self, step: int, loss: float, grad_norm: float):
        self.step = step
        super().__init__(
            f"loss is {loss} (gradient norm {grad_norm}) at step {step}: stopping; no checkpoint of step "
            f"{step} or later was written"
        )


class TerminateOnNan:
    """T5X's ``TerminateOnNanAction`` without the per-step host sync.

    ``record`` keeps each step's (device) loss and gradient norm; ``check`` fetches those recorded since the
    last check and raises ``NonFiniteLossError`` naming the first step (the step number a checkpoint of its
    result would carry) whose loss or gradient norm is not finite. The loop calls ``check`` at every logging
    period and *before every checkpoint save*, so parameters of a NaN step are never written.
    """

    def __init__(self):
        self._pending: list[tuple[int, jax.Array, jax.Array]] = []

    def record(self, step: int, metrics: Mapping[str, jax.Array]) -> None:
        self._pending.append((int(step), metrics["loss"], metrics.get("grad_norm", metrics["loss"])))

    def check(self) -> None:
        pending, self._pending = self._pending, []
        values = jax.device_get([(loss, norm) for _, loss, norm in pending])
        for (step, _, _), (loss, norm) in zip(pending, values):
            if not (np.isfinite(loss) and np.isfinite(norm)):
                raise NonFiniteLossError(step, float(loss), float(norm))
