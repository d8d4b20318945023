"""The T5 FLOP count against a count by hand and against XLA's own count; MFU and the peak table.

References: (1) every matmul of a tiny config multiplied out below, and the Flan-T5-XXL worked example of
``iuie/model/flops.py``'s docstring; (2) ``compiled.cost_analysis()['flops']`` of the real network
(``iuie.model.models``), jitted. XLA also counts elementwise work (softmax, norms, GELU, residual adds), which the
model-FLOP count leaves out, so XLA's number must be at least ours and at most 10% above it (measured: 2.7%
forward, 3.9% forward + backward on this config; the share shrinks as the model grows).
"""

from __future__ import annotations

import types

import flax.linen as nn
import jax
import jax.numpy as jnp
import pytest

from iuie.model import flops

TINY = dict(
    vocab_size=512,
    emb_dim=64,
    num_heads=4,
    head_dim=16,
    mlp_dim=256,
    num_encoder_layers=1,
    num_decoder_layers=1,
    mlp_activations=("gelu", "linear"),
)
B, LE, LD = 2, 32, 16


def test_tiny_count_by_hand():
    config = types.SimpleNamespace(**TINY)
    # d = 64, H = 4 * 16 = 64, f = 256, V = 512, gated FFN (two input projections).
    encoder = (
        2 * B * LE * 64 * 64 * 3  # q, k, v
        + 2 * B * 4 * LE * LE * 16  # scores
        + 2 * B * 4 * LE * LE * 16  # context
        + 2 * B * LE * 64 * 64  # out
        + 2 * B * LE * 64 * 256 * 2
        + 2 * B * LE * 256 * 64  # wi_0, wi_1, wo
    )
    decoder = (
        2 * B * LD * 64 * 64 * 3
        + 2 * 2 * B * 4 * LD * LD * 16
        + 2 * B * LD * 64 * 64  # self-attention
        + 2 * B * LD * 64 * 64
        + 2 * B * LE * 64 * 64 * 2  # cross: q from decoder, k and v from encoder
        + 2 * 2 * B * 4 * LD * LE * 16
        + 2 * B * LD * 64 * 64  # cross: scores, context, out
        + 2 * B * LD * 64 * 256 * 2
        + 2 * B * LD * 256 * 64  # ffn
    )
    logits = 2 * B * LD * 64 * 512
    count = flops.count_flops(config, B, LE, LD)
    assert (count.encoder, count.decoder, count.logits) == (encoder, decoder, logits)
    assert count.forward == 17_170_432
    assert flops.train_step_flops(config, B, LE, LD) == 3 * count.forward


def test_flan_t5_xxl_worked_example():
    config = types.SimpleNamespace(
        vocab_size=32128,
        emb_dim=4096,
        num_heads=64,
        head_dim=64,
        mlp_dim=10240,
        num_encoder_layers=24,
        num_decoder_layers=24,
        mlp_activations=("gelu", "linear"),
    )
    count = flops.count_flops(config, 1, 512, 128)
    assert count.encoder / 24 == pytest.approx(201.86e9, rel=1e-4)
    assert count.decoder / 24 == pytest.approx(93.68e9, rel=1e-4)
    assert count.logits == pytest.approx(33.69e9, rel=1e-4)
    assert count.train_step == pytest.approx(21.38e12, rel=1e-3)


def test_count_agrees_with_xla_cost_analysis():
    from iuie.model import models, network

    config = network.T5Config(dtype="float32", dropout_rate=0.0, **TINY)
    model = models.EncoderDecoderModel(config=config)
    shapes = {"encoder_input_tokens": (B, LE), "decoder_input_tokens": (B, LD)}
    params = jax.eval_shape(
        lambda r: nn.meta.unbox(model.get_initial_variables(r, shapes)["params"]), jax.random.key(0)
    )
    batch = {
        "encoder_input_tokens": jax.ShapeDtypeStruct((B, LE), jnp.int32),
        "decoder_input_tokens": jax.ShapeDtypeStruct((B, LD), jnp.int32),
        "decoder_target_tokens": jax.ShapeDtypeStruct((B, LD), jnp.int32),
        "decoder_loss_weights": jax.ShapeDtypeStruct((B, LD), jnp.float32),
    }

    def xla_flops(fn):
        analysis = jax.jit(fn).lower(params, batch).compile().cost_analysis()
        return (analysis[0] if isinstance(analysis, list) else analysis)["flops"]

    count = flops.count_flops(config, B, LE, LD)
    forward = xla_flops(lambda p, b: model.compute_logits(p, b))
    assert count.forward <= forward <= 1.10 * count.forward
    train = xla_flops(jax.grad(lambda p, b: model.loss_fn(p, b, None)[0]))
    assert count.train_step <= train <= 1.10 * count.train_step


@pytest.mark.parametrize(
    "kind, platform, peak",
    [
        ("NVIDIA H100 80GB HBM3", "gpu", 989e12),
        ("NVIDIA H100 PCIe", "gpu", 756e12),
        ("NVIDIA A100-SXM4-40GB", "gpu", 312e12),
        ("TPU v4", "tpu", 275e12),
        ("TPU v5 lite", "tpu", 197e12),
        ("TPU v5p", "tpu", 459e12),
        ("cpu", "cpu", None),
        ("Some Future Chip", "gpu", None),
    ],
)
def test_peak_flops_table(kind, platform, peak):
    assert flops.peak_flops(types.SimpleNamespace(device_kind=kind, platform=platform)) == peak


def test_mfu():
    h100 = types.SimpleNamespace(device_kind="NVIDIA H100 80GB HBM3", platform="gpu")
    # 2 devices * 989e12 peak; 989e12 FLOPs in 2 s is a quarter of it.
    assert flops.mfu(989e12, 2.0, [h100, h100]) == pytest.approx(0.25)
    assert flops.mfu(1e12, 1.0, jax.devices()) is None  # CPU: no peak, no MFU
