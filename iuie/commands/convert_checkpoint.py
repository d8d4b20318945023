"""Convert FlanT5 checkpoints: Hugging Face, T5X or iuie in; iuie (Orbax) or Hugging Face out.

Examples::

    iuie convert-checkpoint ~/flan-t5-base ckpt/flan_t5_base --from hf --to iuie
    iuie convert-checkpoint ~/t5x/flan_t5_base/checkpoint_1184000 ckpt/flan_t5_base --from t5x --to iuie
    iuie convert-checkpoint ckpt/flan_t5_base ~/exported --from iuie --to hf

Sources are local folders: a Hugging Face model folder (config.json plus model.safetensors, pytorch_model.bin
or a sharded set with its index), a T5X checkpoint_<step> folder (e.g. the public Flan-T5 checkpoint_1184000,
copied from gs://t5-data/pretrained_models/t5x/ by you: nothing is downloaded), or an iuie checkpoint.
``--to iuie`` writes DST/params (an Orbax checkpoint of the param tree) and DST/iuie_config.json; use DST as
INITIAL_CHECKPOINT_PATH. ``--to hf`` writes DST/config.json and DST/model.safetensors.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys

SOURCES = ("hf", "t5x", "iuie")
TARGETS = ("iuie", "hf")
DTYPES = ("float32", "bfloat16")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("src", metavar="SRC", help="checkpoint folder to read")
    parser.add_argument("dst", metavar="DST", help="folder to write (must not exist unless --overwrite)")
    parser.add_argument("--from", dest="source", required=True, help=f"format of SRC: {', '.join(SOURCES)}")
    parser.add_argument("--to", dest="target", required=True, help=f"format of DST: {', '.join(TARGETS)}")
    parser.add_argument(
        "--dtype", default="float32", choices=DTYPES, help="dtype of the written weights (default: float32)"
    )
    parser.add_argument(
        "--attention-layout",
        default="joined",
        choices=("joined", "split"),
        help="attention kernels in the iuie output: joined (embed, heads*head_dim), as T5X and "
        "iuie.model.network keep them, or split (embed, heads, head_dim) (default: joined)",
    )
    parser.add_argument("--overwrite", action="store_true", help="replace DST if it exists")


def _read(args) -> tuple[dict, dict]:
    """``(params, config fields)`` of SRC, in float32 (the cast to --dtype comes on writing)."""
    from iuie.interop import reader

    return reader.read_checkpoint(args.src, args.source)


def _dtype(name: str):
    import ml_dtypes
    import numpy as np

    return np.dtype(ml_dtypes.bfloat16) if name == "bfloat16" else np.dtype(name)


def _write(args, params: dict, fields: dict) -> None:
    from iuie.interop import hf, t5x

    if args.target == "hf":
        hf.save_hf(params, fields, args.dst, dtype=_dtype(args.dtype))
        return
    params = hf.cast_params(hf.with_attention_layout(params, args.attention_layout), _dtype(args.dtype))
    t5x.save_iuie(params, {**fields, "param_dtype": args.dtype}, args.dst)


def _check_paths(args) -> str | None:
    if args.source not in SOURCES:
        return f"unknown --from format {args.source!r}; choose one of {', '.join(SOURCES)}"
    if args.target not in TARGETS:
        return f"unknown --to format {args.target!r}; choose one of {', '.join(TARGETS)}"
    if not os.path.exists(args.src):
        return f"{args.src}: SRC does not exist"
    if os.path.exists(args.dst) and not args.overwrite:
        return f"{args.dst}: DST exists already (pass --overwrite to replace it)"
    src, dst = os.path.abspath(args.src), os.path.abspath(args.dst)
    if src == dst or src.startswith(dst + os.sep):
        return f"{args.dst}: DST is SRC or holds it"
    return None


def run(args) -> int:
    error = _check_paths(args)
    if error:
        print(f"iuie convert-checkpoint: error: {error}", file=sys.stderr)
        return 2
    from iuie.interop.hf import CheckpointError

    try:
        params, fields = _read(args)
        if os.path.exists(args.dst):
            shutil.rmtree(args.dst) if os.path.isdir(args.dst) else os.remove(args.dst)
        _write(args, params, fields)
    except CheckpointError as e:  # an unreadable or inconsistent SRC: the user's input
        print(f"iuie convert-checkpoint: error: {e}", file=sys.stderr)
        return 2
    print(
        f"wrote {args.target} checkpoint to {args.dst} ({fields['num_encoder_layers']}+"
        f"{fields['num_decoder_layers']} layers, d_model {fields['emb_dim']}, vocab {fields['vocab_size']})"
    )
    return 0
