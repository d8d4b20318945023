"""Tests of ``iuie.model.models.EncoderDecoderModel``.

References: Hugging Face transformers' PyTorch ``T5ForConditionalGeneration`` holding the same weights (its
``labels=`` loss, its logits for scoring, and ``generate`` for greedy and beam decoding, token for token),
hand-worked counts for the metrics, and the model's own teacher-forced scores for sampled sequences.

Settings that align the two beam searches (documented in ``iuie.model.decoding.beam_search``): iuie's
``semantics='hf'`` with ``alpha`` = HF's ``length_penalty`` and HF's ``early_stopping='never'``. HF fills
finished beams with EOS rather than padding (its fill value is ``pad_token_id or eos_token_id``, and the pad id
0 is falsy); the comparison maps everything after the first EOS to 0. Exact alignment of iuie's default
``semantics='t5x'`` with HF is impossible in general: T5X lets EOS candidates ranked between ``beams`` and
``2 * beams`` finish and scores with ``((5 + L) / 6) ** alpha`` (see ``test_decoding.py`` for a worked case).
"""

from __future__ import annotations

import dataclasses
import functools

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from iuie.model.models import EncoderDecoderModel
from tests.model.conftest import TINY_CONFIGS, fp32, init_params, pack, unpacked_batch

TOL = 1e-4
GEN_VOCAB = 24  # a small vocabulary makes EOS (id 1) likely, so generations end at different lengths


@pytest.fixture(scope="module")
def hf_available():
    pytest.importorskip("torch", reason="transformers comparisons need torch")
    pytest.importorskip("transformers", reason="transformers comparisons need transformers")


def _jnp(batch):
    return {k: jnp.asarray(v) for k, v in batch.items()}


def _model_and_batch(rng, name="h3_d5", **model_kwargs):
    cfg = fp32(TINY_CONFIGS[name])
    batch = unpacked_batch(rng, cfg.vocab_size, [17, 9, 4, 13], [7, 11, 3, 5], input_width=18, target_width=12)
    module, params = init_params(cfg, batch)
    return EncoderDecoderModel(module, **model_kwargs), params, batch


def test_initial_variables_are_boxed_and_accept_packed_shapes():
    cfg = fp32(TINY_CONFIGS["h3_d5"])
    model = EncoderDecoderModel(config=cfg)
    shapes = {k: (2, 8) for k in ("encoder_input_tokens", "encoder_segment_ids", "encoder_positions")}
    shapes.update(
        {
            k: (2, 5)
            for k in ("decoder_input_tokens", "decoder_target_tokens", "decoder_segment_ids", "decoder_positions")
        }
    )
    variables = jax.eval_shape(lambda: model.get_initial_variables(jax.random.key(0), shapes))
    leaves = jax.tree.leaves(variables["params"], is_leaf=lambda x: isinstance(x, nn.LogicallyPartitioned))
    assert leaves and all(isinstance(x, nn.LogicallyPartitioned) for x in leaves)
    assert variables["params"]["decoder"]["logits_dense"]["kernel"].value.shape == (16, 120)
    with pytest.raises(ValueError):
        EncoderDecoderModel()
    with pytest.raises(ValueError):
        EncoderDecoderModel(config=cfg, loss_normalizing_factor=2.0, loss_normalizing_by_weight_sum=True)


def test_loss_and_metrics_match_transformers(np_rng, hf_available):
    """The mean token loss (normalised by the weight sum) equals transformers' ``labels=`` loss; the summed loss,
    accuracy and counts agree with the same logits."""
    import torch

    from tests.model.hf_weights import build_hf_model

    model, params, batch = _model_and_batch(np_rng, loss_normalizing_by_weight_sum=True)
    hf = build_hf_model(params, model.config)
    labels = torch.tensor(
        np.where(batch["decoder_target_tokens"] > 0, batch["decoder_target_tokens"], -100), dtype=torch.long
    )
    with torch.no_grad():
        out = hf(
            input_ids=torch.tensor(batch["encoder_input_tokens"], dtype=torch.long),
            attention_mask=torch.tensor(batch["encoder_input_tokens"] > 0, dtype=torch.long),
            decoder_input_ids=torch.tensor(batch["decoder_input_tokens"], dtype=torch.long),
            labels=labels,
        )
    loss, metrics = jax.jit(model.loss_fn)(params, _jnp(batch), None)
    np.testing.assert_allclose(loss, out.loss.item(), rtol=TOL)

    valid = batch["decoder_target_tokens"] > 0
    hf_logits = out.logits.numpy()
    correct = np.sum((hf_logits.argmax(-1) == batch["decoder_target_tokens"]) & valid)
    assert metrics["correct"] == correct and metrics["weight_sum"] == valid.sum() == 26
    np.testing.assert_allclose(metrics["accuracy"], correct / 26, rtol=1e-6)
    assert metrics["num_examples"] == 4 and metrics["num_tokens"] == 48

    summed = EncoderDecoderModel(model.module, z_loss=1e-3)
    loss_sum, m = jax.jit(summed.loss_fn)(params, _jnp(batch), None)
    np.testing.assert_allclose(m["cross_ent_loss"], out.loss.item() * 26, rtol=TOL)
    assert m["z_loss"] > 0 and np.isclose(loss_sum, m["cross_ent_loss"] + m["z_loss"])


@pytest.mark.parametrize("normalizer", [None, "AVERAGE_PER_SEQUENCE"])
def test_packed_loss_equals_unpacked(normalizer, np_rng):
    """Packing the same four examples into two rows leaves the loss (and the example count) unchanged."""
    model, params, batch = _model_and_batch(np_rng, loss_normalizing_factor=normalizer)
    packed = pack(batch, [[0, 2], [1, 3]], input_width=32, target_width=20)
    loss_fn = jax.jit(model.loss_fn)
    loss, metrics = loss_fn(params, _jnp(batch), None)
    packed_loss, packed_metrics = loss_fn(params, _jnp(packed), None)
    np.testing.assert_allclose(packed_loss, loss, rtol=1e-5)
    assert packed_metrics["num_examples"] == metrics["num_examples"] == 4
    assert packed_metrics["weight_sum"] == metrics["weight_sum"]


def test_training_gradients_with_dropout(np_rng):
    """Dropout gradients are the derivative of the dropped-out loss, and the key decides the mask.

    Checked against central finite differences of the same loss under the same dropout key (a fixed key
    fixes every mask, so the loss is a smooth function of the parameters and ``jax.grad`` must be its
    derivative), along directions chosen to tell the right gradient from the wrong ones: the gradient
    without dropout and the gradient under another key. The same key gives bit-identical gradients.
    """
    from jax.flatten_util import ravel_pytree

    cfg = dataclasses.replace(fp32(TINY_CONFIGS["h3_d5"]), dropout_rate=0.1)
    batch = unpacked_batch(np_rng, cfg.vocab_size, [9, 4], [5, 3], input_width=9, target_width=5)
    module, params = init_params(cfg, batch)
    model = EncoderDecoderModel(module, z_loss=1e-4, label_smoothing=0.1)
    grad_fn = jax.jit(jax.value_and_grad(model.loss_fn, has_aux=True))
    params = nn.unbox(params)
    key, other_key = jax.random.key(0, impl="rbg"), jax.random.key(1, impl="rbg")
    (loss, _), grads = grad_fn(params, _jnp(batch), key)
    (loss2, _), grads2 = grad_fn(params, _jnp(batch), other_key)
    assert np.isfinite(loss) and loss != loss2
    norms = [float(jnp.linalg.norm(g)) for g in jax.tree.leaves(grads)]
    assert all(np.isfinite(norms)) and all(n > 0 for n in norms)

    (loss_again, _), grads_again = grad_fn(params, _jnp(batch), key)
    assert float(loss_again) == float(loss)
    for a, b in zip(jax.tree.leaves(grads_again), jax.tree.leaves(grads)):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    (loss0, _), grads0 = grad_fn(params, _jnp(batch), None)
    assert float(loss0) != float(loss)

    flat_params, unravel = ravel_pytree(params)
    g, g2, g0 = (ravel_pytree(t)[0] for t in (grads, grads2, grads0))
    loss_at = jax.jit(lambda flat: model.loss_fn(unravel(flat), _jnp(batch), key)[0])
    eps = 1e-2
    for name, direction in (("other key", g - g2), ("no dropout", g - g0)):
        d = direction / jnp.linalg.norm(direction)
        finite_difference = float(loss_at(flat_params + eps * d) - loss_at(flat_params - eps * d)) / (2 * eps)
        want, wrong = float(g @ d), float((g2 if name == "other key" else g0) @ d)
        tol = 0.02 * abs(want - wrong)
        assert abs(finite_difference - want) < tol, (name, finite_difference, want, wrong)
        assert abs(finite_difference - wrong) > 10 * tol, (name, finite_difference, want, wrong)


def test_score_batch_matches_transformers(np_rng, hf_available):
    import torch

    from tests.model.hf_weights import build_hf_model

    model, params, batch = _model_and_batch(np_rng, name="h5_d3")
    hf = build_hf_model(params, model.config)
    with torch.no_grad():
        logits = hf(
            input_ids=torch.tensor(batch["encoder_input_tokens"], dtype=torch.long),
            attention_mask=torch.tensor(batch["encoder_input_tokens"] > 0, dtype=torch.long),
            decoder_input_ids=torch.tensor(batch["decoder_input_tokens"], dtype=torch.long),
        ).logits
    log_probs = torch.log_softmax(logits, -1).numpy()
    targets = batch["decoder_target_tokens"]
    want = np.sum(np.take_along_axis(log_probs, targets[..., None], -1)[..., 0] * (targets > 0), axis=1)
    np.testing.assert_allclose(jax.jit(model.score_batch)(params, _jnp(batch)), want, rtol=TOL, atol=TOL)


# --------------------------------------------------------------------------------------------------------------
# Decoding against transformers' generate
# --------------------------------------------------------------------------------------------------------------


def _generation_setup(rng, name, batch_size=6, max_len=12):
    cfg = fp32(TINY_CONFIGS[name], vocab_size=GEN_VOCAB)
    inputs = np.zeros((batch_size, 10), np.int32)
    for i, n in enumerate([10, 7, 3, 10, 5, 8][:batch_size]):
        inputs[i, :n] = rng.integers(2, GEN_VOCAB, n)
    batch = {
        "encoder_input_tokens": inputs,
        "decoder_input_tokens": np.zeros((batch_size, max_len), np.int32),
        "decoder_target_tokens": np.ones((batch_size, max_len), np.int32),
    }
    module, params = init_params(cfg, batch, seed=2)
    return EncoderDecoderModel(module), params, batch


def _hf_generate(hf, inputs, max_len, **kwargs):
    import torch

    with torch.no_grad():
        out = hf.generate(
            input_ids=torch.tensor(inputs, dtype=torch.long),
            attention_mask=torch.tensor(inputs > 0, dtype=torch.long),
            max_new_tokens=max_len,
            decoder_start_token_id=0,
            **kwargs,
        )
    sequences = out.sequences if hasattr(out, "sequences") else out
    seqs = sequences.numpy()[:, 1:]  # drop the decoder start token
    seqs = np.pad(seqs, ((0, 0), (0, max_len - seqs.shape[1])))
    # HF pads finished beams with EOS: zero everything after the first EOS, as iuie does.
    after_eos = np.cumsum(np.cumsum(seqs == 1, axis=1), axis=1) > 1
    return np.where(after_eos, 0, seqs), out


@pytest.mark.parametrize("name", ["h3_d5", "h4_d8_3x2"])
def test_greedy_equals_transformers_generate(name, np_rng, hf_available):
    from tests.model.hf_weights import build_hf_model

    model, params, batch = _generation_setup(np_rng, name)
    ours = np.asarray(jax.jit(functools.partial(model.predict_batch, method="greedy"))(params, _jnp(batch)))
    theirs, _ = _hf_generate(
        build_hf_model(params, model.config), batch["encoder_input_tokens"], 12, do_sample=False, num_beams=1
    )
    np.testing.assert_array_equal(ours, theirs)
    ended = (ours == 1).any(axis=1)
    assert ended.any() and not ended.all()  # some rows stop at EOS, some run to the length limit


@pytest.mark.parametrize("beams,alpha", [(2, 0.0), (3, 0.6), (4, 1.0)])
def test_beam_search_equals_transformers_generate(beams, alpha, np_rng, hf_available):
    """All beams and their scores, with semantics='hf' and HF's early_stopping='never' (module docstring)."""
    from tests.model.hf_weights import build_hf_model

    model, params, batch = _generation_setup(np_rng, "h3_d5")
    predict = jax.jit(
        functools.partial(
            model.predict_batch_with_aux,
            method="beam",
            num_decodes=beams,
            return_all_decodes=True,
            decoder_params={"alpha": alpha, "semantics": "hf"},
        )
    )
    seqs, aux = jax.tree.map(np.asarray, predict(params, _jnp(batch)))
    theirs, out = _hf_generate(
        build_hf_model(params, model.config),
        batch["encoder_input_tokens"],
        12,
        do_sample=False,
        num_beams=beams,
        num_return_sequences=beams,
        length_penalty=alpha,
        early_stopping="never",
        output_scores=True,
        return_dict_in_generate=True,
    )
    theirs = theirs.reshape(seqs.shape)
    np.testing.assert_array_equal(seqs[:, ::-1], theirs)  # iuie: best last; HF: best first
    np.testing.assert_allclose(
        aux["scores"][:, ::-1], out.sequences_scores.numpy().reshape(aux["scores"].shape), atol=TOL, rtol=0
    )


def test_sampled_scores_equal_teacher_forced_scores(np_rng):
    """Each sampled sequence's reported log-probability equals the teacher-forced log-likelihood of that sequence
    (reference: the teacher-forced pass, itself checked against transformers). A hook bans the pad token, so
    scores are under the renormalised distribution: the reference applies the same ban."""
    model, params, batch = _generation_setup(np_rng, "h3_d5", batch_size=3, max_len=8)
    no_pad = lambda step, seqs, logits: logits.at[:, 0].set(-1e7)
    predict = jax.jit(
        functools.partial(
            model.predict_batch_with_aux,
            method="sample",
            num_decodes=2,
            return_all_decodes=True,
            logits_mask_fn=no_pad,
            decoder_params={"temperature": 1.0, "topk": 0},
        )
    )
    seqs, aux = jax.tree.map(np.asarray, predict(params, _jnp(batch), jax.random.key(4)))
    targets = seqs.reshape(-1, 8)
    logits = jax.jit(model.compute_logits)(
        params,
        _jnp(
            {
                "encoder_input_tokens": np.repeat(batch["encoder_input_tokens"], 2, axis=0),
                "decoder_input_tokens": np.concatenate([np.zeros_like(targets[:, :1]), targets[:, :-1]], axis=1),
                "decoder_target_tokens": targets,
            }
        ),
    )
    log_probs = jax.nn.log_softmax(logits.at[..., 0].set(-1e7))
    token = np.take_along_axis(np.asarray(log_probs), targets[..., None], -1)[..., 0]
    want = np.sum(token * (targets > 0), axis=1)  # no pad inside a sequence: zeros only follow EOS
    np.testing.assert_allclose(aux["scores"].reshape(-1), want, rtol=1e-4, atol=1e-4)
    assert (targets == 1).any()


def test_predict_with_mask_hook_and_prompt(np_rng):
    """A hook banning EOS makes every greedy decode run to the length limit; ``prompt_with_targets`` forces the
    given prefix (its EOS stripped)."""
    model, params, batch = _generation_setup(np_rng, "h3_d5", batch_size=3, max_len=8)
    prompt = np.zeros((3, 8), np.int32)
    prompt[:, 1:3] = [[5, 6], [7, 1], [9, 9]]  # right-shifted: outputs 0-1 are forced (an EOS is dropped)
    no_eos = lambda step, seqs, logits: logits.at[:, :2].set(-1e7)  # neither pad nor EOS
    predict = jax.jit(
        functools.partial(model.predict_batch, method="greedy", logits_mask_fn=no_eos, prompt_with_targets=True)
    )
    out = np.asarray(predict(params, _jnp({**batch, "decoder_input_tokens": prompt})))
    assert out[0, :2].tolist() == [5, 6] and out[1, 0] == 7 and out[2, :2].tolist() == [9, 9]
    assert np.all(out != 1) and np.all(out != 0)


def test_all_zero_padding_rows_decode_nothing_and_leave_real_rows_alone(np_rng):
    """An all-zero input row (padding that fills a fixed batch shape) is ended from the first step: its decode is
    all zeros, and the real rows decode exactly as in a batch without it (reference: the same model on the real
    rows alone)."""
    model, params, batch = _generation_setup(np_rng, "h3_d5", batch_size=3, max_len=8)
    predict = jax.jit(functools.partial(model.predict_batch, method="greedy"))
    alone = np.asarray(predict(params, _jnp(batch)))
    padded = {k: np.concatenate([v, np.zeros((2,) + v.shape[1:], v.dtype)]) for k, v in batch.items()}
    out = np.asarray(predict(params, _jnp(padded)))
    np.testing.assert_array_equal(out[:3], alone)
    np.testing.assert_array_equal(out[3:], 0)
