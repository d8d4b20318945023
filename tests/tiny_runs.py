"""Shared by the tests that run the binaries in a subprocess: the tiny model's gin bindings and the env.

A 1+1-layer, 32-wide FlanT5 on short synthetic examples: enough to exercise training, checkpoints,
evaluation and extraction end to end in seconds (quality is not what those tests check).
"""

from __future__ import annotations

import os
import pathlib
import socket

REPO = pathlib.Path(__file__).resolve().parent.parent

TINY_MODEL_BINDINGS = [
    "--gin.network.T5Config.emb_dim=32",
    "--gin.network.T5Config.mlp_dim=64",
    "--gin.network.T5Config.head_dim=8",
    "--gin.network.T5Config.num_encoder_layers=1",
    "--gin.network.T5Config.num_decoder_layers=1",
    "--gin.TASK_FEATURE_LENGTHS={'inputs': 128, 'targets': 32}",
]


def subprocess_env(**extra: str) -> dict:
    """The environment of a binary run from the checkout: the repo on PYTHONPATH, CPU only, quiet TF."""
    return dict(
        os.environ,
        PYTHONPATH=os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]),
        JAX_PLATFORMS="cpu",
        TF_CPP_MIN_LOG_LEVEL="2",
        **extra,
    )


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now: the coordinator of a multi-process test run."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
