"""Fixtures of the extraction tests: a random tiny model in process, and a checkpoint trained by the real
``python -m iuie.train`` binary (a few steps of ``t5x_configs/demo_cpu.gin`` shrunk as in tests/binaries)."""

from __future__ import annotations

import pathlib
import subprocess
import sys

import pytest

from tests.tiny_runs import TINY_MODEL_BINDINGS, subprocess_env

REPO = pathlib.Path(__file__).resolve().parents[2]
TINY = TINY_MODEL_BINDINGS + [
    "--gin.TRAIN_STEPS=2",
    "--gin.BATCH_SIZE=4",
    "--gin.configs.ScheduleConfig.warmup_steps=1",
    "--gin.EVAL_AT_END=False",
    "--gin.PACKING_WINDOW=32",
]


@pytest.fixture(scope="session")
def trained_checkpoint(tmp_path_factory) -> pathlib.Path:
    """A MODEL_DIR trained for 2 steps (quality is irrelevant: the tests check the pipeline)."""
    model_dir = tmp_path_factory.mktemp("extract_train")
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "iuie.train",
            "--gin_file=t5x_configs/demo_cpu.gin",
            f"--gin.MODEL_DIR='{model_dir}'",
            *TINY,
        ],
        cwd=REPO,
        env=subprocess_env(),
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-5000:]
    return model_dir


def random_extractor(**kwargs):
    """An Extractor over a randomly initialised tiny model and the project's vocabulary."""
    import flax.linen as nn
    import jax

    from iuie.extraction.extractor import Extractor
    from iuie.model.models import EncoderDecoderModel
    from iuie.model.network import T5Config
    from iuie.pipeline import vocab

    vocabulary = vocab.get_vocabulary()
    size = -(-vocabulary.tokenizer.get_piece_size() // 128) * 128
    config = T5Config(
        vocab_size=size,
        emb_dim=16,
        num_heads=2,
        head_dim=8,
        mlp_dim=32,
        num_encoder_layers=1,
        num_decoder_layers=1,
        dtype="float32",
        dropout_rate=0.0,
    )
    model = EncoderDecoderModel(config=config)
    shapes = {"encoder_input_tokens": (1, 8), "decoder_input_tokens": (1, 8)}
    params = nn.meta.unbox(model.get_initial_variables(jax.random.key(kwargs.pop("seed", 0)), shapes)["params"])
    return Extractor(params, config, vocabulary, **kwargs)
