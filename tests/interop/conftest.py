"""Fixtures for the interop tests: tiny random FlanT5s saved by transformers itself, and a writer of T5X's
on-disk checkpoint format.

Dimensions are deliberately unequal (3 heads of width 4 in d_model 16, d_ff 24, 2 encoder and 3 decoder
layers, 8 buckets up to distance 20) so that a transposed, misrouted or misshaped tensor cannot pass.
"""

from __future__ import annotations

import json
import os

import msgpack
import numpy as np
import pytest
import tensorstore as ts

HF_DIMS = dict(
    vocab_size=64,
    d_model=16,
    d_kv=4,
    d_ff=24,
    num_layers=2,
    num_decoder_layers=3,
    num_heads=3,
    relative_attention_num_buckets=8,
    relative_attention_max_distance=20,
)


def make_hf_model(seed: int = 0, untie: bool = True):
    """A random ``T5ForConditionalGeneration`` in FlanT5's configuration (T5 1.1: gated GELU, own lm_head).

    transformers 5 ties ``lm_head`` to ``shared`` at construction whatever the config says; ``untie`` gives
    it weights of its own, as every real FlanT5 has.
    """
    import torch
    import transformers

    config = transformers.T5Config(feed_forward_proj="gated-gelu", tie_word_embeddings=False, **HF_DIMS)
    torch.manual_seed(seed)
    model = transformers.T5ForConditionalGeneration(config).eval()
    if untie:
        model.lm_head.weight = torch.nn.Parameter(torch.randn(HF_DIMS["vocab_size"], HF_DIMS["d_model"]))
        model.config.tie_word_embeddings = False
    return model


def hf_tensors(model) -> dict[str, np.ndarray]:
    """The model's own state dict as numpy arrays (the reference every import is compared against)."""
    return {name: t.detach().cpu().numpy().copy() for name, t in model.state_dict().items()}


def save_torch_bin(model, folder, max_tensors_per_shard: int | None = None) -> None:
    """The pre-safetensors layout of transformers < 5: ``torch.save`` of the full state dict (tied copies
    included), sharded with ``pytorch_model.bin.index.json`` when asked. transformers 5 no longer writes it
    but still reads it, which the tests use to check the layout."""
    import torch

    os.makedirs(folder, exist_ok=True)
    # transformers 4 spelled "own lm_head, no rescaling" as tie_word_embeddings=false (Flan-T5's config.json).
    config = model.config.to_dict()
    config.pop("scale_decoder_outputs", None)
    config["tie_word_embeddings"] = False
    with open(os.path.join(folder, "config.json"), "w") as f:
        json.dump(config, f)
    state = {k: v.detach().clone() for k, v in model.state_dict().items()}
    if max_tensors_per_shard is None:
        torch.save(state, os.path.join(folder, "pytorch_model.bin"))
        return
    names = list(state)
    chunks = [names[i : i + max_tensors_per_shard] for i in range(0, len(names), max_tensors_per_shard)]
    weight_map = {}
    for i, chunk in enumerate(chunks):
        shard = f"pytorch_model-{i + 1:05d}-of-{len(chunks):05d}.bin"
        torch.save({k: state[k] for k in chunk}, os.path.join(folder, shard))
        weight_map.update({k: shard for k in chunk})
    total = sum(t.numel() * t.element_size() for t in state.values())
    with open(os.path.join(folder, "pytorch_model.bin.index.json"), "w") as f:
        json.dump({"metadata": {"total_size": total}, "weight_map": weight_map}, f)


@pytest.fixture(scope="session")
def hf_model():
    return make_hf_model()


@pytest.fixture(scope="session")
def hf_folders(hf_model, tmp_path_factory) -> dict[str, str]:
    """The same model in every folder layout the importer reads."""
    root = tmp_path_factory.mktemp("hf")
    folders = {name: str(root / name) for name in ("safetensors", "sharded_safetensors", "bin", "sharded_bin")}
    hf_model.save_pretrained(folders["safetensors"])
    hf_model.save_pretrained(folders["sharded_safetensors"], max_shard_size="8KB")
    save_torch_bin(hf_model, folders["bin"])
    save_torch_bin(hf_model, folders["sharded_bin"], max_tensors_per_shard=20)
    return folders


# --------------------------------------------------------------------------------------------------------
# T5X's on-disk format, written as t5x/checkpoints.py writes it (see test_t5x.py).

FLAX_NDARRAY_EXT = 1


def _pack_ndarray(obj):
    if isinstance(obj, np.ndarray):
        payload = msgpack.packb((obj.shape, obj.dtype.name, obj.tobytes("C")), use_bin_type=True)
        return msgpack.ExtType(FLAX_NDARRAY_EXT, payload)
    raise TypeError(type(obj))


def _spec(name: str, array: np.ndarray, *, gcs: bool, dtype) -> dict:
    """T5X's ``_get_spec`` (local or gs:// checkpoint dir) after ``ts.Spec(...).to_json()``."""
    metadata = {
        "compressor": {"id": "gzip"},
        "shape": list(array.shape),
        # Several chunks per array, so that reading is not a single-chunk special case.
        "chunks": [max(1, array.shape[0] // 2)] + list(array.shape[1:]),
    }
    path = name.replace("/", ".")
    if gcs:
        spec = {
            "driver": "zarr",
            "dtype": np.dtype(dtype).name,
            "path": path,
            "metadata": metadata,
            "kvstore": {"driver": "gcs", "bucket": "t5x-dummy-bucket"},
        }
    else:
        spec = {
            "driver": "zarr",
            "dtype": np.dtype(dtype).name,
            "metadata": metadata,
            "kvstore": {"driver": "file", "path": path},
        }
    return ts.Spec(spec).to_json()


def write_t5x_checkpoint(ckpt_dir, state_dict: dict, *, gcs: bool = False, save_dtype=None) -> None:
    """Write ``state_dict`` as T5X's Checkpointer.save does; arrays of rank >= 1 go to TensorStore."""
    os.makedirs(ckpt_dir)

    def write(node, name):
        if isinstance(node, dict):
            return {k: write(v, f"{name}/{k}" if name else k) for k, v in node.items()}
        array = np.asarray(node)
        if array.ndim == 0:
            return array  # Kept in the msgpack.
        # T5X casts only 'target' to save_dtype.
        dtype = save_dtype if save_dtype is not None and name.startswith("target/") else array.dtype
        spec = _spec(name, array, gcs=gcs, dtype=dtype)
        local = json.loads(json.dumps(spec))
        local["kvstore"] = {"driver": "file", "path": os.path.join(str(ckpt_dir), name.replace("/", "."))}
        store = ts.open(local, create=True, open=True).result()
        store.write(array.astype(dtype)).result()
        return spec

    written = write(state_dict, "")
    with open(os.path.join(ckpt_dir, "checkpoint"), "wb") as f:
        f.write(msgpack.packb({"version": 3, "optimizer": written}, default=_pack_ndarray, use_bin_type=True))


def _adafactor_states(params: dict) -> dict:
    """Factored second-moment slots as Adafactor keeps them (one per kernel), to be skipped on reading."""

    def slots(node):
        if isinstance(node, dict):
            return {k: slots(v) for k, v in node.items()}
        if node.ndim == 2:
            return {
                "v_row": np.ones(node.shape[0], np.float32),
                "v_col": np.ones(node.shape[1], np.float32),
                "v": np.zeros(1, np.float32),
                "m": np.zeros(1, np.float32),
            }
        return {"v": np.ones_like(node), "m": np.zeros(1, np.float32)}

    return slots(params)


def t5x_train_state(params: dict, optimizer_slots: bool = False) -> dict:
    """A T5X train state dict (``FlaxOptimTrainState.state_dict()``) around ``params``; Adafactor's slots
    (which the reader must skip) only when asked, as they double the writing time."""
    state = {"step": np.asarray(1184000, np.int32)}
    if optimizer_slots:
        state["param_states"] = _adafactor_states(params)
    return {"target": params, "state": state}
