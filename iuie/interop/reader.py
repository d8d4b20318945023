"""The one checkpoint reader: parameters from any checkpoint iuie knows, for every caller.

``read_params(path)`` is what ``iuie.train`` (``INITIAL_CHECKPOINT_PATH``), ``iuie.eval`` and ``iuie.infer``
(``CHECKPOINT_PATH``), ``iuie extract`` and ``iuie convert-checkpoint`` read weights with. ``path`` (relative
paths are read from the working directory) may be:

* an iuie training run: its ``MODEL_DIR``, the ``MODEL_DIR/checkpoints`` folder (the newest step is read),
  or one ``checkpoints/<step>`` folder. Only the ``params`` of the saved train state are read (partial
  restore: optimizer slots stay on disk);
* an exported iuie folder (``params/`` + ``iuie_config.json``, ``iuie convert-checkpoint --to iuie``);
* a Hugging Face ``T5ForConditionalGeneration`` folder (``config.json`` + safetensors / ``.bin``);
* a T5X ``checkpoint_<step>`` folder, its ``checkpoint`` file or a T5X model dir (msgpack or Orbax).

With ``abstract_params`` (``jax.ShapeDtypeStruct`` leaves with shardings: the model's parameter layout) the
parameters are checked against the model (names and shapes, one error listing the differences) and come
back as ``jax.Array`` in those dtypes and shardings; a training checkpoint is restored straight into them.
Without, they come back as host numpy arrays in the joined attention layout, with the network config fields
(``iuie.model.network.T5Config``) read from the folder's own config or off the shapes.

The training checkpoint layout is defined here (``STATE_ITEM``, ``DATA_ITEM``), and
``iuie.training.checkpoints`` writes it. :func:`trained_lengths` reads the input and target lengths a run
was trained with (``MODEL_DIR/run_info.json``, which ``iuie.train`` writes at start, else the operative
``config.gin`` that iuie and T5X both write), so that callers can read texts in windows the model knows.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
from typing import Any

import numpy as np

from iuie.interop import hf, t5x
from iuie.interop.hf import CheckpointError

# A training checkpoint: MODEL_DIR/checkpoints/<step>/{state,data}/ (iuie.training.checkpoints.Checkpointer).
CHECKPOINTS_DIR = "checkpoints"
STATE_ITEM = "state"
DATA_ITEM = "data"
STEP_DIR = re.compile(r"^\d+$")

# Written by iuie.train at start: {"task_feature_lengths": {"inputs": 256, "targets": 64}, ...}.
RUN_INFO_FILE = "run_info.json"
OPERATIVE_CONFIG_FILE = "config.gin"

TRAINING_FORMAT = "iuie-train"
FORMATS = ("hf", "t5x", "iuie")


@dataclasses.dataclass(frozen=True)
class Located:
    """Where a checkpoint's parameters are: the absolute ``path``, its ``format`` (``iuie-train``, ``iuie``,
    ``hf``, ``t5x``) and, for a training checkpoint, the ``state`` folder of the step read."""

    path: str
    format: str
    state_dir: str | None = None


@dataclasses.dataclass(frozen=True)
class Params:
    """What :func:`read_params` read: the parameters, the network config fields, and where from."""

    params: Any
    fields: dict[str, Any]
    source: Located


def training_state_dir(path: str) -> str | None:
    """The ``state`` folder of an iuie training checkpoint at ``path`` (a MODEL_DIR, its ``checkpoints/``
    folder: the newest step, or one step folder), else None."""
    path = os.path.abspath(path)
    nested = os.path.join(path, CHECKPOINTS_DIR)
    if os.path.isdir(nested):
        path = nested
    if os.path.isdir(os.path.join(path, STATE_ITEM)):
        return os.path.join(path, STATE_ITEM)
    if os.path.isdir(path):
        steps = [int(name) for name in os.listdir(path) if STEP_DIR.match(name)]
        for step in sorted(steps, reverse=True):
            candidate = os.path.join(path, str(step), STATE_ITEM)
            if os.path.isdir(candidate):
                return candidate
    return None


def detect_format(path: str) -> str:
    """``hf``, ``t5x`` or ``iuie`` for a (non-training) checkpoint folder, from the files in it."""
    if os.path.isfile(os.path.join(path, hf.CONFIG_FILE)):
        return "hf"
    if os.path.isfile(os.path.join(path, t5x.CONFIG_JSON)) or t5x.is_orbax_dir(os.path.join(path, t5x.PARAMS_DIR)):
        return "iuie"
    if t5x.is_orbax_dir(path):
        return "iuie"
    try:
        t5x.find_checkpoint_dir(path)
    except CheckpointError:
        raise CheckpointError(
            f"{path}: not an iuie training run ({CHECKPOINTS_DIR}/<step>/{STATE_ITEM}), a Hugging Face folder "
            f"(config.json), an iuie checkpoint ({t5x.CONFIG_JSON}, {t5x.PARAMS_DIR}/) or a T5X checkpoint"
        ) from None
    return "t5x"


def locate(path: str | os.PathLike, fmt: str = "auto") -> Located:
    """Where the parameters of ``path`` are (module docstring); FileNotFoundError for a missing path,
    ``CheckpointError`` for a folder that holds no checkpoint."""
    path = os.fspath(path) if path else ""
    if not path or not os.path.exists(path):
        raise FileNotFoundError(f"checkpoint {path!r} does not exist")
    path = os.path.abspath(path)  # Orbax reads absolute paths only
    if fmt in ("auto", TRAINING_FORMAT):
        state_dir = training_state_dir(path)
        if state_dir is not None:
            return Located(path, TRAINING_FORMAT, state_dir)
        if fmt == TRAINING_FORMAT:
            raise CheckpointError(f"{path}: no iuie training checkpoint ({CHECKPOINTS_DIR}/<step>/{STATE_ITEM})")
    if fmt != "auto" and fmt not in FORMATS:
        raise ValueError(f"unknown checkpoint format {fmt!r}; choose one of {', '.join(FORMATS)} or auto")
    return Located(path, detect_format(path) if fmt == "auto" else fmt)


def _training_params(state_dir: str, abstract_params: Any, dtype: Any) -> Any:
    """Only the ``params`` of a saved TrainState (partial restore): into ``abstract_params``' shardings, or,
    without them, as host numpy with the checkpoint's own shapes."""
    import jax
    import orbax.checkpoint as ocp

    checkpointer = ocp.PyTreeCheckpointer()
    if abstract_params is not None:
        target = {"params": abstract_params}
        restore_args = ocp.checkpoint_utils.construct_restore_args(target)
    else:
        metadata = checkpointer.metadata(state_dir)
        tree = getattr(metadata, "item_metadata", metadata)
        tree = getattr(tree, "tree", tree)
        if "params" not in tree:
            raise CheckpointError(f"{state_dir}: a train state without 'params' (it has {sorted(tree)})")
        dtype = np.float32 if dtype is None else dtype
        target = {"params": jax.tree.map(lambda m: jax.ShapeDtypeStruct(tuple(m.shape), dtype), tree["params"])}
        restore_args = jax.tree.map(lambda _: ocp.RestoreArgs(restore_type=np.ndarray, dtype=dtype), target)
    args = ocp.args.PyTreeRestore(item=target, restore_args=restore_args, partial_restore=True)
    return checkpointer.restore(state_dir, args=args)["params"]


def check_tree(params: Any, abstract_params: Any, source: str) -> None:
    """Same parameter names and shapes, or a ValueError listing the differences."""
    import jax

    def shapes(tree):
        # Arrays, ShapeDtypeStructs and Orbax's ArrayMetadata (a checkpoint read without its data) carry .shape.
        leaves = jax.tree_util.tree_leaves_with_path(tree)
        return {jax.tree_util.keystr(p): tuple(getattr(x, "shape", np.shape(x))) for p, x in leaves}

    want, got = shapes(abstract_params), shapes(params)
    problems = [f"missing {k}" for k in sorted(want.keys() - got.keys())]
    problems += [f"unexpected {k}" for k in sorted(got.keys() - want.keys())]
    common = sorted(want.keys() & got.keys())
    problems += [f"{k}: shape {got[k]}, model wants {want[k]}" for k in common if got[k] != want[k]]
    if problems:
        shown = "; ".join(problems[:8]) + (f"; ... ({len(problems)} in all)" if len(problems) > 8 else "")
        raise ValueError(f"{source}: parameters do not match the model: {shown}")


def place(params: Any, abstract_params: Any) -> Any:
    """Host (or device) arrays cast to ``abstract_params``' dtypes and put in their shardings."""
    import jax

    def put(value, abstract):
        if isinstance(value, jax.Array):
            value = value.astype(abstract.dtype) if value.dtype != abstract.dtype else value
            return jax.device_put(value, abstract.sharding)
        return jax.device_put(np.asarray(value, abstract.dtype), abstract.sharding)

    return jax.tree.map(put, params, abstract_params)


def _read_format(located: Located, dtype: Any) -> tuple[dict, dict[str, Any]]:
    path, fmt = located.path, located.format
    if fmt == "hf":
        return hf.load_hf_params(path, dtype=dtype)
    if fmt == "t5x":
        params = t5x.load_t5x(path, dtype=dtype)
        return params, t5x.infer_config_fields(params)
    params, fields = t5x.read_iuie_params(path, dtype=dtype)
    return hf.with_attention_layout(params, "joined"), fields


def read_params(
    path: str | os.PathLike, abstract_params: Any = None, *, fmt: str = "auto", dtype: Any = np.float32
) -> Params:
    """The parameters of any checkpoint (module docstring).

    Args:
      path: the checkpoint; relative to the working directory if not absolute.
      abstract_params: the model's parameter layout (shapes, dtypes, shardings), or None for host numpy.
      fmt: ``auto`` or one of ``iuie-train``, ``hf``, ``t5x``, ``iuie``.
      dtype: host dtype without ``abstract_params`` (None keeps the stored one).
    """
    located = locate(path, fmt)
    if located.format == TRAINING_FORMAT:
        params = _training_params(located.state_dir, abstract_params, dtype)
        return Params(params, t5x.infer_config_fields(params), located)
    params, fields = _read_format(located, None if abstract_params is not None else dtype)
    if abstract_params is not None:
        check_tree(params, abstract_params, located.path)
        params = place(params, abstract_params)
    return Params(params, fields, located)


def read_checkpoint(path: str, fmt: str = "auto", *, dtype: Any = np.float32) -> tuple[dict, dict[str, Any]]:
    """``(params, config fields)`` as host numpy in the joined attention layout (:func:`read_params`)."""
    read = read_params(path, fmt=fmt, dtype=dtype)
    return read.params, read.fields


# --------------------------------------------------------------------------------------------------------
# The lengths a run was trained with
# --------------------------------------------------------------------------------------------------------

_T5X_STEP_DIR = re.compile(r"^checkpoint_\d+$")
_GIN_MACRO = re.compile(r"^([A-Z_][A-Z0-9_]*)\s*=\s*\\?\s*(.+?)\s*$", re.M)
_GIN_DICT = r"(\{[^}]*\})"


def _run_dirs(path: str) -> list[str]:
    """The folder of ``path`` and, only where the layout says so, the run folders above it: a step folder
    (``<step>``, T5X's ``checkpoint_<step>``) sits in its run (or in ``checkpoints/``), and ``checkpoints/``
    in its MODEL_DIR. A plain folder is not walked up: a parent's config.gin may belong to something else."""
    path = os.path.abspath(path)
    if os.path.isfile(path):  # T5X's checkpoint_<step>/checkpoint file
        path = os.path.dirname(path)
    out = [path]
    name = os.path.basename(path)
    if STEP_DIR.match(name) or _T5X_STEP_DIR.match(name):
        path = os.path.dirname(path)
        out.append(path)
        name = os.path.basename(path)
    if name == CHECKPOINTS_DIR:
        out.append(os.path.dirname(path))
    return out


def _lengths_of(value: Any, source: str) -> dict[str, int]:
    if not isinstance(value, dict) or not isinstance(value.get("inputs"), int) or value["inputs"] < 1:
        raise CheckpointError(f"{source}: task_feature_lengths {value!r} has no positive integer 'inputs'")
    return {str(k): int(v) for k, v in value.items() if isinstance(v, int)}


def _lengths_from_gin(text: str, source: str) -> dict[str, int] | None:
    """``TASK_FEATURE_LENGTHS`` of an operative config, else a ``...task_feature_lengths = {...}`` binding (a
    train-scoped one first); values may be literals or macros (``%INPUT_LENGTH``) bound in the same file."""
    macros = {name: value for name, value in _GIN_MACRO.findall(text)}
    found = re.search(r"^TASK_FEATURE_LENGTHS\s*=\s*\\?\s*" + _GIN_DICT, text, re.M)
    if found is None:
        bindings = re.findall(r"^([\w./]*task_feature_lengths)\s*=\s*\\?\s*" + _GIN_DICT, text, re.M)
        bindings.sort(key=lambda b: "train" not in b[0])
        if not bindings:
            return None
        literal = bindings[0][1]
    else:
        literal = found.group(1)
    lengths: dict[str, Any] = {}
    for key, value in re.findall(r"['\"](\w+)['\"]\s*:\s*(%?[\w.]+)", literal):
        seen = set()
        while value.startswith("%") and value[1:] in macros and value not in seen:
            seen.add(value)
            value = macros[value[1:]]
        lengths[key] = int(value) if value.isdigit() else value
    return _lengths_of(lengths, source)


def read_trained_lengths(path: str | os.PathLike) -> tuple[dict[str, int], str] | None:
    """``(task feature lengths, the file they were read from)`` of the training run ``path`` belongs to (a
    MODEL_DIR, its ``checkpoints/`` or a step folder; a T5X model dir or ``checkpoint_<step>``), or None when
    nothing records them (a Hugging Face folder, an export). ``run_info.json`` first, else ``config.gin``.
    A file that exists but does not say is a ``CheckpointError`` naming it."""
    for folder in _run_dirs(os.fspath(path)):
        info = os.path.join(folder, RUN_INFO_FILE)
        if os.path.isfile(info):
            try:
                with open(info, encoding="utf-8") as f:
                    obj = json.load(f)
            except (OSError, ValueError) as e:
                raise CheckpointError(f"{info}: not readable JSON ({e})") from None
            if not isinstance(obj, dict) or "task_feature_lengths" not in obj:
                raise CheckpointError(f"{info}: no 'task_feature_lengths' field")
            return _lengths_of(obj["task_feature_lengths"], info), info
        gin = os.path.join(folder, OPERATIVE_CONFIG_FILE)
        if os.path.isfile(gin):
            with open(gin, encoding="utf-8") as f:
                lengths = _lengths_from_gin(f.read(), gin)
            if lengths is not None:
                return lengths, gin
    return None


def trained_lengths(path: str | os.PathLike) -> dict[str, int] | None:
    """The task feature lengths (``{"inputs": 256, "targets": 64}``) the run at ``path`` was trained with, or
    None (:func:`read_trained_lengths`)."""
    found = read_trained_lengths(path)
    return found[0] if found is not None else None


def write_run_info(model_dir: str, task_feature_lengths: Any, **fields: Any) -> str:
    """Writes ``MODEL_DIR/run_info.json`` (the lengths, plus ``fields``); :func:`trained_lengths` reads it."""
    os.makedirs(model_dir, exist_ok=True)
    path = os.path.join(model_dir, RUN_INFO_FILE)
    obj = {"task_feature_lengths": {str(k): int(v) for k, v in dict(task_feature_lengths).items()}, **fields}
    with open(path, "w", encoding="utf-8") as f:
        json.dump(obj, f, indent=1)
        f.write("\n")
    return path
