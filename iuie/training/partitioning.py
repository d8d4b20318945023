"""Device mesh, logical-axis rules and the shardings of parameters, optimizer state and batches.

Three layers, as in maxtext's sharding guide:

1. **Physical mesh.** A ``jax.sharding.Mesh`` over two named axes, ``('data', 'model')`` (T5X's names), built
   from ``jax.devices()`` with a configurable shape in which ``-1`` stands for "the remaining devices". There
   is no third ``'fsdp'`` axis: like T5X, fully sharded data parallelism shards parameters over the ``data``
   axis (rule ``embed -> data``), so one mesh serves every preset and FSDP composes with model parallelism
   (preset ``2d_fsdp``) without a third dimension to size.
2. **Logical rules** (data, configurable from gin): ``(logical axis name, mesh axis or None)`` pairs in order of
   precedence, resolved by flax (``nn.logical_to_mesh_axes``): a logical axis takes the first rule whose mesh
   axis is still free in that array, so activations ``('batch', 'length', 'embed')`` under FSDP shard their
   batch over ``data`` and leave ``embed`` whole, while a kernel ``('embed', 'mlp')`` shards ``embed``.
3. **Per-tensor names**, chosen by the network: parameters are created with ``nn.with_logical_partitioning``
   and T5X's names (``embed, mlp, heads, kv, joined_kv, vocab, relpos_buckets``); activations are constrained
   with ``nn.with_logical_constraint`` (``batch, length, ...``), which takes effect inside ``Partitioner.
   context()``.

Presets (``PRESETS``), all on the same two-axis mesh:

==============  ===============  =================================================================
preset          default mesh     what is sharded
==============  ===============  =================================================================
data_parallel   (-1, 1)          batch over ``data``; parameters and optimizer state replicated
fsdp            (-1, 1)          batch over ``data``; parameters and optimizer state over ``data``
                                 along ``embed`` (ZeRO-3 style: XLA all-gathers weights per use)
2d              (-1, 2)          batch over ``data``; ``vocab, mlp, heads, joined_kv`` over ``model``
                                 (Megatron-style tensor parallelism, T5X's standard rules)
2d_fsdp         (-1, 2)          ``2d`` plus ``embed -> data`` (T5X ``parameter_partitioning_dims=2``)
==============  ===============  =================================================================

Parameter shardings follow the flax/maxtext pattern: ``jax.eval_shape`` of the initialiser gives boxed
abstract parameters, ``nn.get_partition_spec`` their logical specs, ``nn.logical_to_mesh_sharding`` the
``NamedSharding``s. Optimizer state cannot be boxed the same way, because Adafactor's factored second
moments (``v_row``/``v_col``) drop one dimension of their parameter; see ``optimizer_state_shardings`` for the
path-and-shape matching used instead.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import flax.linen as nn
import jax
import numpy as np
from jax.sharding import AxisType, Mesh, NamedSharding, PartitionSpec

MESH_AXES = ("data", "model")

MeshAxes = str | tuple[str, ...] | None
Rules = tuple[tuple[str, MeshAxes], ...]

# Logical axes that no preset shards: per-head width, sequence length, position buckets, and the names that
# scanned or stacked layers would use. Listing them keeps every logical name of the network explicit, which
# ``check_rules_cover`` relies on.
_ALWAYS_REPLICATED: Rules = (
    ("kv", None),
    ("length", None),
    ("relpos_buckets", None),
    ("abspos_buckets", None),
    ("layers", None),
    ("stack", None),
    ("mlp_activations", None),
)


@dataclasses.dataclass(frozen=True)
class Preset:
    """A named partitioning strategy: logical rules plus the mesh shape they are meant for."""

    rules: Rules
    mesh_shape: tuple[int, int]
    description: str


PRESETS: dict[str, Preset] = {
    "data_parallel": Preset(
        rules=(
            ("batch", "data"),
            ("vocab", None),
            ("embed", None),
            ("mlp", None),
            ("heads", None),
            ("joined_kv", None),
        )
        + _ALWAYS_REPLICATED,
        mesh_shape=(-1, 1),
        description="batch over data; parameters and optimizer state replicated",
    ),
    "fsdp": Preset(
        rules=(
            ("batch", "data"),
            ("embed", "data"),
            ("vocab", None),
            ("mlp", None),
            ("heads", None),
            ("joined_kv", None),
        )
        + _ALWAYS_REPLICATED,
        mesh_shape=(-1, 1),
        description="batch over data; parameters and optimizer state sharded over data along embed",
    ),
    "2d": Preset(
        rules=(
            ("batch", "data"),
            ("vocab", "model"),
            ("embed", None),
            ("mlp", "model"),
            ("heads", "model"),
            ("joined_kv", "model"),
        )
        + _ALWAYS_REPLICATED,
        mesh_shape=(-1, 2),
        description="batch over data; vocab, mlp, heads, joined_kv over model (T5X standard rules)",
    ),
    "2d_fsdp": Preset(
        rules=(
            ("batch", "data"),
            ("vocab", "model"),
            ("mlp", "model"),
            ("heads", "model"),
            ("joined_kv", "model"),
            ("embed", "data"),
        )
        + _ALWAYS_REPLICATED,
        mesh_shape=(-1, 2),
        description="2d plus embed over data (T5X parameter_partitioning_dims=2)",
    ),
}


def get_rules(preset: str, overrides: Sequence[Sequence[Any]] = ()) -> Rules:
    """The rules of ``preset``, with ``overrides`` taking precedence (flax uses the first matching rule)."""
    if preset not in PRESETS:
        raise ValueError(f"unknown partitioning preset {preset!r}; known: {sorted(PRESETS)}")
    extra = tuple((str(name), _as_mesh_axes(axes)) for name, axes in overrides)
    return extra + PRESETS[preset].rules


def _as_mesh_axes(axes: Any) -> MeshAxes:
    # gin and JSON give lists; PartitionSpec entries must be str, tuple or None.
    if axes is None or isinstance(axes, str):
        return axes
    return tuple(axes)


def resolve_mesh_shape(shape: Sequence[int], num_devices: int) -> tuple[int, ...]:
    """Replaces one ``-1`` by the number of devices left; checks that the product uses every device."""
    shape = tuple(int(s) for s in shape)
    if shape.count(-1) > 1:
        raise ValueError(f"mesh shape {shape} has more than one -1")
    known = math.prod(s for s in shape if s != -1)
    if known <= 0 or any(s == 0 or s < -1 for s in shape):
        raise ValueError(f"mesh shape {shape} must hold positive sizes and at most one -1")
    if -1 in shape:
        if num_devices % known:
            raise ValueError(f"mesh shape {shape} does not divide {num_devices} devices")
        shape = tuple(num_devices // known if s == -1 else s for s in shape)
    if math.prod(shape) != num_devices:
        raise ValueError(f"mesh shape {shape} uses {math.prod(shape)} devices, but {num_devices} are present")
    return shape


def make_mesh(
    shape: Sequence[int] = (-1, 1),
    devices: Sequence[Any] | None = None,
    axis_names: Sequence[str] = MESH_AXES,
) -> Mesh:
    """A mesh over ``devices`` (default: all of ``jax.devices()``), axes in ``Auto`` mode.

    ``Auto`` (not JAX's newer ``Explicit`` default of ``jax.make_mesh``) because shardings come from
    ``in_shardings``/``out_shardings`` and logical constraints, and XLA propagates the rest. Device order
    comes from ``jax.make_mesh`` (topology-aware on TPU: neighbouring devices share the inner axis); a
    multi-slice TPU job puts its slices along ``data`` (``create_hybrid_device_mesh``), so only data-parallel
    traffic crosses the slow data-centre network.
    """
    devices = list(jax.devices() if devices is None else devices)
    shape = resolve_mesh_shape(shape, len(devices))
    axis_types = (AxisType.Auto,) * len(shape)
    slices = {getattr(d, "slice_index", 0) for d in devices}
    if len(slices) > 1:
        from jax.experimental import mesh_utils

        num_slices = len(slices)
        if shape[0] % num_slices:
            raise ValueError(f"the data axis ({shape[0]}) must be a multiple of the {num_slices} slices")
        per_slice = (shape[0] // num_slices,) + tuple(shape[1:])
        dcn = (num_slices,) + (1,) * (len(shape) - 1)
        array = mesh_utils.create_hybrid_device_mesh(per_slice, dcn, devices)
        return Mesh(array, tuple(axis_names), axis_types=axis_types)
    return jax.make_mesh(shape, tuple(axis_names), axis_types=axis_types, devices=devices)


def _pad_spec(spec: PartitionSpec | None, ndim: int) -> tuple[MeshAxes, ...]:
    entries = tuple(spec) if spec is not None else ()
    return entries + (None,) * (ndim - len(entries))


def _path_key(path: Sequence[Any]) -> tuple[str, ...]:
    return tuple(str(entry) for entry in path)


def _leaf_names(tree: Any) -> set[str]:
    names: set[str] = set()
    for leaf in jax.tree.leaves(tree, is_leaf=lambda x: isinstance(x, nn.Partitioned)):
        if isinstance(leaf, nn.Partitioned):
            names.update(n for n in leaf.names if isinstance(n, str))
    return names


def check_rules_cover(abstract_boxed: Any, rules: Rules) -> None:
    """Raises if a parameter carries a logical axis name that no rule mentions.

    flax would silently replicate such an axis; a typo or a new axis name in the network should fail loudly
    instead of quietly costing memory.
    """
    known = {name for name, _ in rules}
    missing = sorted(_leaf_names(abstract_boxed) - known)
    if missing:
        raise ValueError(f"logical axes {missing} have no partitioning rule; add them to the rules")


def optimizer_state_shardings(optimizer: Any, abstract_params: Any, param_shardings: Any, mesh: Mesh) -> Any:
    """``NamedSharding``s for ``optimizer.init(params)`` that follow the parameters' shardings.

    ``jax.eval_shape(optimizer.init, params)`` gives the state's structure without allocating it. Every state
    leaf is matched to the parameter whose tree path is the longest suffix of the leaf's path (optax states
    nest the parameter tree under their own fields, e.g. ``[0].v_row['encoder']...['kernel']``), then:

    * same shape as the parameter (Adam's ``mu``/``nu``, Adafactor's unfactored ``v``): the parameter's spec;
    * one dimension fewer (Adafactor's factored ``v_row``/``v_col``): the parameter's spec without the reduced
      dimension, when the shape says which dimension that is; a square parameter leaves it ambiguous, and
      then the vector is replicated (it is ``1/d`` of the parameter's size, so replication costs nothing);
    * anything else (step counts, the ``(1,)`` placeholders Adafactor keeps for unused fields): replicated.

    This keeps the trainer free of optimizer-specific code: any optax transformation whose state mirrors
    the parameter tree is sharded like the parameters.
    """
    abstract_state = jax.eval_shape(optimizer.init, abstract_params)
    params_by_path = {}
    flat_params = jax.tree_util.tree_leaves_with_path(abstract_params)
    flat_shardings = jax.tree.leaves(param_shardings, is_leaf=lambda x: isinstance(x, NamedSharding))
    if len(flat_params) != len(flat_shardings):
        raise ValueError("param_shardings does not match abstract_params")
    for (path, leaf), sharding in zip(flat_params, flat_shardings):
        params_by_path[_path_key(path)] = (tuple(leaf.shape), _pad_spec(sharding.spec, len(leaf.shape)))
    replicated = NamedSharding(mesh, PartitionSpec())

    def choose(path, leaf) -> NamedSharding:
        key = _path_key(path)
        match = next((params_by_path[key[i:]] for i in range(len(key)) if key[i:] in params_by_path), None)
        if match is None:
            return replicated
        shape, spec = match
        leaf_shape = tuple(leaf.shape)
        if leaf_shape == shape:
            return NamedSharding(mesh, PartitionSpec(*spec))
        if len(leaf_shape) == len(shape) - 1:
            candidates = {
                spec[:k] + spec[k + 1 :] for k in range(len(shape)) if shape[:k] + shape[k + 1 :] == leaf_shape
            }
            if len(candidates) == 1:
                return NamedSharding(mesh, PartitionSpec(*candidates.pop()))
        return replicated

    return jax.tree_util.tree_map_with_path(choose, abstract_state)


@dataclasses.dataclass(frozen=True)
class Partitioner:
    """A mesh plus logical rules: everything the trainer needs to place arrays.

    Build it with ``Partitioner.create(preset, mesh_shape)`` (or from ``configs.PartitioningConfig`` with
    ``from_config``). Methods give ``NamedSharding`` trees for parameters, optimizer state and batches, turn
    host-local batches into global arrays, and open the context in which the network's logical activation
    constraints apply (``context()``, needed while tracing the step functions).
    """

    mesh: Mesh
    rules: Rules

    @classmethod
    def create(
        cls,
        preset: str = "data_parallel",
        mesh_shape: Sequence[int] | None = None,
        rule_overrides: Sequence[Sequence[Any]] = (),
        devices: Sequence[Any] | None = None,
    ) -> Partitioner:
        rules = get_rules(preset, rule_overrides)  # validates the name first
        shape = PRESETS[preset].mesh_shape if mesh_shape is None else mesh_shape
        if mesh_shape is None and shape[1] > 1:
            # The preset's default model-parallel width cannot exceed the devices present (1 CPU in tests).
            count = len(jax.devices() if devices is None else devices)
            shape = (-1, math.gcd(shape[1], count))
        return cls(mesh=make_mesh(shape, devices), rules=rules)

    @classmethod
    def from_config(cls, config: Any, devices: Sequence[Any] | None = None) -> Partitioner:
        """From a ``configs.PartitioningConfig`` (duck-typed: preset, mesh_shape, rule_overrides)."""
        return cls.create(config.preset, config.mesh_shape, config.rule_overrides, devices)

    @contextlib.contextmanager
    def context(self) -> Iterator[None]:
        """Mesh and rules for tracing: makes ``nn.with_logical_constraint`` in the network take effect."""
        with jax.set_mesh(self.mesh), nn.logical_axis_rules(self.rules):
            yield

    def logical_to_mesh(self, logical: Sequence[str | None]) -> PartitionSpec:
        return nn.logical_to_mesh_axes(tuple(logical), self.rules)

    def sharding(self, logical: Sequence[str | None]) -> NamedSharding:
        """The sharding of one array with the given logical axis names."""
        return NamedSharding(self.mesh, self.logical_to_mesh(logical))

    @property
    def replicated(self) -> NamedSharding:
        return NamedSharding(self.mesh, PartitionSpec())

    def param_specs(self, abstract_boxed: Any) -> Any:
        """Mesh ``PartitionSpec`` per parameter, from boxed (``nn.with_logical_partitioning``) parameters."""
        check_rules_cover(abstract_boxed, self.rules)
        return nn.logical_to_mesh(nn.get_partition_spec(abstract_boxed), self.rules)

    def param_shardings(self, abstract_boxed: Any) -> Any:
        """``NamedSharding`` per parameter, same tree as ``nn.meta.unbox(abstract_boxed)``."""
        check_rules_cover(abstract_boxed, self.rules)
        return nn.logical_to_mesh_sharding(nn.get_partition_spec(abstract_boxed), self.mesh, self.rules)

    def optimizer_state_shardings(self, optimizer: Any, abstract_params: Any, param_shardings: Any) -> Any:
        return optimizer_state_shardings(optimizer, abstract_params, param_shardings, self.mesh)

    @property
    def batch_mesh_axes(self) -> MeshAxes:
        """The mesh axes the ``batch`` logical axis is split over."""
        return self.logical_to_mesh(("batch",))[0]

    @property
    def data_parallel_size(self) -> int:
        """Number of batch shards: the global batch size must be a multiple of it."""
        axes = self.batch_mesh_axes
        if axes is None:
            return 1
        axes = (axes,) if isinstance(axes, str) else axes
        return math.prod(self.mesh.shape[a] for a in axes)

    def batch_sharding(self, ndim: int = 2) -> NamedSharding:
        """Leading (example) dimension over the batch axes, the others whole."""
        return NamedSharding(self.mesh, PartitionSpec(self.batch_mesh_axes, *([None] * (ndim - 1))))

    def batch_shardings(self, batch: Mapping[str, Any]) -> dict[str, NamedSharding]:
        """A sharding per feature of a batch (of arrays or ``ShapeDtypeStruct``s)."""
        return {name: self.batch_sharding(len(np.shape(value))) for name, value in batch.items()}

    def global_batch(self, local_batch: Mapping[str, Any], global_batch_size: int | None = None) -> dict:
        """Global ``jax.Array``s from this process's rows (``jax.make_array_from_process_local_data``).

        Each process passes its own consecutive slice of the global batch (seqio's ``ShardInfo`` gives each
        host its own shard). Without ``global_batch_size`` JAX infers it from the number of processes that
        hold distinct data.
        """
        out = {}
        for name, value in local_batch.items():
            value = np.asarray(value)
            shape = None if global_batch_size is None else (global_batch_size,) + value.shape[1:]
            out[name] = jax.make_array_from_process_local_data(self.batch_sharding(value.ndim), value, shape)
        return out
