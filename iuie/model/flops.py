"""Exact FLOP count of a T5 encoder-decoder train step, and model FLOP utilisation (MFU).

Counted: every matrix multiplication, at 2 FLOPs per multiply-add, over the batch's full (padded) lengths,
because that is what the hardware computes: masks and packing do not skip work. Not counted: elementwise
work (norms, softmax, GELU, residual adds, dropout, the relative-position bias add) and the embedding lookup
(a gather). A train step costs 3 forward passes (the backward pass computes two matmuls per forward matmul:
gradients with respect to the input and to the weight); rematerialisation's extra forward pass is not
counted, which makes this *model* FLOPs (MFU), not hardware FLOPs.

With ``B`` rows, encoder length ``Le``, decoder length ``Ld``, ``d`` = emb_dim, ``H`` = num_heads * head_dim,
``f`` = mlp_dim, ``g`` = number of input projections of the feed-forward block (2 for Flan-T5's gated GELU,
1 for ReLU T5), ``V`` = vocabulary size::

    encoder layer   attention  2·B·Le·d·3H        query, key, value projections
                               2·B·Le·Le·H        scores  q·kᵀ (all heads)
                               2·B·Le·Le·H        context weights·v
                               2·B·Le·H·d         output projection
                    ffn        2·B·Le·d·f·g + 2·B·Le·f·d
    decoder layer   self-att.  as the encoder's, with Ld
                    cross-att. 2·B·Ld·d·H + 2·B·Le·d·2H     q from the decoder; k, v from the encoder
                               2·B·Ld·Le·H · 2              scores and context
                               2·B·Ld·H·d                   output projection
                    ffn        2·B·Ld·d·f·g + 2·B·Ld·f·d
    logits                     2·B·Ld·d·V
    train step                 3 · (Ne · encoder layer + Nd · decoder layer + logits)

Worked example, Flan-T5-XXL (d = 4096, H = 64·64 = 4096, f = 10240, g = 2, V = 32128, 24 + 24 layers) on
one row of (Le, Ld) = (512, 128)::

    encoder layer  = 2·512·4096·12288 + 2·2·512·512·4096 + 2·512·4096·4096 + 2·512·4096·10240·3
                   = 51.54e9 + 4.29e9 + 17.18e9 + 128.85e9                       = 201.86e9
    decoder layer  = self 12.88e9 + 0.27e9 + 4.29e9; cross 4.29e9 + 34.36e9 + 1.07e9 + 4.29e9;
                     ffn 32.21e9                                                  =  93.68e9
    logits         = 2·128·4096·32128                                             =  33.69e9
    forward        = 24·201.86e9 + 24·93.68e9 + 33.69e9                           = 7.127e12
    train step     = 3 · forward                                                  = 21.38e12 per row

(``tests/trainer/test_flops.py`` checks these numbers.) Against the popular 6·N·D estimate (N ≈ 11.3e9
parameters, D = 640 tokens: 43e12) the exact count is about half: an encoder-decoder's tokens each go through
only one of the two stacks, and its decoder tokens are few.
"""

from __future__ import annotations

import dataclasses
from typing import Any

# Dense (no sparsity) bfloat16 peak FLOP/s per device, matched against ``jax.Device.device_kind`` in order:
# the first entry whose key is a substring wins, so specific names come before general ones.
PEAK_FLOPS_PER_DEVICE: tuple[tuple[str, float], ...] = (
    ("H100 PCIe", 756e12),
    ("H100", 989e12),
    ("H200", 989e12),
    ("A100", 312e12),
    ("TPU v5 lite", 197e12),  # v5e's device_kind
    ("TPU v5e", 197e12),
    ("TPU v5p", 459e12),
    ("TPU v5", 459e12),
    ("TPU v4", 275e12),
    ("TPU v6 lite", 918e12),  # Trillium (v6e)
)


@dataclasses.dataclass(frozen=True)
class FlopCount:
    """Forward-pass FLOPs by part, and the train-step total (3 forward passes)."""

    encoder: float
    decoder: float
    logits: float

    @property
    def forward(self) -> float:
        return self.encoder + self.decoder + self.logits

    @property
    def train_step(self) -> float:
        return 3.0 * self.forward


def _attention_core(batch: int, queries: int, keys: int, joined: int) -> float:
    # Scores (q·kᵀ) and context (weights·v): each is heads × queries × keys × head_dim multiply-adds.
    return 2.0 * 2.0 * batch * queries * keys * joined


def _ffn(batch: int, length: int, d: int, f: int, gates: int) -> float:
    return 2.0 * batch * length * d * f * gates + 2.0 * batch * length * f * d


def count_flops(config: Any, batch_size: int, encoder_length: int, decoder_length: int) -> FlopCount:
    """Matmul FLOPs of one forward pass of the T5 encoder-decoder described by ``config``.

    ``config`` is a ``network.T5Config`` (read by attribute: ``emb_dim, num_heads, head_dim, mlp_dim,
    mlp_activations, num_encoder_layers, num_decoder_layers, vocab_size``); the tied output layer of original
    T5 (``logits_via_embedding``) costs the same matmul as an untied one.
    """
    b, le, ld = int(batch_size), int(encoder_length), int(decoder_length)
    d, f, v = int(config.emb_dim), int(config.mlp_dim), int(config.vocab_size)
    joined = int(config.num_heads) * int(config.head_dim)
    gates = len(tuple(config.mlp_activations))

    encoder_layer = (
        2.0 * b * le * d * 3 * joined
        + _attention_core(b, le, le, joined)
        + 2.0 * b * le * joined * d
        + _ffn(b, le, d, f, gates)
    )
    self_attention = 2.0 * b * ld * d * 3 * joined + _attention_core(b, ld, ld, joined) + 2.0 * b * ld * joined * d
    cross_attention = (
        2.0 * b * ld * d * joined
        + 2.0 * b * le * d * 2 * joined
        + _attention_core(b, ld, le, joined)
        + 2.0 * b * ld * joined * d
    )
    decoder_layer = self_attention + cross_attention + _ffn(b, ld, d, f, gates)
    return FlopCount(
        encoder=int(config.num_encoder_layers) * encoder_layer,
        decoder=int(config.num_decoder_layers) * decoder_layer,
        logits=2.0 * b * ld * d * v,
    )


def train_step_flops(config: Any, batch_size: int, encoder_length: int, decoder_length: int) -> float:
    """FLOPs of one train step (forward + backward) over a ``[batch_size, length]`` batch."""
    return count_flops(config, batch_size, encoder_length, decoder_length).train_step


def peak_flops(device: Any) -> float | None:
    """Peak bf16 FLOP/s of one device, or None when unknown (CPUs, unlisted accelerators)."""
    kind = str(getattr(device, "device_kind", ""))
    if getattr(device, "platform", "") == "cpu":
        return None
    for key, flops in PEAK_FLOPS_PER_DEVICE:
        if key.lower() in kind.lower():
            return flops
    return None


def mfu(flops_per_step: float, seconds_per_step: float, devices: Any) -> float | None:
    """Model FLOP utilisation: achieved FLOP/s over the summed peak of ``devices``; None if a peak is unknown."""
    devices = list(devices)
    peaks = [peak_flops(d) for d in devices]
    if not devices or any(p is None for p in peaks) or seconds_per_step <= 0:
        return None
    return flops_per_step / seconds_per_step / sum(peaks)
