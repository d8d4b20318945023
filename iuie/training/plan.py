"""Ahead-of-time memory and cost plans: the train and decode steps compiled for a target TPU topology.

XLA compiles for a TPU slice on a machine that has none: ``jax.experimental.topologies.get_topology_desc``
(libtpu, the ``tpu`` extra) describes the slice's devices, a mesh is built over them, and ``jit(...).lower(
abstract arguments).compile()`` runs the TPU compiler, whose ``memory_analysis()`` and ``cost_analysis()``
are the figures a run on that slice would have (MaxText's ``train_compile.py`` checks configurations the same
way before a slice is booked). Nothing is allocated: parameters, optimizer state and batches are
``jax.ShapeDtypeStruct``s with their shardings.

Per device, XLA reports the arguments (train state + batch), outputs (new state + metrics), the part of the
outputs aliased to donated arguments, the temporaries of its buffer assignment and the generated code. The
peak is ``arguments + outputs - aliased + temporaries + code``; a plan fits when that is at most the chip's
high-bandwidth memory (``HBM_BYTES_PER_CHIP`` shared by the chip's devices; compile-only devices do not report
their memory).

``plan_train`` compiles exactly the step ``iuie.train`` runs (``trainer.make_train_step`` with the run's
microbatches, loss normaliser and accumulation dtype); ``plan_decode`` the jitted ``predict_batch`` of
``iuie.evaluation.predict.Predictor`` (parameters in their shardings, the batch replicated).
"""

from __future__ import annotations

import dataclasses
import math
import os
import time
from collections.abc import Mapping, Sequence
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from iuie.model import flops as flops_lib
from iuie.training import optimizers, partitioning, trainer

GIB = 1024**3

# High-bandwidth memory per chip (Google Cloud's TPU system-architecture pages), matched in order against
# ``device_kind`` (the first key that is a substring wins, so specific names come first). A chip whose
# TensorCores libtpu lists as separate devices (v2, v3, and v4 in compile-only topologies) shares it among them:
# see ``hbm_bytes``.
HBM_BYTES_PER_CHIP: tuple[tuple[str, int], ...] = (
    ("TPU v6 lite", 32 * GIB),  # Trillium (v6e)
    ("TPU v5 lite", 16 * GIB),  # v5e
    ("TPU v5p", 95 * GIB),
    ("TPU v5", 95 * GIB),  # v5p's device_kind
    ("TPU v4", 32 * GIB),
    ("TPU v3", 32 * GIB),
    ("TPU v2", 16 * GIB),
)

# The features of seqio's EncDecFeatureConverter(pack=True): what iuie.train feeds the train step.
PACKED_FEATURES = {
    "encoder_input_tokens": ("inputs", jnp.int32),
    "encoder_segment_ids": ("inputs", jnp.int32),
    "encoder_positions": ("inputs", jnp.int32),
    "decoder_input_tokens": ("targets", jnp.int32),
    "decoder_target_tokens": ("targets", jnp.int32),
    "decoder_loss_weights": ("targets", jnp.int32),
    "decoder_segment_ids": ("targets", jnp.int32),
    "decoder_positions": ("targets", jnp.int32),
}


class CompilerOutOfMemory(Exception):
    """The TPU compiler refused the step because it cannot fit the chip's memory: the plan's answer is "does
    not fit", with the compiler's own figures (``message``, e.g. "the total memory required for HLO
    temporaries (18.44G) exceeds available HBM (15.25G)"); no ``memory_analysis()`` exists then."""

    def __init__(self, step: str, message: str):
        super().__init__(f"{step} step: {message}")
        self.step = step
        self.message = message


def _compile(lowered: Any, step: str) -> Any:
    """``lowered.compile()``; the compiler's out-of-memory refusal becomes :class:`CompilerOutOfMemory`."""
    try:
        return lowered.compile()
    except jax.errors.JaxRuntimeError as e:
        text = str(e)
        if "RESOURCE_EXHAUSTED" not in text:
            raise
        message = text.split("RESOURCE_EXHAUSTED:", 1)[1].strip().splitlines()[0]
        raise CompilerOutOfMemory(step, message) from None


class TopologyError(ValueError):
    """A topology name libtpu does not know, or libtpu missing."""


def hbm_bytes(device: Any, devices: Sequence[Any] = ()) -> int | None:
    """One device's share of its chip's high-bandwidth memory in bytes (None for a kind not in
    ``HBM_BYTES_PER_CHIP``): the chip's memory divided by the devices of ``devices`` on the same chip."""
    kind = str(getattr(device, "device_kind", "")).lower()
    for key, size in HBM_BYTES_PER_CHIP:
        if key.lower() in kind:
            coords = tuple(getattr(device, "coords", ()) or ())
            sharing = sum(1 for d in devices if tuple(getattr(d, "coords", ()) or ()) == coords) if coords else 0
            return size // max(sharing, 1)
    return None


def topology_devices(name: str) -> list[Any]:
    """The devices of a TPU topology as libtpu names it (``v5e:2x4``, ``v4:2x2x1``, ``v5p:2x2x2``, ...),
    compile-only (nothing runs on them)."""
    try:
        from jax.experimental import topologies
    except ImportError as e:  # pragma: no cover - part of jax
        raise TopologyError(f"jax.experimental.topologies is unavailable: {e}") from e
    # libtpu takes a machine-wide lock file when it loads, meant for processes sharing a real TPU; compile-only
    # use touches no chip, so it need not wait for (or fail on) another process that holds the lock.
    os.environ.setdefault("ALLOW_MULTIPLE_LIBTPU_LOAD", "1")
    try:
        desc = topologies.get_topology_desc(platform="tpu", topology_name=name)
    except Exception as e:
        text = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        if "libtpu" in text.lower() or "unknown backend" in text.lower() or "tpu" not in text.lower():
            text += " (is libtpu installed? pip install 'iuie[tpu]')"
        raise TopologyError(f"topology {name!r}: {text}") from e
    return list(desc.devices)


def _shard_shape(leaf: Any) -> tuple[int, ...]:
    sharding = getattr(leaf, "sharding", None)
    return tuple(sharding.shard_shape(leaf.shape)) if sharding is not None else tuple(leaf.shape)


def _leaf_dtype_shape(leaf: Any) -> tuple[np.dtype, tuple[int, ...]]:
    # A typed PRNG key is stored as its key data (two uint32 words for threefry).
    if jax.dtypes.issubdtype(leaf.dtype, jax.dtypes.prng_key):
        data = jax.eval_shape(jax.random.key_data, jax.ShapeDtypeStruct(leaf.shape, leaf.dtype))
        return np.dtype(data.dtype), _shard_shape(leaf) + tuple(data.shape[len(leaf.shape) :])
    return np.dtype(leaf.dtype), _shard_shape(leaf)


def per_device_bytes(abstract: Any) -> int:
    """Bytes one device holds of a tree of ``ShapeDtypeStruct``s with shardings: its shard of each leaf,
    unpadded."""
    total = 0
    for leaf in jax.tree.leaves(abstract):
        dtype, shape = _leaf_dtype_shape(leaf)
        total += math.prod(shape) * dtype.itemsize
    return int(total)


def tiled_bytes(shape: Sequence[int], itemsize: int, layout: Any) -> int:
    """Bytes of an array of ``shape`` in a device layout: dimensions ordered major to minor, the minor ones
    padded to multiples of the first tile (TPU tiles: ``(8, 128)`` for 2-D and wider, ``(128,)`` or
    ``(1024,)`` for vectors; a scalar is a vector of one element)."""
    order = tuple(getattr(layout, "major_to_minor", ())) if layout is not None else ()
    dims = [int(shape[i]) for i in order] if len(order) == len(shape) else [int(d) for d in shape]
    tiling = tuple(getattr(layout, "tiling", ()) or ()) if layout is not None else ()
    if tiling:
        tile = tuple(int(t) for t in tiling[0])
        if len(dims) < len(tile):
            dims = [1] * (len(tile) - len(dims)) + dims
        for k, t in enumerate(tile, start=len(dims) - len(tile)):
            dims[k] = -(-dims[k] // t) * t
    return int(math.prod(dims) * itemsize)


def argument_bytes_in_layouts(abstract_args: Sequence[Any], compiled: Any) -> int:
    """Bytes one device holds of the arguments: each leaf's shard (from its sharding, not from XLA) padded
    in the layout the compiled program chose for it (``compiled.input_formats``). Leaves the program does not
    read (jit prunes unused arguments; their format has neither layout nor sharding) are not passed to it and
    count nothing: e.g. the ``*_positions`` features, which the network accepts but does not need."""
    leaves = jax.tree.leaves(tuple(abstract_args))
    formats = jax.tree.leaves(compiled.input_formats[0], is_leaf=lambda f: hasattr(f, "layout"))
    if len(formats) != len(leaves):
        raise ValueError(f"{len(leaves)} arguments but {len(formats)} input formats")
    total = 0
    for leaf, fmt in zip(leaves, formats):
        if getattr(fmt, "layout", None) is None and getattr(fmt, "sharding", None) is None:
            continue  # pruned by jit
        dtype, shape = _leaf_dtype_shape(leaf)
        total += tiled_bytes(shape, dtype.itemsize, getattr(fmt, "layout", None))
    return total


def _expected_arguments(abstract_args: Sequence[Any], compiled: Any) -> int | None:
    # None when the compiled program does not say its layouts (a backend without input_formats).
    try:
        return argument_bytes_in_layouts(abstract_args, compiled)
    except (AttributeError, ValueError, TypeError):
        return None


@dataclasses.dataclass(frozen=True)
class CompiledPlan:
    """XLA's figures for one compiled step, per device (bytes), and its FLOPs."""

    step: str  # 'train' or 'decode'
    devices: int
    device_kind: str
    mesh: tuple[int, ...]
    arguments: int
    outputs: int
    aliased: int
    temporaries: int
    code: int
    hbm: int | None
    xla_flops: float | None  # per device, from cost_analysis (remat recomputation included)
    model_flops: float | None  # per device, iuie.model.flops's count (no recomputation)
    compile_seconds: float
    # Each argument's shard (from its sharding) padded in the layout XLA chose: what ``arguments`` must equal.
    expected_arguments: int | None = None
    state_bytes: int | None = None  # the sharded train state (parameters + optimizer state + step), unpadded

    @property
    def peak(self) -> int:
        return self.arguments + self.outputs - self.aliased + self.temporaries + self.code

    @property
    def fits(self) -> bool | None:
        return None if self.hbm is None else self.peak <= self.hbm

    def to_json(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        out.update(mesh=list(self.mesh), peak=self.peak, fits=self.fits)
        return out


def _memory(compiled: Any) -> dict[str, int]:
    m = compiled.memory_analysis()
    return {
        "arguments": int(m.argument_size_in_bytes),
        "outputs": int(m.output_size_in_bytes),
        "aliased": int(m.alias_size_in_bytes),
        "temporaries": int(m.temp_size_in_bytes),
        "code": int(m.generated_code_size_in_bytes),
    }


def _xla_flops(compiled: Any) -> float | None:
    try:
        cost = compiled.cost_analysis()
    except Exception:  # some backends have no cost model
        return None
    if isinstance(cost, (list, tuple)):
        cost = cost[0] if cost else None
    if not cost or "flops" not in cost:
        return None
    return float(cost["flops"])


def packed_batch_spec(partitioner: Any, batch_size: int, lengths: Mapping[str, int]) -> dict[str, Any]:
    """The train step's batch as ``ShapeDtypeStruct``s in the partitioner's batch sharding."""
    return {
        name: jax.ShapeDtypeStruct((batch_size, int(lengths[side])), dtype, sharding=partitioner.batch_sharding(2))
        for name, (side, dtype) in PACKED_FEATURES.items()
    }


def make_partitioner(config: Any, devices: Sequence[Any]) -> Any:
    """``Partitioner.from_config`` over the target's devices."""
    return partitioning.Partitioner.from_config(config, devices=list(devices))


def plan_train(model: Any, train_config: Any, lengths: Mapping[str, int], devices: Sequence[Any]) -> CompiledPlan:
    """Compiles the train step ``iuie.train`` would run with ``train_config`` (a ``configs.TrainConfig``) on
    ``devices``, from abstract arguments, and reads XLA's figures."""
    part = make_partitioner(train_config.partitioning, devices)
    if train_config.batch_size % part.data_parallel_size:
        raise ValueError(
            f"BATCH_SIZE {train_config.batch_size} is not a multiple of the data-parallel size "
            f"{part.data_parallel_size} of mesh {tuple(part.mesh.devices.shape)}"
        )
    tx, schedule = optimizers.make_optimizer(train_config.optimizer, train_config.train_steps)
    batch = packed_batch_spec(part, train_config.batch_size, lengths)
    init_shapes = {name: (1,) + tuple(spec.shape[1:]) for name, spec in batch.items()}
    layout = trainer.abstract_state(lambda rng: model.get_initial_variables(rng, init_shapes)["params"], tx, part)
    prepare_batch, loss_fn = trainer.microbatch_loss(model)
    step = trainer.make_train_step(
        part,
        layout,
        batch,
        loss_fn=loss_fn,
        optimizer=tx,
        learning_rate_fn=schedule,
        num_microbatches=train_config.num_microbatches,
        prepare_batch=prepare_batch,
        accumulation_dtype=train_config.accumulation_dtype,
    )
    rng = jax.ShapeDtypeStruct((), jax.random.key(0).dtype, sharding=part.replicated)
    start = time.perf_counter()
    compiled = _compile(step.lower(layout.abstract, batch, rng), "train")
    seconds = time.perf_counter() - start
    count = len(devices)
    model_flops = flops_lib.train_step_flops(
        model.config, train_config.batch_size, lengths["inputs"], lengths["targets"]
    )
    state_bytes = per_device_bytes(layout.abstract)
    expected = _expected_arguments((layout.abstract, batch, rng), compiled)
    return CompiledPlan(
        step="train",
        devices=count,
        device_kind=str(devices[0].device_kind),
        mesh=tuple(int(s) for s in part.mesh.devices.shape),
        hbm=hbm_bytes(devices[0], devices),
        xla_flops=_xla_flops(compiled),
        model_flops=model_flops / count,
        compile_seconds=round(seconds, 1),
        expected_arguments=expected,
        state_bytes=state_bytes,
        **_memory(compiled),
    )


def plan_decode(
    model: Any, partitioning_config: Any, batch_size: int, lengths: Mapping[str, int], devices: Sequence[Any]
) -> CompiledPlan:
    """Compiles the decode of ``iuie.evaluation.predict.Predictor`` (``model.predict_batch``; parameters in their
    shardings, the batch of ``batch_size`` rows replicated) for ``devices`` and reads XLA's figures."""
    part = make_partitioner(partitioning_config, devices)
    shapes = {"encoder_input_tokens": (1, int(lengths["inputs"])), "decoder_input_tokens": (1, int(lengths["targets"]))}
    boxed = jax.eval_shape(lambda rng: model.get_initial_variables(rng, shapes)["params"], jax.random.key(0))
    shardings = part.param_shardings(boxed)
    params = jax.tree.map(
        lambda a, s: jax.ShapeDtypeStruct(a.shape, a.dtype, sharding=s), nn.meta.unbox(boxed), shardings
    )
    batch = {
        name: jax.ShapeDtypeStruct((batch_size, length), jnp.int32, sharding=part.replicated)
        for name, length in (
            ("encoder_input_tokens", int(lengths["inputs"])),
            ("decoder_input_tokens", int(lengths["targets"])),
        )
    }
    decode = jax.jit(lambda p, b: model.predict_batch(p, b), out_shardings=part.replicated)
    start = time.perf_counter()
    with part.context():
        compiled = _compile(decode.lower(params, batch), "decode")
    seconds = time.perf_counter() - start
    return CompiledPlan(
        step="decode",
        devices=len(devices),
        device_kind=str(devices[0].device_kind),
        mesh=tuple(int(s) for s in part.mesh.devices.shape),
        hbm=hbm_bytes(devices[0], devices),
        xla_flops=_xla_flops(compiled),
        model_flops=None,
        compile_seconds=round(seconds, 1),
        expected_arguments=_expected_arguments((params, batch), compiled),
        state_bytes=per_device_bytes(params),
        **_memory(compiled),
    )


def extrapolate(low: CompiledPlan, high: CompiledPlan, a: int, b: int, target: int) -> CompiledPlan:
    """Every byte and FLOP figure of plans compiled at depths ``a < b`` extended linearly to ``target``
    layers (each layer adds the same parameters, optimizer state, activations and work).

    ValueError when a byte figure falls from ``a`` to ``b`` layers: the compiler chose differently at the two
    depths, so the line says nothing about ``target`` (measured: 2d_fsdp on v4:2x2x1 kept 23.6 GB less
    temporary memory at 2 layers than at 1, which extended to XXL gave a negative peak)."""
    for name in ("arguments", "temporaries"):
        x, y = getattr(low, name), getattr(high, name)
        if x is not None and y is not None and y < x:
            raise ValueError(
                f"cannot extrapolate: {name} fall from {x:,} B ({a} layers) to {y:,} B ({b} layers); compile the "
                "full depth (--layers) instead"
            )

    def line(x, y):
        if x is None or y is None:
            return None
        value = y + (y - x) / (b - a) * (target - b)
        return type(y)(round(value)) if isinstance(y, int) else value

    fields = ("arguments", "outputs", "aliased", "temporaries", "code", "xla_flops", "model_flops")
    fields += ("expected_arguments", "state_bytes")
    return dataclasses.replace(
        high,
        compile_seconds=round(low.compile_seconds + high.compile_seconds, 1),
        **{f: line(getattr(low, f), getattr(high, f)) for f in fields},
    )
