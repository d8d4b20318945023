"""Hugging Face FlanT5 weights <-> the iuie parameter tree.

Import reads a local folder as written by ``transformers`` ``save_pretrained`` (or downloaded from the Hub by
the user: nothing here downloads): ``config.json`` plus ``model.safetensors``, ``pytorch_model.bin``, or a
sharded set named by ``model.safetensors.index.json`` / ``pytorch_model.bin.index.json``. Export writes
``config.json`` + ``model.safetensors`` that ``transformers.T5ForConditionalGeneration.from_pretrained`` loads.

The iuie tree is T5X's T5 1.1 tree (``t5x/examples/t5/network.py``). The tensors differ from Hugging Face's
in names and in orientation only:

=============================================================  ==========================================
Hugging Face (``torch.nn.Linear`` weights are ``(out, in)``)    iuie / T5X (kernels are ``(in, out)``)
=============================================================  ==========================================
``shared.weight`` (vocab, d)                                     ``token_embedder/embedding`` (vocab, d)
``{enc,dec}oder.block.0.layer.0.SelfAttention.``                 ``{enc,dec}oder/relpos_bias/rel_embedding``
``relative_attention_bias.weight`` (buckets, heads)              (heads, buckets)
``...SelfAttention.{q,k,v}.weight`` (heads*d_kv, d)              ``.../{query,key,value}/kernel`` (d, heads*d_kv)
``...SelfAttention.o.weight`` (d, heads*d_kv)                    ``.../out/kernel`` (heads*d_kv, d)
``...DenseReluDense.{wi_0,wi_1,wo}.weight``                      ``.../mlp/{wi_0,wi_1,wo}/kernel``
``...layer.N.layer_norm.weight``                                 ``.../pre_*_layer_norm/scale``
``lm_head.weight`` (vocab, d)                                    ``decoder/logits_dense/kernel`` (d, vocab)
=============================================================  ==========================================

Attention kernels are stored joined, ``(embed, heads*head_dim)``, as T5X stores them; a network that keeps
them split, ``(embed, heads, head_dim)`` / ``(heads, head_dim, embed)``, asks for ``attention_layout="split"``.
Both Hugging Face and T5X order the joined axis head-major, so the split is a plain reshape.

Configs: the iuie config is built from ``config.json``. FlanT5 is T5 1.1: gated-GELU feed-forward and an
output projection of its own that does not rescale the decoder output. Hugging Face spells the latter
``tie_word_embeddings: false`` (transformers 4) or ``scale_decoder_outputs: false`` (transformers 5, which
then writes ``tie_word_embeddings: true`` and may drop ``lm_head.weight`` when it equals ``shared.weight``).
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Iterator, Mapping
from typing import Any

import numpy as np

CONFIG_FILE = "config.json"
SAFETENSORS_FILE = "model.safetensors"
SAFETENSORS_INDEX = "model.safetensors.index.json"
TORCH_FILE = "pytorch_model.bin"
TORCH_INDEX = "pytorch_model.bin.index.json"

ATTENTION_LAYOUTS = ("joined", "split")

# Tensors Hugging Face keeps beside the ones iuie needs: the stacks' embedding tables are tied to
# ``shared.weight``, and transformers' own T5 ignores a cross-attention relative bias old checkpoints carry.
IGNORED_HF_TENSORS = frozenset(
    {
        "encoder.embed_tokens.weight",
        "decoder.embed_tokens.weight",
        "decoder.block.0.layer.1.EncDecAttention.relative_attention_bias.weight",
    }
)

# The iuie config fields (T5X's ``T5Config`` names) that come straight from a Hugging Face config key.
_HF_CONFIG_KEYS = {
    "vocab_size": "vocab_size",
    "emb_dim": "d_model",
    "num_heads": "num_heads",
    "num_encoder_layers": "num_layers",
    "num_decoder_layers": "num_decoder_layers",
    "head_dim": "d_kv",
    "mlp_dim": "d_ff",
    "dropout_rate": "dropout_rate",
}
# Settings that T5X's network hard-codes; an iuie config may carry them as fields (then they are set),
# otherwise the Hugging Face value must equal T5X's constant.
_HF_FIXED_SETTINGS = {
    "relative_attention_num_buckets": 32,
    "relative_attention_max_distance": 128,
    "layer_norm_epsilon": 1e-6,
}
GATED_GELU_ACTIVATIONS = ("gelu", "linear")


class CheckpointError(ValueError):
    """A checkpoint that cannot be converted. The message names the file and the tensor or key."""


# --------------------------------------------------------------------------------------------------------
# The tensor map.


@dataclasses.dataclass(frozen=True)
class TensorSlot:
    """One Hugging Face tensor and the place of its counterpart in the iuie tree.

    ``kind`` is ``copy`` (same array) or one of ``dense``, ``relpos``, ``qkv``, ``attention_out``: all
    transposed, the last two in the joined attention layout (see :func:`with_attention_layout`).
    """

    hf_name: str
    path: tuple[str, ...]
    kind: str


def _attention_slots(hf_prefix: str, iuie_prefix: tuple[str, ...]) -> list[TensorSlot]:
    slots = [
        TensorSlot(f"{hf_prefix}.{hf}.weight", iuie_prefix + (name, "kernel"), "qkv")
        for hf, name in (("q", "query"), ("k", "key"), ("v", "value"))
    ]
    slots.append(TensorSlot(f"{hf_prefix}.o.weight", iuie_prefix + ("out", "kernel"), "attention_out"))
    return slots


def _mlp_slots(hf_prefix: str, iuie_prefix: tuple[str, ...]) -> list[TensorSlot]:
    return [
        TensorSlot(f"{hf_prefix}.{name}.weight", iuie_prefix + (name, "kernel"), "dense")
        for name in ("wi_0", "wi_1", "wo")
    ]


def _norm_slot(hf_name: str, iuie_prefix: tuple[str, ...], name: str) -> TensorSlot:
    return TensorSlot(hf_name, iuie_prefix + (name, "scale"), "copy")


def tensor_slots(num_encoder_layers: int, num_decoder_layers: int) -> list[TensorSlot]:
    """Every tensor of a Hugging Face FlanT5 with these depths, paired with its iuie path."""
    slots = [TensorSlot("shared.weight", ("token_embedder", "embedding"), "copy")]
    for stack, depth in (("encoder", num_encoder_layers), ("decoder", num_decoder_layers)):
        slots.append(
            TensorSlot(
                f"{stack}.block.0.layer.0.SelfAttention.relative_attention_bias.weight",
                (stack, "relpos_bias", "rel_embedding"),
                "relpos",
            )
        )
        for i in range(depth):
            hf, layer = f"{stack}.block.{i}.layer", (stack, f"layers_{i}")
            if stack == "encoder":
                slots += _attention_slots(f"{hf}.0.SelfAttention", layer + ("attention",))
                slots.append(_norm_slot(f"{hf}.0.layer_norm.weight", layer, "pre_attention_layer_norm"))
                slots += _mlp_slots(f"{hf}.1.DenseReluDense", layer + ("mlp",))
                slots.append(_norm_slot(f"{hf}.1.layer_norm.weight", layer, "pre_mlp_layer_norm"))
            else:
                slots += _attention_slots(f"{hf}.0.SelfAttention", layer + ("self_attention",))
                slots.append(_norm_slot(f"{hf}.0.layer_norm.weight", layer, "pre_self_attention_layer_norm"))
                slots += _attention_slots(f"{hf}.1.EncDecAttention", layer + ("encoder_decoder_attention",))
                slots.append(_norm_slot(f"{hf}.1.layer_norm.weight", layer, "pre_cross_attention_layer_norm"))
                slots += _mlp_slots(f"{hf}.2.DenseReluDense", layer + ("mlp",))
                slots.append(_norm_slot(f"{hf}.2.layer_norm.weight", layer, "pre_mlp_layer_norm"))
        norm = "encoder_norm" if stack == "encoder" else "decoder_norm"
        slots.append(_norm_slot(f"{stack}.final_layer_norm.weight", (stack,), norm))
    slots.append(TensorSlot("lm_head.weight", ("decoder", "logits_dense", "kernel"), "dense"))
    return slots


def hf_shape(slot: TensorSlot, fields: Mapping[str, Any]) -> tuple[int, ...]:
    """The shape the Hugging Face tensor of ``slot`` has in a model with these config fields."""
    d, joined = fields["emb_dim"], fields["num_heads"] * fields["head_dim"]
    leaf = slot.path[-2]
    if slot.kind == "relpos":
        return (fields["relative_attention_num_buckets"], fields["num_heads"])
    if slot.kind == "qkv":
        return (joined, d)
    if slot.kind == "attention_out":
        return (d, joined)
    if leaf in ("wi_0", "wi_1"):
        return (fields["mlp_dim"], d)
    if leaf == "wo":
        return (d, fields["mlp_dim"])
    if slot.path[0] == "token_embedder" or leaf == "logits_dense":
        return (fields["vocab_size"], d)
    return (d,)  # layer norms


# --------------------------------------------------------------------------------------------------------
# Orientation of single tensors.


def split_attention_kernel(kernel: np.ndarray, num_heads: int, *, is_output: bool) -> np.ndarray:
    """A joined T5X attention kernel in the split layout: ``(embed, heads, head_dim)`` for query, key and
    value, ``(heads, head_dim, embed)`` for the output projection."""
    if kernel.ndim == 3:
        return kernel
    if is_output:
        return kernel.reshape(num_heads, kernel.shape[0] // num_heads, kernel.shape[1])
    return kernel.reshape(kernel.shape[0], num_heads, kernel.shape[1] // num_heads)


def join_attention_kernel(kernel: np.ndarray, *, is_output: bool) -> np.ndarray:
    """The inverse of :func:`split_attention_kernel`; a 2-D kernel is returned as it is."""
    if kernel.ndim == 2:
        return kernel
    if is_output:
        return kernel.reshape(-1, kernel.shape[-1])
    return kernel.reshape(kernel.shape[0], -1)


ATTENTION_MODULES = ("attention", "self_attention", "encoder_decoder_attention")
ATTENTION_PROJECTIONS = ("query", "key", "value", "out")


def with_attention_layout(params: Mapping, layout: str) -> dict:
    """The param tree with its attention kernels joined (T5X, 2-D) or split (3-D, by heads).

    The single place where the attention layout changes; every loader returns the joined layout and calls
    this. The number of heads is read from the relative-position table ``(heads, buckets)``.
    """
    if layout not in ATTENTION_LAYOUTS:
        raise ValueError(f"attention_layout must be one of {ATTENTION_LAYOUTS}, not {layout!r}")
    num_heads = params["encoder"]["relpos_bias"]["rel_embedding"].shape[0]

    def convert(node: Mapping, parent: str) -> dict:
        out = {}
        for key, value in node.items():
            if isinstance(value, Mapping):
                out[key] = convert(value, key)
            elif key == "kernel" and parent in ATTENTION_PROJECTIONS:
                is_output = parent == "out"
                out[key] = (
                    split_attention_kernel(value, num_heads, is_output=is_output)
                    if layout == "split"
                    else join_attention_kernel(value, is_output=is_output)
                )
            else:
                out[key] = value
        return out

    def walk(node: Mapping) -> dict:
        return {
            key: (convert(value, key) if key in ATTENTION_MODULES else walk(value))
            if isinstance(value, Mapping)
            else value
            for key, value in node.items()
        }

    return walk(params)


def _to_iuie(array: np.ndarray, slot: TensorSlot) -> np.ndarray:
    if slot.kind == "copy":
        return array
    return np.ascontiguousarray(array.T)


def _to_hf(array: np.ndarray, slot: TensorSlot) -> np.ndarray:
    return np.ascontiguousarray(array if slot.kind == "copy" else array.T)


# --------------------------------------------------------------------------------------------------------
# Reading the weight files of a folder.


def _read_json(path: str) -> dict:
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except json.JSONDecodeError as e:
        raise CheckpointError(f"{path}: not valid JSON ({e})") from e


def weight_files(folder: str) -> list[str]:
    """The weight files of a Hugging Face folder, safetensors preferred, shards in index order."""
    if not os.path.isdir(folder):
        raise CheckpointError(f"{folder}: not a folder (expected a Hugging Face model folder)")
    for index_name, single in ((SAFETENSORS_INDEX, SAFETENSORS_FILE), (TORCH_INDEX, TORCH_FILE)):
        index_path = os.path.join(folder, index_name)
        if os.path.isfile(index_path):
            weight_map = _read_json(index_path).get("weight_map")
            if not isinstance(weight_map, dict) or not weight_map:
                raise CheckpointError(f"{index_path}: no 'weight_map' naming the shard of each tensor")
            shards = list(dict.fromkeys(weight_map.values()))
            missing = [s for s in shards if not os.path.isfile(os.path.join(folder, s))]
            if missing:
                raise CheckpointError(f"{index_path}: names shard files that are not there: {missing}")
            return [os.path.join(folder, s) for s in shards]
        if os.path.isfile(os.path.join(folder, single)):
            return [os.path.join(folder, single)]
    raise CheckpointError(
        f"{folder}: no weights found (looked for {SAFETENSORS_FILE}, {SAFETENSORS_INDEX}, {TORCH_FILE}, {TORCH_INDEX})"
    )


def _torch_to_numpy(tensor) -> np.ndarray:
    import torch  # Only .bin files need torch; imported here so safetensors users never pay for it.

    tensor = tensor.detach().cpu()
    if tensor.dtype == torch.bfloat16:
        # numpy has no bfloat16; reinterpret the bits so the values stay exact.
        import ml_dtypes

        return tensor.view(torch.int16).numpy().view(ml_dtypes.bfloat16)
    return tensor.numpy()


def _iter_file(path: str) -> Iterator[tuple[str, np.ndarray]]:
    if path.endswith(".safetensors"):
        from safetensors import safe_open

        with safe_open(path, framework="numpy") as f:
            for name in f.keys():
                yield name, f.get_tensor(name)
        return
    import torch

    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises several types for a corrupt or non-tensor pickle.
        raise CheckpointError(f"{path}: cannot be read as a PyTorch state dict ({e})") from e
    for name, tensor in state.items():
        yield name, _torch_to_numpy(tensor)


def iter_hf_tensors(folder: str) -> Iterator[tuple[str, np.ndarray, str]]:
    """``(name, array, file)`` for every tensor of the folder, one file in memory at a time."""
    for path in weight_files(folder):
        for name, array in _iter_file(path):
            yield name, array, path


# --------------------------------------------------------------------------------------------------------
# Configs.


def read_hf_config(folder: str) -> dict:
    """The raw ``config.json`` of a Hugging Face folder."""
    path = os.path.join(folder, CONFIG_FILE)
    if not os.path.isfile(path):
        raise CheckpointError(f"{path}: missing (a Hugging Face model folder needs its config.json)")
    return _read_json(path)


def _require(hf: Mapping[str, Any], key: str, source: str) -> Any:
    if hf.get(key) is None:
        raise CheckpointError(f"{source}: key '{key}' is missing")
    return hf[key]


def _check_t5_v1_1(hf: Mapping[str, Any], source: str) -> None:
    """FlanT5 is T5 1.1: gated GELU, and logits from a projection of their own without output rescaling."""
    model_type = hf.get("model_type", "t5")
    if model_type not in ("t5", "mt5"):  # mT5 shares T5 1.1's tensors; umT5 and others do not.
        raise CheckpointError(f"{source}: key 'model_type' is {model_type!r}; iuie reads 't5' (FlanT5) models")
    proj = hf.get("feed_forward_proj", "relu")
    if proj != "gated-gelu":
        raise CheckpointError(f"{source}: key 'feed_forward_proj' is {proj!r}; iuie's FlanT5 needs 'gated-gelu'")
    if "scale_decoder_outputs" in hf:  # transformers >= 5 moved the meaning of tie_word_embeddings here.
        if hf["scale_decoder_outputs"]:
            raise CheckpointError(
                f"{source}: key 'scale_decoder_outputs' is true (original T5, tied and rescaled logits); "
                "iuie's FlanT5 needs false"
            )
    elif hf.get("tie_word_embeddings", True):
        raise CheckpointError(
            f"{source}: key 'tie_word_embeddings' is {hf.get('tie_word_embeddings', True)!r} (original T5, "
            "tied and rescaled logits); iuie's FlanT5 needs false"
        )


def config_fields_from_hf(hf: Mapping[str, Any], source: str = CONFIG_FILE) -> dict[str, Any]:
    """The iuie config fields (T5X ``T5Config`` names) for a Hugging Face T5 config.

    Settings that T5X's network hard-codes (relative-attention buckets and distance, layer-norm epsilon) are
    included under their Hugging Face names; :func:`make_config` keeps them where the iuie config has such a
    field and otherwise insists on T5X's value.
    """
    _check_t5_v1_1(hf, source)
    fields = {}
    for field, key in _HF_CONFIG_KEYS.items():
        if key == "num_decoder_layers" and hf.get(key) is None:
            key = "num_layers"  # Hugging Face's default: as deep as the encoder.
        fields[field] = _require(hf, key, source)
    fields["mlp_activations"] = GATED_GELU_ACTIVATIONS
    fields["logits_via_embedding"] = False
    for key, t5x_value in _HF_FIXED_SETTINGS.items():
        fields[key] = hf.get(key, t5x_value)
    return fields


def hf_config_from_fields(fields: Mapping[str, Any]) -> dict[str, Any]:
    """A Hugging Face ``config.json`` (as a dict) for iuie config fields."""
    activations = tuple(fields.get("mlp_activations", GATED_GELU_ACTIVATIONS))
    if activations != GATED_GELU_ACTIVATIONS:
        raise CheckpointError(
            f"iuie config: mlp_activations {activations} has no Hugging Face T5 equivalent; "
            f"only {GATED_GELU_ACTIVATIONS} (gated-gelu) does"
        )
    if fields.get("logits_via_embedding", False):
        raise CheckpointError(
            "iuie config: logits_via_embedding=True is not FlanT5 (export needs its own logits_dense)"
        )
    return {
        "architectures": ["T5ForConditionalGeneration"],
        "model_type": "t5",
        "d_model": int(fields["emb_dim"]),
        "d_kv": int(fields["head_dim"]),
        "d_ff": int(fields["mlp_dim"]),
        "num_heads": int(fields["num_heads"]),
        "num_layers": int(fields["num_encoder_layers"]),
        "num_decoder_layers": int(fields["num_decoder_layers"]),
        "vocab_size": int(fields["vocab_size"]),
        "relative_attention_num_buckets": int(fields.get("relative_attention_num_buckets", 32)),
        "relative_attention_max_distance": int(fields.get("relative_attention_max_distance", 128)),
        "layer_norm_epsilon": float(fields.get("layer_norm_epsilon", 1e-6)),
        "dropout_rate": float(fields.get("dropout_rate", 0.1)),
        "feed_forward_proj": "gated-gelu",
        "dense_act_fn": "gelu_new",
        "is_gated_act": True,
        # transformers 4 reads this as "own lm_head, no rescaling"; transformers 5 reads the same as
        # scale_decoder_outputs=False and unties lm_head because the file holds both tensors.
        "tie_word_embeddings": False,
        "is_encoder_decoder": True,
        "decoder_start_token_id": 0,
        "pad_token_id": 0,
        "eos_token_id": 1,
        "initializer_factor": 1.0,
        "use_cache": True,
    }


def _config_class():
    try:
        from iuie.model.network import T5Config
    except ImportError as e:
        raise ImportError("iuie.model.network (the FlanT5 network) is needed to build a T5Config") from e
    return T5Config


def make_config(fields: Mapping[str, Any]):
    """An ``iuie.model.network.T5Config`` from config fields, keeping only the fields that class has.

    A field the class lacks must hold T5X's hard-coded value (or be a pure Hugging Face extra), so that a
    checkpoint is never silently run with the wrong relative-position buckets or epsilon.
    """
    cls = _config_class()
    known = {f.name for f in dataclasses.fields(cls)}
    for key, t5x_value in _HF_FIXED_SETTINGS.items():
        if key in fields and key not in known and fields[key] != t5x_value:
            raise CheckpointError(
                f"config: {key}={fields[key]!r} is not supported by iuie.model.network.T5Config "
                f"(it has no such field and uses {t5x_value!r})"
            )
    return cls(**{k: v for k, v in fields.items() if k in known})


def config_to_fields(config) -> dict[str, Any]:
    """An iuie config (dataclass or mapping) as JSON-ready fields; dtypes become their names."""
    items = (
        config.items()
        if isinstance(config, Mapping)
        else ((f.name, getattr(config, f.name)) for f in dataclasses.fields(config))
    )
    fields = {}
    for key, value in items:
        if (key == "dtype" or key.endswith("_dtype")) and not isinstance(value, str):
            value = np.dtype(value).name
        elif isinstance(value, tuple):
            value = list(value)
        fields[key] = value
    return fields


# --------------------------------------------------------------------------------------------------------
# Param trees.


def _set(tree: dict, path: tuple[str, ...], value: Any) -> None:
    for key in path[:-1]:
        tree = tree.setdefault(key, {})
    tree[path[-1]] = value


def _get(tree: Mapping, path: tuple[str, ...]) -> Any:
    for key in path:
        tree = tree[key]
    return tree


def plain_params(params: Any) -> dict:
    """A param tree as nested dicts of numpy arrays: unboxes ``nn.Partitioned`` leaves, unfreezes, and drops
    a ``{'params': ...}`` wrapper."""
    from flax.core import meta

    params = meta.unbox(params)
    if isinstance(params, Mapping) and set(params) == {"params"}:
        params = params["params"]

    def plain(node):
        if isinstance(node, Mapping):
            return {k: plain(v) for k, v in node.items()}
        return np.asarray(node)

    return plain(params)


def cast_params(params: Mapping, dtype: Any) -> dict:
    """The tree with every array cast to ``dtype`` (arrays already of that dtype are not copied)."""
    return {
        k: cast_params(v, dtype) if isinstance(v, Mapping) else np.asarray(v).astype(dtype, copy=False)
        for k, v in params.items()
    }


def depths(params: Mapping) -> tuple[int, int]:
    """``(num_encoder_layers, num_decoder_layers)`` counted from the ``layers_{i}`` of a param tree."""
    return tuple(sum(1 for k in params[stack] if k.startswith("layers_")) for stack in ("encoder", "decoder"))


def hf_state_to_params(
    tensors: Iterator[tuple[str, np.ndarray, str]],
    fields: Mapping[str, Any],
    *,
    dtype: Any = np.float32,
    attention_layout: str = "joined",
    lm_head_from_shared: bool = False,
) -> dict:
    """An iuie param tree from ``(name, array, file)`` triples of a Hugging Face FlanT5 with config ``fields``.

    ``dtype=None`` keeps each tensor's stored dtype. ``lm_head_from_shared`` lets a missing ``lm_head.weight``
    be ``shared.weight``, as transformers 5 saves a model whose two are tied. A tensor the model does not
    have, a missing tensor, or a shape that does not fit the config is a :class:`CheckpointError` naming the
    tensor and its file.
    """
    slots = {s.hf_name: s for s in tensor_slots(fields["num_encoder_layers"], fields["num_decoder_layers"])}
    params: dict = {}
    seen: dict[str, str] = {}
    for name, array, path in tensors:
        if name in IGNORED_HF_TENSORS:
            continue
        if name not in slots:
            raise CheckpointError(
                f"{path}: unexpected tensor '{name}' (not part of a FlanT5 with "
                f"{fields['num_encoder_layers']}+{fields['num_decoder_layers']} layers)"
            )
        if name in seen:
            raise CheckpointError(f"{path}: tensor '{name}' appears again (first in {seen[name]})")
        if tuple(array.shape) != hf_shape(slots[name], fields):
            raise CheckpointError(
                f"{path}: tensor '{name}' has shape {tuple(array.shape)}; the config says "
                f"{hf_shape(slots[name], fields)}"
            )
        seen[name] = path
        if dtype is not None:
            array = array.astype(dtype, copy=False)
        _set(params, slots[name].path, _to_iuie(array, slots[name]))
    if lm_head_from_shared and "lm_head.weight" not in seen and "shared.weight" in seen:
        embedding = params["token_embedder"]["embedding"]
        _set(params, slots["lm_head.weight"].path, np.ascontiguousarray(embedding.T))
        seen["lm_head.weight"] = seen["shared.weight"]
    missing = [n for n in slots if n not in seen]
    if missing:
        files = sorted(set(seen.values()))
        raise CheckpointError(
            f"{', '.join(files) or 'checkpoint'}: missing tensor(s) {missing[:8]}"
            + (f" and {len(missing) - 8} more" if len(missing) > 8 else "")
        )
    return with_attention_layout(params, attention_layout)


def params_to_hf_state(params: Any) -> dict[str, np.ndarray]:
    """The Hugging Face state dict (numpy arrays) of an iuie param tree, in either attention layout."""
    params = with_attention_layout(plain_params(params), "joined")
    num_encoder_layers, num_decoder_layers = depths(params)
    state = {}
    for slot in tensor_slots(num_encoder_layers, num_decoder_layers):
        try:
            array = _get(params, slot.path)
        except (KeyError, TypeError) as e:
            raise CheckpointError(f"iuie params: missing '{'/'.join(slot.path)}' (for '{slot.hf_name}')") from e
        state[slot.hf_name] = _to_hf(array, slot)
    return state


# --------------------------------------------------------------------------------------------------------
# Public entry points.


def load_hf_params(
    folder: str, *, dtype: Any = np.float32, attention_layout: str = "joined"
) -> tuple[dict, dict[str, Any]]:
    """``(params, config fields)`` of a Hugging Face FlanT5 folder, without building a ``T5Config``."""
    hf_config = read_hf_config(folder)
    fields = config_fields_from_hf(hf_config, os.path.join(folder, CONFIG_FILE))
    # transformers 5 writes scale_decoder_outputs and ties (then omits) lm_head when it equals shared.
    tied = "scale_decoder_outputs" in hf_config and hf_config.get("tie_word_embeddings", True)
    params = hf_state_to_params(
        iter_hf_tensors(folder), fields, dtype=dtype, attention_layout=attention_layout, lm_head_from_shared=tied
    )
    return params, fields


def load_hf(folder: str, *, dtype: Any = np.float32, attention_layout: str = "joined"):
    """``(params, iuie.model.network.T5Config)`` of a Hugging Face FlanT5 folder.

    ``params`` is the content of the model's ``'params'`` collection: nested dicts of numpy arrays (``dtype``;
    ``None`` keeps the stored dtype), in the layout of T5X's T5 1.1 network.

    Used only by tests (tests/interop/): the library reads checkpoints through ``iuie.interop.t5x.
    read_checkpoint``, which calls ``load_hf_params`` and ``make_config`` itself.
    """
    params, fields = load_hf_params(folder, dtype=dtype, attention_layout=attention_layout)
    return params, make_config(fields)


def save_hf(params: Any, config: Any, folder: str, *, dtype: Any = None) -> None:
    """Write ``config.json`` + ``model.safetensors`` that transformers' ``T5ForConditionalGeneration`` loads.

    ``config`` is an iuie ``T5Config`` or its fields; ``dtype=None`` keeps the params' dtypes. The folder is
    created; files in it are overwritten. Only ``shared.weight`` holds the embedding: transformers ties
    ``encoder.embed_tokens`` and ``decoder.embed_tokens`` to it.
    """
    from safetensors.numpy import save_file

    fields = config_to_fields(config)
    state = params_to_hf_state(params)
    if dtype is not None:
        state = {k: v.astype(dtype) for k, v in state.items()}
    hf_config = hf_config_from_fields(fields)
    hf_config["torch_dtype"] = np.dtype(next(iter(state.values())).dtype).name
    os.makedirs(folder, exist_ok=True)
    # transformers refuses safetensors files whose metadata does not say which framework wrote them.
    save_file(state, os.path.join(folder, SAFETENSORS_FILE), metadata={"format": "pt"})
    with open(os.path.join(folder, CONFIG_FILE), "w", encoding="utf-8") as f:
        json.dump(hf_config, f, indent=2, sort_keys=True)
        f.write("\n")
