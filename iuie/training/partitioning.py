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

Presets are gin data (DESIGN decision 2): ``gin/partitioning/<name>.gin`` binds ``configs.PartitioningConfig.
{preset, rules, default_mesh_shape}``. Adding ``--gin_file=partitioning/fsdp.gin`` to a run binds them; code
that names a preset (``Partitioner.create('fsdp')``, ``PRESETS['fsdp']``) reads the same file through
:func:`load_preset`, which validates it. A new preset is one new file. All share the two-axis mesh:

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
import functools
import math
import os
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import flax.linen as nn
import jax
import numpy as np
from jax.sharding import AxisType, Mesh, NamedSharding, PartitionSpec

MESH_AXES = ("data", "model")

MeshAxes = str | tuple[str, ...] | None
Rules = tuple[tuple[str, MeshAxes], ...]

# Every logical axis name the network uses (parameters and activation constraints). A preset file must give
# each one a rule, so that a typo or a forgotten name fails when the preset is loaded, not as silent
# replication of a large array.
LOGICAL_AXES = (
    "batch",
    "vocab",
    "embed",
    "mlp",
    "heads",
    "joined_kv",
    "kv",
    "length",
    "relpos_buckets",
    "abspos_buckets",
    "layers",
    "stack",
    "mlp_activations",
)
PRESET_NAMES = ("data_parallel", "fsdp", "2d", "2d_fsdp")
# The configurable whose bindings a preset file holds (gin/partitioning/<name>.gin).
_PRESET_SELECTOR = "configs.PartitioningConfig"


class PresetError(ValueError):
    """A partitioning preset that does not exist or whose gin file is malformed."""


@dataclasses.dataclass(frozen=True)
class Preset:
    """A named partitioning strategy: logical rules plus the mesh shape they are meant for.

    The data lives in ``gin/partitioning/<name>.gin`` (DESIGN decision 2: rules are gin data); this class is
    what :func:`load_preset` reads from such a file.
    """

    name: str
    rules: Rules
    mesh_shape: tuple[int, int]
    description: str
    path: str = ""


def preset_path(name: str) -> str:
    """``gin/partitioning/<name>.gin`` in iuie's config roots (checkout or installed package)."""
    from iuie.runtime import gin_flags

    for root in gin_flags.config_roots():
        path = os.path.join(root, "partitioning", f"{name}.gin")
        if os.path.isfile(path):
            return path
    raise PresetError(f"unknown partitioning preset {name!r}; known: {sorted(available_presets())}")


def available_presets() -> list[str]:
    """The preset names that have a file in ``gin/partitioning/``."""
    from iuie.runtime import gin_flags

    names = set()
    for root in gin_flags.config_roots():
        folder = os.path.join(root, "partitioning")
        if os.path.isdir(folder):
            names.update(f[: -len(".gin")] for f in os.listdir(folder) if f.endswith(".gin"))
    return sorted(names)


def validate_rules(rules: Sequence[Sequence[Any]], source: str, *, complete: bool = True) -> Rules:
    """Rules as a tuple of ``(logical name, mesh axes)`` pairs, or a one-line error naming ``source``.

    Checks: each rule is a pair; the name is a string; the mesh axes are None, one of :data:`MESH_AXES` or
    a tuple of them; with ``complete`` every name of :data:`LOGICAL_AXES` has a rule.
    """
    out = []
    for i, rule in enumerate(rules):
        if not isinstance(rule, (list, tuple)) or len(rule) != 2 or not isinstance(rule[0], str):
            raise PresetError(f"{source}: rule {i} is {rule!r}, expected ('logical axis', mesh axis or None)")
        name, axes = rule[0], _as_mesh_axes(rule[1])
        for axis in (axes,) if axes is None or isinstance(axes, str) else axes:
            if axis is not None and axis not in MESH_AXES:
                raise PresetError(f"{source}: rule {i} ({name!r}) names mesh axis {axis!r}; the mesh has {MESH_AXES}")
        out.append((name, axes))
    if complete:
        missing = [name for name in LOGICAL_AXES if name not in {n for n, _ in out}]
        if missing:
            raise PresetError(f"{source}: no rule for the logical axes {missing}")
    return tuple(out)


def _description(text: str) -> str:
    first = text.splitlines()[0] if text else ""
    return first.lstrip("#").strip()


@functools.cache
def load_preset(name: str) -> Preset:
    """Reads ``gin/partitioning/<name>.gin`` with gin's own parser (without touching the global gin config)
    and validates it: ``configs.PartitioningConfig.{preset, rules, default_mesh_shape}``."""
    from gin import config_parser

    path = preset_path(name)
    with open(path, encoding="utf-8") as f:
        text = f.read()

    class _LiteralsOnly(config_parser.ParserDelegate):
        def configurable_reference(self, scoped_name, evaluate):
            raise PresetError(f"{path}: a preset holds literal rules only, not @{scoped_name}")

        def macro(self, macro_name):
            raise PresetError(f"{path}: a preset holds literal rules only, not %{macro_name}")

    values = {}
    for statement in config_parser.ConfigParser(text, _LiteralsOnly()):
        if isinstance(statement, config_parser.BindingStatement) and statement.selector == _PRESET_SELECTOR:
            values[statement.arg_name] = statement.value
    for key in ("preset", "rules", "default_mesh_shape"):
        if key not in values:
            raise PresetError(f"{path}: {_PRESET_SELECTOR}.{key} is not bound")
    if values["preset"] != name:
        raise PresetError(f"{path}: binds preset {values['preset']!r}, but the file is named {name!r}")
    shape = tuple(int(s) for s in values["default_mesh_shape"])
    if len(shape) != len(MESH_AXES):
        raise PresetError(f"{path}: default_mesh_shape {shape} must have {len(MESH_AXES)} entries {MESH_AXES}")
    return Preset(name, validate_rules(values["rules"], path), shape, _description(text), path)


class _Presets(Mapping):
    """``PRESETS[name]``: the presets of ``gin/partitioning/``, read on first use."""

    def __getitem__(self, name: str) -> Preset:
        return load_preset(name)

    def __iter__(self) -> Iterator[str]:
        return iter(available_presets())

    def __len__(self) -> int:
        return len(available_presets())

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name in available_presets()


PRESETS: Mapping[str, Preset] = _Presets()


def get_rules(
    preset: str, overrides: Sequence[Sequence[Any]] = (), rules: Sequence[Sequence[Any]] | None = None
) -> Rules:
    """The rules of ``preset`` (or the explicit ``rules``, e.g. bound by a preset gin file), with
    ``overrides`` taking precedence (flax uses the first matching rule)."""
    base = load_preset(preset).rules if rules is None else validate_rules(rules, f"preset {preset!r}")
    extra = validate_rules(overrides, "rule_overrides", complete=False)
    return extra + base


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
    if _split_cores(devices):
        # libtpu's compile-only v4 topologies list each chip's two TensorCores as devices, which jax's
        # topology-aware ordering refuses ("megacore" mode expected). Only `iuie plan` sees such devices (a
        # real v4 runs one device per chip), and its memory figures do not depend on the order: take them as
        # listed.
        array = np.asarray(devices, dtype=object).reshape(shape)
        return Mesh(array, tuple(axis_names), axis_types=axis_types)
    return jax.make_mesh(shape, tuple(axis_names), axis_types=axis_types, devices=devices)


def _split_cores(devices: Sequence[Any]) -> bool:
    """Whether these are TPU v4 devices listed per TensorCore (two per chip) rather than per chip."""
    kind = str(getattr(devices[0], "device_kind", "")) if devices else ""
    return kind.startswith("TPU v4") and any(getattr(d, "core_on_chip", 0) for d in devices)


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
        *,
        rules: Sequence[Sequence[Any]] | None = None,
        default_mesh_shape: Sequence[int] | None = None,
    ) -> Partitioner:
        """A partitioner for ``preset`` (its rules and default mesh from ``gin/partitioning/<preset>.gin``),
        or for explicit ``rules`` / ``default_mesh_shape`` (what a preset gin file binds)."""
        all_rules = get_rules(preset, rule_overrides, rules)  # validates the name first
        if mesh_shape is not None:
            shape = tuple(mesh_shape)
        else:
            shape = tuple(default_mesh_shape) if default_mesh_shape is not None else load_preset(preset).mesh_shape
            if shape[1] > 1:
                # The preset's default model-parallel width cannot exceed the devices present (1 CPU in tests).
                count = len(jax.devices() if devices is None else devices)
                shape = (-1, math.gcd(shape[1], count))
        return cls(mesh=make_mesh(shape, devices), rules=all_rules)

    @classmethod
    def from_config(cls, config: Any, devices: Sequence[Any] | None = None) -> Partitioner:
        """From a ``configs.PartitioningConfig`` (duck-typed: preset, mesh_shape, rule_overrides, and the
        rules / default_mesh_shape a preset gin file binds; None falls back to the preset's file)."""
        rules = getattr(config, "rules", None)
        if rules is not None and config.preset in available_presets():
            bound, own = validate_rules(rules, "configs.PartitioningConfig.rules"), load_preset(config.preset).rules
            if bound != own:
                raise PresetError(
                    f"configs.PartitioningConfig.rules differ from those of preset {config.preset!r} "
                    f"({preset_path(config.preset)}): switch presets by adding --gin_file=partitioning/<name>.gin "
                    "(not by rebinding preset), change single rules with rule_overrides, or give your own rules a "
                    "preset name of their own"
                )
        return cls.create(
            config.preset,
            config.mesh_shape,
            config.rule_overrides,
            devices,
            rules=rules,
            default_mesh_shape=getattr(config, "default_mesh_shape", None),
        )

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
