"""Shims that let google-research/t5x, installed from a source checkout, run iuie's Tasks on today's JAX.

T5X is not on PyPI (DESIGN.md, decision 1): users install it from a checkout with ``pip install --no-deps
-e`` and PyPI's releases of its dependencies. With today's JAX and PyPI, importing T5X's binaries fails on
names that no longer exist or were never published, none of which concern iuie's Tasks, Mixtures or
metrics, and gin trips over namespace packages. Nothing here edits T5X or gin; each shim fills a missing
name or wraps one function, and only where it is missing:

``airio``
    ``t5x/utils.py`` does ``import airio.core as airio`` and only uses it in ``isinstance`` checks
    (``airio.Task``, ``airio.Mixture``, ``airio.DatasetProviderBase``, ``airio.AirIODatasetIterator``) and
    behind them (``airio.dataset_providers.get_vocabularies``). AirIO is not on PyPI. The stub defines those
    classes, which no object is ever an instance of, so every SeqIO Task takes T5X's SeqIO path. The stub
    is installed only when no real ``airio`` can be imported.
``jax.experimental.pjit.PartitionSpec``, ``jax.tree_map``
    PyPI's only ``jestimator`` release (0.3.3, imported by ``t5x/optimizers.py``) imports both names, which
    JAX has since removed. They are aliased to ``jax.sharding.PartitionSpec`` and ``jax.tree.map``, only
    when missing. (iuie's own code never uses them: DESIGN.md, decision 2.)
``gin.resource_reader._parse_config_path`` (gin-config 0.5.0)
    Not T5X's, but in its path: gin looks a gin file up as a package resource, and crashes
    (``TypeError``, not "not found") when the folder is a namespace package, which has no ``origin``.
    ``t5x_configs/`` is one whenever a source checkout of iuie is on ``sys.path`` (``PYTHONPATH``) and the
    binary runs from another folder. The patched function reads such a package from its search locations.
``tensorboard``
    ``t5x/checkpoints.py`` imports it; it is an ordinary PyPI package to install, not a shim.

How they get applied, from least to most invasive:

1. ``iuie t5x train|eval|infer ARGS`` (:mod:`iuie.commands.t5x_launcher`) installs them, then runs
   ``t5x.train`` / ``t5x.eval`` / ``t5x.infer`` as ``__main__`` with ARGS unchanged.
2. ``iuie t5x install-hook`` writes a ``.pth`` file into the environment's site-packages so that plain
   ``python -m t5x.train ...`` works: at start-up it only registers an import hook (no JAX import); the
   shims are installed when something first imports ``t5x``. ``iuie t5x remove-hook`` deletes it.
3. Importing this module (``t5x_configs/t5x/iuie.gin`` does, with ``from iuie import t5x_compat``)
   installs the shims at once when ``t5x`` is already imported, else registers the same import hook. A
   gin import runs after T5X's binaries have imported ``t5x.utils``, so it cannot replace 1 or 2 for the
   import-time shims; it makes the configs self-describing and covers T5X's lazily imported modules.

The module also holds :func:`data_parallel_partitioner` (data parallelism on CPU, where T5X's own mesh puts
every device on the model axis), and, once installed, puts iuie's config root on gin's search path
(:func:`install_config_search_path`), so that ``include 't5x_configs/t5x/...'`` lines resolve even when
the top gin file was given as an absolute path. The vocabulary helpers the experiment gins call live in
:mod:`iuie.pipeline.vocab` (``checked_vocabulary``, ``vocabulary_size``).
"""

from __future__ import annotations

import importlib.abc
import importlib.util
import os
import sys
import sysconfig
import types

# The T5X commit these shims were written and tested against (see docs/t5x.md).
TESTED_T5X_COMMIT = "cc342d419ec3e3e9c4bf1df33c82330cafdc1e16"

PTH_FILE = "iuie_t5x_compat.pth"
# One line, executed by site.py at interpreter start. It must stay cheap and must never break an
# interpreter in which iuie has since been uninstalled.
PTH_LINE = "import sys; exec('try:\\n import iuie.t5x_compat\\nexcept Exception:\\n pass')\n"

_APPLIED: list[str] = []


# --------------------------------------------------------------------------------------------------------
# The shims
# --------------------------------------------------------------------------------------------------------


def _airio_stub() -> dict[str, types.ModuleType]:
    """``airio``, ``airio.core`` and ``airio.core.dataset_providers`` with the names t5x/utils.py uses."""
    top = types.ModuleType("airio")
    core = types.ModuleType("airio.core")
    providers = types.ModuleType("airio.core.dataset_providers")
    doc = (
        "iuie's stand-in for AirIO (not on PyPI): T5X only checks isinstance against these classes; "
        "iuie's SeqIO Tasks are never instances. See iuie.t5x_compat."
    )
    for module in (top, core, providers):
        module.__doc__ = doc
        module.__path__ = []  # a package, so that 'import airio.core' works
        module.IUIE_STUB = True

    class DatasetProviderBase:
        """Never instantiated: marks AirIO datasets in T5X's isinstance checks."""

        def __init__(self, *args, **kwargs):
            raise NotImplementedError("airio is stubbed by iuie.t5x_compat; install AirIO to use AirIO Tasks")

    class Task(DatasetProviderBase):
        pass

    class Mixture(DatasetProviderBase):
        pass

    class AirIODatasetIterator:
        pass

    def get_vocabularies(*args, **kwargs):
        raise NotImplementedError("airio is stubbed by iuie.t5x_compat; install AirIO to use AirIO Tasks")

    for cls in (DatasetProviderBase, Task, Mixture, AirIODatasetIterator):
        cls.__module__ = "airio.core"
        setattr(core, cls.__name__, cls)
        setattr(providers, cls.__name__, cls)
    providers.get_vocabularies = get_vocabularies
    core.dataset_providers = providers
    top.core = core
    return {"airio": top, "airio.core": core, "airio.core.dataset_providers": providers}


def install_airio_stub() -> bool:
    """Installs the AirIO stub unless a real ``airio`` is importable; True when it installed it."""
    if "airio" in sys.modules or importlib.util.find_spec("airio") is not None:
        return False
    sys.modules.update(_airio_stub())
    return True


def install_jax_aliases() -> list[str]:
    """Aliases the JAX names PyPI's jestimator imports, where JAX no longer has them; returns those set."""
    import jax
    import jax.experimental.pjit as pjit_module

    applied = []
    if not hasattr(pjit_module, "PartitionSpec"):
        pjit_module.PartitionSpec = jax.sharding.PartitionSpec
        applied.append("jax.experimental.pjit.PartitionSpec")
    try:
        jax.tree_map  # noqa: B018  (a removed name raises AttributeError through jax's __getattr__)
    except AttributeError:
        jax.tree_map = jax.tree.map
        applied.append("jax.tree_map")
    return applied


def install_gin_namespace_packages() -> bool:
    """Lets gin's package-resource lookup read namespace packages; True when it patched gin."""
    from gin import resource_reader

    original = resource_reader._parse_config_path
    if getattr(original, "iuie_patched", False):
        return False

    def parse_config_path(config_path: str) -> str:
        head, filename = os.path.split(config_path)
        spec = importlib.util.find_spec(head.replace("/", "."))
        if spec is None or spec.origin is not None:
            return original(config_path)
        # A namespace package: no __init__.py to take the folder from; use its search locations.
        locations = list(spec.submodule_search_locations or ())
        if not locations:
            raise ValueError("Package not found", head)
        for location in locations:
            if os.path.isfile(os.path.join(location, filename)):
                return os.path.join(location, filename)
        return os.path.join(locations[0], filename)

    parse_config_path.iuie_patched = True
    resource_reader._parse_config_path = parse_config_path
    return True


def config_root() -> str:
    """The folder holding ``t5x_configs/``: iuie's package folder when installed (the configs ship as the
    package ``iuie.t5x_configs``), else the source checkout's root (an editable install or a clone)."""
    package = os.path.dirname(os.path.abspath(__file__))
    for root in (package, os.path.dirname(package)):
        if os.path.isdir(os.path.join(root, "t5x_configs")):
            return root
    raise FileNotFoundError(f"no t5x_configs/ folder in {package} or its parent: reinstall iuie")


def install_config_search_path() -> bool:
    """Appends :func:`config_root` to gin's search path, so that ``include 't5x_configs/t5x/...'`` resolves
    however the top file was named (relative, or absolute from any working directory); True when added.

    The experiment gins of ``t5x_configs/t5x/`` import this module before their first include, and gin runs
    imports in order while it parses, so the path is in place before the includes are looked up.
    """
    import gin

    root = config_root()
    if root in gin.config._LOCATION_PREFIXES:  # noqa: SLF001 (gin has no public reader of its search path)
        return False
    gin.add_config_file_search_path(root)
    return True


def install() -> list[str]:
    """Installs every shim that this environment needs (idempotent); returns the names installed so far."""
    if install_airio_stub():
        _APPLIED.append("airio")
    _APPLIED.extend(install_jax_aliases())
    if install_gin_namespace_packages():
        _APPLIED.append("gin namespace packages")
    if install_config_search_path():
        _APPLIED.append("gin search path")
    return list(_APPLIED)


def applied() -> list[str]:
    """The shims installed in this process."""
    return list(_APPLIED)


# --------------------------------------------------------------------------------------------------------
# Installing them when T5X is imported
# --------------------------------------------------------------------------------------------------------


class _T5XImportHook(importlib.abc.MetaPathFinder):
    """Installs the shims the first time ``t5x`` is imported, then lets the normal finders import it."""

    def find_spec(self, fullname, path=None, target=None):
        if fullname == "t5x":
            uninstall_import_hook()
            install()
        return None


def install_import_hook() -> None:
    """Registers :class:`_T5XImportHook` (cheap: imports nothing)."""
    if not any(isinstance(f, _T5XImportHook) for f in sys.meta_path):
        sys.meta_path.insert(0, _T5XImportHook())


def uninstall_import_hook() -> None:
    sys.meta_path[:] = [f for f in sys.meta_path if not isinstance(f, _T5XImportHook)]


def site_packages() -> str:
    """The running environment's site-packages (where ``pip install`` put iuie)."""
    return sysconfig.get_paths()["purelib"]


def write_pth(directory: str | None = None) -> str:
    """Writes :data:`PTH_FILE` so every interpreter of this environment gets the import hook; returns it."""
    path = os.path.join(directory or site_packages(), PTH_FILE)
    with open(path, "w", encoding="utf-8") as f:
        f.write(PTH_LINE)
    return path


def remove_pth(directory: str | None = None) -> str | None:
    """Deletes :data:`PTH_FILE`; returns its path when there was one."""
    path = os.path.join(directory or site_packages(), PTH_FILE)
    if os.path.exists(path):
        os.remove(path)
        return path
    return None


# --------------------------------------------------------------------------------------------------------
# Gin helpers for the experiment configs
# --------------------------------------------------------------------------------------------------------


def data_parallel_partitioner(num_partitions: int = 1, logical_axis_rules=None, **kwargs):
    """A T5X ``PjitPartitioner`` whose mesh is ``(devices / num_partitions) x num_partitions``.

    T5X's CPU mesh (``t5x.partitioning.get_cpu_mesh``) is ``(process_count, local_device_count)`` and ignores
    ``num_partitions``: in one process every (fake) CPU device lands on the ``model`` axis, so batches are
    replicated, not split. This partitioner builds the mesh T5X builds on GPUs instead: ``data`` axis =
    devices / ``num_partitions``, ``model`` axis = ``num_partitions``, devices in process order. Other
    arguments go to ``PjitPartitioner`` (default rules: ``standard_logical_axis_rules()``). Use it from gin
    (``t5x_configs/t5x/cpu_data_parallel.gin``); nothing in T5X changes.
    """
    import jax
    import numpy as np
    from t5x import partitioning

    if logical_axis_rules is None:
        logical_axis_rules = partitioning.standard_logical_axis_rules()
    partitioner = partitioning.PjitPartitioner(
        num_partitions=num_partitions, logical_axis_rules=logical_axis_rules, **kwargs
    )
    devices = sorted(jax.devices(), key=lambda d: (d.process_index, d.id))
    if len(devices) % num_partitions:
        raise ValueError(f"num_partitions={num_partitions} does not divide the {len(devices)} devices")
    mesh = jax.sharding.Mesh(np.asarray(devices, dtype=object).reshape(-1, num_partitions), ("data", "model"))
    # PjitPartitioner.mesh is a cached property: filling its cache replaces T5X's default mesh.
    partitioner.__dict__["mesh"] = mesh
    return partitioner


def missing_requirements() -> list[str]:
    """What keeps ``t5x`` from importing here, even with the shims (empty when it imports)."""
    install()
    try:
        import t5x.eval  # noqa: F401
        import t5x.infer  # noqa: F401
        import t5x.train  # noqa: F401
    except ImportError as e:
        return [f"{type(e).__name__}: {e}"]
    return []


# Importing this module: shims now inside a T5X process (a gin file's import), else the import hook.
if "t5x" in sys.modules:
    install()
else:
    install_import_hook()
