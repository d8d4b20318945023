"""T5X checkpoints and Orbax checkpoints of iuie params, read into the iuie parameter tree.

T5X's on-disk format (``t5x/checkpoints.py``, ``Checkpointer.save`` and ``load_t5x_checkpoint``), which the
public Flan-T5 checkpoints use (``gs://t5-data/pretrained_models/t5x/flan_t5_<size>/checkpoint_<step>``,
step 1198000 for small, 1184000 base, 1164000 large, 1138000 xl, 1114000 xxl; copy such a folder to local disk yourself, e.g. with ``gsutil -m cp -r``: nothing here
downloads):

* ``checkpoint_<step>/checkpoint`` is a msgpack file written by ``flax.serialization.to_bytes`` of
  ``{'version': 3, 'optimizer': state_dict}`` (a version 0 file holds the state dict itself). The state dict
  is the train state's: ``{'target': params, 'state': {'step': ..., 'param_states': {...}}}``; only
  ``target`` (the model's ``'params'`` collection) is read here, optimizer slots are skipped.
* A leaf written to TensorStore is replaced in the msgpack by its ``ts.Spec`` as JSON: ``{'driver': 'zarr',
  'dtype': ..., 'kvstore': {'driver': 'file', 'path': 'target.encoder.layers_0.attention.query.kernel'},
  'metadata': {'chunks', 'compressor', 'shape', ...}}``. The path is relative to the checkpoint folder (the
  leaf's ``/``-joined name with ``.`` for ``/``). Checkpoints written to GCS carry ``'driver': 'gcs'`` with a
  dummy bucket (and, from tensorstore < 0.1.14, the path beside ``kvstore`` rather than in it); like T5X, a
  local reader turns those into the ``file`` driver. Other leaves are stored in the msgpack itself.
* Newer T5X writes Orbax checkpoints instead: ``checkpoint_<step>/state/`` is an Orbax PyTree of the same
  state dict. Both are read.

T5X keeps attention kernels joined, ``(embed, heads*head_dim)``, which is the iuie default layout.

The iuie format (``iuie convert-checkpoint ... --to iuie``) is a folder with ``params/``, an Orbax checkpoint
of the param tree (``orbax.checkpoint.StandardCheckpointer``), and ``iuie_config.json`` beside it.
"""

from __future__ import annotations

import copy
import json
import os
import re
from collections.abc import Mapping
from typing import Any

import numpy as np

from iuie.interop.hf import (
    GATED_GELU_ACTIVATIONS,
    CheckpointError,
    cast_params,
    config_to_fields,
    plain_params,
    with_attention_layout,
)

CHECKPOINT_FILE = "checkpoint"
ORBAX_STATE_DIR = "state"
PARAMS_DIR = "params"
CONFIG_JSON = "iuie_config.json"
_STEP_DIR = re.compile(r"^checkpoint_(\d+)$")
# T5X's RelativePositionBiases hard-codes this; the table's shape cannot tell it.
T5X_RELATIVE_ATTENTION_MAX_DISTANCE = 128


# --------------------------------------------------------------------------------------------------------
# Finding the checkpoint.


def _latest_step_dir(model_dir: str) -> str | None:
    steps = [
        (int(m.group(1)), name)
        for name in os.listdir(model_dir)
        if (m := _STEP_DIR.match(name)) and os.path.isdir(os.path.join(model_dir, name))
    ]
    return os.path.join(model_dir, max(steps)[1]) if steps else None


def find_checkpoint_dir(path: str) -> str:
    """The ``checkpoint_<step>`` folder for ``path``: that folder, its ``checkpoint`` file, or a model dir
    (whose latest step is taken), as T5X's ``find_checkpoint`` accepts."""
    if os.path.isfile(path):
        return os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(path):
        raise CheckpointError(f"{path}: no such T5X checkpoint (expected a checkpoint_<step> folder)")
    if os.path.isfile(os.path.join(path, CHECKPOINT_FILE)) or os.path.isdir(os.path.join(path, ORBAX_STATE_DIR)):
        return path
    latest = _latest_step_dir(path)
    if latest is None:
        raise CheckpointError(
            f"{path}: neither a T5X checkpoint folder (no '{CHECKPOINT_FILE}' file or "
            f"'{ORBAX_STATE_DIR}/' folder) nor a model dir with checkpoint_<step> folders"
        )
    return latest


# --------------------------------------------------------------------------------------------------------
# The msgpack + TensorStore format.


def read_msgpack_state(path: str) -> dict:
    """The state dict of a T5X ``checkpoint`` msgpack file: ``{'target': ..., 'state': ...}`` with
    TensorStore placeholders (dicts) still in place."""
    from flax import serialization

    with open(path, "rb") as f:
        try:
            contents = serialization.msgpack_restore(f.read())
        except Exception as e:  # msgpack raises several types for a truncated or foreign file.
            raise CheckpointError(f"{path}: not a T5X msgpack checkpoint ({e})") from e
    if not isinstance(contents, dict):
        raise CheckpointError(f"{path}: not a T5X checkpoint (top level is {type(contents).__name__})")
    version = contents.get("version", 0)
    if version == 0:
        return contents  # A plain Flax state dict, as T5X's _get_optimizer_state_dict accepts.
    if version < 2:
        raise CheckpointError(f"{path}: checkpoint version {version}; T5X (and iuie) read versions >= 2")
    if "optimizer" not in contents:
        raise CheckpointError(f"{path}: version {version} checkpoint without an 'optimizer' entry")
    return contents["optimizer"]


def is_ts_placeholder(value: Any) -> bool:
    """Whether a msgpack leaf is a TensorStore spec standing in for an array (T5X's own test)."""
    return isinstance(value, Mapping) and "driver" in value and "kvstore" in value


def _local_spec(spec: Mapping, ckpt_dir: str) -> dict:
    """A spec that opens the array under ``ckpt_dir``, following T5X's ``_read_ts``: chunks and compressor
    are dropped (the zarr ``.zarray`` file has them), GCS or gfile drivers become ``file``, and the relative
    path is joined to the checkpoint folder."""
    spec = copy.deepcopy(dict(spec))
    metadata = spec.setdefault("metadata", {})
    metadata.pop("chunks", None)
    metadata.pop("compressor", None)
    # tensorstore >= 0.1.14 keeps the path in kvstore, older versions beside it.
    relative = spec["kvstore"].get("path") or spec.pop("path", None)
    spec.pop("path", None)
    if not relative:
        raise CheckpointError(f"{ckpt_dir}: TensorStore spec without a path: {spec}")
    spec["kvstore"] = {"driver": "file", "path": os.path.join(ckpt_dir, relative)}
    return spec


def read_ts_array(spec: Mapping, ckpt_dir: str, name: str) -> np.ndarray:
    """The array a T5X TensorStore placeholder points at (``name`` is only for errors)."""
    import tensorstore as ts

    local = _local_spec(spec, ckpt_dir)
    where = local["kvstore"]["path"]
    if local.get("dtype") == "uint16" or local["metadata"].get("dtype") == "<u2":
        raise CheckpointError(
            f"{where}: '{name}' is stored as uint16 (a pre-2021 bfloat16 encoding T5X no longer reads either)"
        )
    if not os.path.isdir(where):
        raise CheckpointError(f"{where}: missing TensorStore array for '{name}'")
    try:
        array = ts.open(local, open=True, read=True).result().read().result()
    except Exception as e:  # tensorstore reports every failure as ValueError or its own status types.
        raise CheckpointError(f"{where}: cannot read '{name}' ({e})") from e
    expected = tuple(spec.get("metadata", {}).get("shape", array.shape))
    if tuple(array.shape) != expected:
        raise CheckpointError(f"{where}: '{name}' has shape {array.shape}, the checkpoint says {expected}")
    return np.asarray(array)


def _materialize(node: Any, ckpt_dir: str, name: str, dtype: Any) -> Any:
    if is_ts_placeholder(node):
        array = read_ts_array(node, ckpt_dir, name)
    elif isinstance(node, Mapping):
        return {k: _materialize(v, ckpt_dir, f"{name}/{k}", dtype) for k, v in node.items()}
    else:
        array = np.asarray(node)
    return array if dtype is None else array.astype(dtype, copy=False)


def _read_msgpack_target(ckpt_dir: str, dtype: Any) -> dict:
    path = os.path.join(ckpt_dir, CHECKPOINT_FILE)
    state = read_msgpack_state(path)
    if "target" not in state:
        raise CheckpointError(f"{path}: no 'target' (model parameters) in the state dict; it has {sorted(state)}")
    return _materialize(state["target"], ckpt_dir, "target", dtype)


# --------------------------------------------------------------------------------------------------------
# Orbax.


def restore_orbax_numpy(path: str) -> dict:
    """An Orbax PyTree checkpoint (``StandardCheckpointer`` or ``PyTreeCheckpointer``) as numpy arrays on
    the host, whatever devices or sharding it was written with."""
    import jax
    import orbax.checkpoint as ocp

    checkpointer = ocp.PyTreeCheckpointer()
    try:
        metadata = checkpointer.metadata(path)
    except (FileNotFoundError, ValueError) as e:
        raise CheckpointError(f"{path}: not an Orbax checkpoint ({e})") from e
    tree = getattr(metadata, "item_metadata", metadata)
    tree = getattr(tree, "tree", tree)
    restore_args = jax.tree.map(lambda _: ocp.RestoreArgs(restore_type=np.ndarray), tree)
    restored = checkpointer.restore(path, args=ocp.args.PyTreeRestore(restore_args=restore_args))
    return plain_params(restored)


def is_orbax_dir(path: str) -> bool:
    return os.path.isdir(path) and any(
        os.path.exists(os.path.join(path, name)) for name in ("_METADATA", "_CHECKPOINT_METADATA")
    )


# --------------------------------------------------------------------------------------------------------
# Public entry points.


def read_t5x_target(path: str, *, dtype: Any = np.float32) -> dict:
    """The ``target`` params of a T5X checkpoint, as stored (joined attention kernels), cast to ``dtype``
    (``None`` keeps the stored dtype; Flan-T5 stores float32, other T5X runs bfloat16)."""
    ckpt_dir = find_checkpoint_dir(path)
    if os.path.isfile(os.path.join(ckpt_dir, CHECKPOINT_FILE)):
        return _read_msgpack_target(ckpt_dir, dtype)
    state = restore_orbax_numpy(os.path.join(ckpt_dir, ORBAX_STATE_DIR))
    if "target" not in state:
        raise CheckpointError(f"{ckpt_dir}/{ORBAX_STATE_DIR}: no 'target' in the T5X state; it has {sorted(state)}")
    return _materialize(state["target"], ckpt_dir, "target", dtype)


def load_t5x(path: str, *, dtype: Any = np.float32, attention_layout: str = "joined") -> dict:
    """An iuie param tree from a T5X checkpoint (the ``checkpoint_<step>`` folder, its ``checkpoint`` file,
    or a model dir); its config comes from :func:`infer_config_fields`."""
    params = read_t5x_target(path, dtype=dtype)
    _check_t5_tree(params, path)
    return with_attention_layout(params, attention_layout)


def _check_t5_tree(params: Mapping, source: str) -> None:
    for key in ("token_embedder", "encoder", "decoder"):
        if key not in params:
            raise CheckpointError(
                f"{source}: params have no '{key}' (not a T5X T5 1.1 tree; top level is {sorted(params)})"
            )


def _shape(params: Mapping, *path: str) -> tuple[int, ...]:
    node = params
    for key in path:
        if not isinstance(node, Mapping) or key not in node:
            raise CheckpointError(f"params: missing '{'/'.join(path)}'")
        node = node[key]
    return tuple(node.shape)


def infer_config_fields(params: Mapping) -> dict[str, Any]:
    """iuie config fields read off the shapes of a param tree (either attention layout).

    What shapes cannot tell takes T5X's values: relative-attention max distance 128, layer-norm epsilon
    1e-6, dropout 0.1 (the Flan-T5 fine-tuning default).
    """
    params = plain_params(params)
    _check_t5_tree(params, "params")
    vocab_size, emb_dim = _shape(params, "token_embedder", "embedding")
    num_heads, num_buckets = _shape(params, "encoder", "relpos_bias", "rel_embedding")
    joined = int(np.prod(_shape(params, "encoder", "layers_0", "attention", "query", "kernel")[1:]))
    mlp = params["encoder"]["layers_0"]["mlp"]
    gated = "wi_0" in mlp
    return {
        "vocab_size": vocab_size,
        "emb_dim": emb_dim,
        "num_heads": num_heads,
        "num_encoder_layers": sum(k.startswith("layers_") for k in params["encoder"]),
        "num_decoder_layers": sum(k.startswith("layers_") for k in params["decoder"]),
        "head_dim": joined // num_heads,
        "mlp_dim": _shape(params, "encoder", "layers_0", "mlp", "wi_0" if gated else "wi", "kernel")[-1],
        "mlp_activations": GATED_GELU_ACTIVATIONS if gated else ("relu",),
        "dropout_rate": 0.1,
        "logits_via_embedding": "logits_dense" not in params["decoder"],
        "relative_attention_num_buckets": num_buckets,
        "relative_attention_max_distance": T5X_RELATIVE_ATTENTION_MAX_DISTANCE,
        "layer_norm_epsilon": 1e-6,
    }


def save_iuie(params: Any, config: Any, path: str) -> None:
    """Write the iuie format: ``path/params`` (Orbax ``StandardCheckpointer``) and ``path/iuie_config.json``.

    ``config`` is an iuie ``T5Config`` or its fields. ``path`` must not hold a checkpoint already.
    """
    import orbax.checkpoint as ocp

    params = plain_params(params)
    os.makedirs(path, exist_ok=True)
    params_dir = os.path.join(os.path.abspath(path), PARAMS_DIR)
    if os.path.exists(params_dir):
        raise CheckpointError(f"{params_dir}: exists already")
    checkpointer = ocp.StandardCheckpointer()
    checkpointer.save(params_dir, params)
    checkpointer.wait_until_finished()
    with open(os.path.join(path, CONFIG_JSON), "w", encoding="utf-8") as f:
        json.dump(config_to_fields(config), f, indent=2, sort_keys=True)
        f.write("\n")


def _unwrap_params(tree: Mapping, source: str) -> dict:
    """The T5 param tree inside a restored Orbax tree: as is, or under ``params`` / ``target``."""
    for _ in range(3):
        if "token_embedder" in tree:
            return dict(tree)
        inner = next((tree[k] for k in ("params", "target") if isinstance(tree.get(k), Mapping)), None)
        if inner is None:
            break
        tree = inner
    raise CheckpointError(
        f"{source}: no iuie params found (no 'token_embedder', also not under 'params' or "
        f"'target'; top level is {sorted(tree)})"
    )


def read_iuie_params(path: str, *, dtype: Any = np.float32) -> tuple[dict, dict[str, Any]]:
    """``(params, config fields)`` of an iuie checkpoint: the folder written by :func:`save_iuie` (or its
    ``params/``), or any Orbax PyTree checkpoint of iuie params (a train state with ``params`` inside is
    fine). The fields come from ``iuie_config.json`` in the folder or beside it, else from the shapes."""
    if not os.path.isdir(path):
        raise CheckpointError(f"{path}: no such iuie checkpoint folder")
    orbax_dir = os.path.join(path, PARAMS_DIR) if is_orbax_dir(os.path.join(path, PARAMS_DIR)) else path
    if not is_orbax_dir(orbax_dir):
        raise CheckpointError(f"{path}: not an iuie checkpoint (no Orbax checkpoint in it or in '{PARAMS_DIR}/')")
    params = _unwrap_params(restore_orbax_numpy(orbax_dir), orbax_dir)
    if dtype is not None:
        params = cast_params(params, dtype)
    for folder in (path, os.path.dirname(os.path.abspath(orbax_dir))):
        config_path = os.path.join(folder, CONFIG_JSON)
        if os.path.isfile(config_path):
            with open(config_path, encoding="utf-8") as f:
                return params, json.load(f)
    return params, infer_config_fields(params)
