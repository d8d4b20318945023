"""Test-only bridge to Hugging Face transformers' PyTorch T5: build a ``T5ForConditionalGeneration`` with the
same architecture and weights as an iuie ``Transformer``, without downloading anything.

The production converters live in ``iuie/interop/``; this small mapping exists so the model tests check iuie
against an implementation nobody on this team wrote, through a mapping that is readable in one screen.

transformers >= 5 always ties ``lm_head`` to ``shared`` at construction (``tie_word_embeddings`` only decides
whether the decoder output is rescaled). Flan-T5 has its own output layer, so ``build_hf_model`` gives
``lm_head`` a parameter of its own before copying weights.
"""

from __future__ import annotations

import flax.linen as nn
import numpy as np

from iuie.model.network import T5Config


def hf_config(cfg: T5Config):
    """A transformers ``T5Config`` describing the same network: T5 v1.1 (gated GELU) with an untied output layer,
    or with ``cfg.logits_via_embedding`` the original T5 tied, rescaled one."""
    import transformers

    if cfg.mlp_activations != ("gelu", "linear"):
        raise ValueError("only the gated-GELU (Flan-T5) feed-forward is mapped")
    return transformers.T5Config(
        vocab_size=cfg.vocab_size,
        d_model=cfg.emb_dim,
        d_kv=cfg.head_dim,
        d_ff=cfg.mlp_dim,
        num_layers=cfg.num_encoder_layers,
        num_decoder_layers=cfg.num_decoder_layers,
        num_heads=cfg.num_heads,
        relative_attention_num_buckets=cfg.relative_attention_num_buckets,
        relative_attention_max_distance=cfg.relative_attention_max_distance,
        dropout_rate=0.0,
        layer_norm_epsilon=cfg.layer_norm_epsilon,
        feed_forward_proj="gated-gelu",
        tie_word_embeddings=cfg.logits_via_embedding,
        pad_token_id=0,
        eos_token_id=1,
        decoder_start_token_id=0,
    )


def hf_state_dict(params, cfg: T5Config) -> dict[str, np.ndarray]:
    """iuie params (boxed or plain) -> transformers state-dict arrays (``torch.nn.Linear`` weights are (out, in))."""
    p = nn.unbox(params)
    t = lambda x: np.asarray(x, np.float32).T
    sd = {
        "shared.weight": np.asarray(p["token_embedder"]["embedding"], np.float32),
        "encoder.final_layer_norm.weight": np.asarray(p["encoder"]["encoder_norm"]["scale"]),
        "decoder.final_layer_norm.weight": np.asarray(p["decoder"]["decoder_norm"]["scale"]),
        # (heads, buckets) -> nn.Embedding(buckets, heads); HF keeps the table in block 0 of each stack.
        "encoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight": t(
            p["encoder"]["relpos_bias"]["rel_embedding"]
        ),
        "decoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight": t(
            p["decoder"]["relpos_bias"]["rel_embedding"]
        ),
    }

    if "logits_dense" in p["decoder"]:  # absent when the output layer is tied (logits_via_embedding)
        sd["lm_head.weight"] = t(p["decoder"]["logits_dense"]["kernel"])

    def attention(prefix, a):
        for hf_name, name in (("q", "query"), ("k", "key"), ("v", "value"), ("o", "out")):
            sd[f"{prefix}.{hf_name}.weight"] = t(a[name]["kernel"])

    def mlp(prefix, m):
        for name in ("wi_0", "wi_1", "wo"):
            sd[f"{prefix}.{name}.weight"] = t(m[name]["kernel"])

    for i in range(cfg.num_encoder_layers):
        lyr, pre = p["encoder"][f"layers_{i}"], f"encoder.block.{i}.layer"
        attention(f"{pre}.0.SelfAttention", lyr["attention"])
        sd[f"{pre}.0.layer_norm.weight"] = np.asarray(lyr["pre_attention_layer_norm"]["scale"])
        mlp(f"{pre}.1.DenseReluDense", lyr["mlp"])
        sd[f"{pre}.1.layer_norm.weight"] = np.asarray(lyr["pre_mlp_layer_norm"]["scale"])
    for i in range(cfg.num_decoder_layers):
        lyr, pre = p["decoder"][f"layers_{i}"], f"decoder.block.{i}.layer"
        attention(f"{pre}.0.SelfAttention", lyr["self_attention"])
        sd[f"{pre}.0.layer_norm.weight"] = np.asarray(lyr["pre_self_attention_layer_norm"]["scale"])
        attention(f"{pre}.1.EncDecAttention", lyr["encoder_decoder_attention"])
        sd[f"{pre}.1.layer_norm.weight"] = np.asarray(lyr["pre_cross_attention_layer_norm"]["scale"])
        mlp(f"{pre}.2.DenseReluDense", lyr["mlp"])
        sd[f"{pre}.2.layer_norm.weight"] = np.asarray(lyr["pre_mlp_layer_norm"]["scale"])
    return sd


def build_hf_model(params, cfg: T5Config):
    """A float32, eval-mode ``T5ForConditionalGeneration`` holding ``params``. Every HF parameter is written
    exactly once (checked), so a mapping gap fails loudly instead of leaving random weights behind."""
    import torch
    import transformers

    model = transformers.T5ForConditionalGeneration(hf_config(cfg)).float().eval()
    model.lm_head.weight = torch.nn.Parameter(torch.empty_like(model.lm_head.weight))  # untie (see docstring)
    sd = hf_state_dict(params, cfg)
    own = dict(model.named_parameters(remove_duplicate=True))
    missing = set(own) - set(sd)
    unexpected = set(sd) - set(own)
    if missing or unexpected:
        raise AssertionError(f"mapping mismatch: missing {sorted(missing)}, unexpected {sorted(unexpected)}")
    with torch.no_grad():
        for name, value in sd.items():
            if tuple(own[name].shape) != value.shape:
                raise AssertionError(f"{name}: HF {tuple(own[name].shape)} vs iuie {value.shape}")
            own[name].copy_(torch.from_numpy(np.array(value, dtype=np.float32, copy=True)))
    return model
