"""``EncoderDecoderModel``: the FlanT5 network wrapped with a loss, decoding and scoring, in the style of T5X's
``t5x/models.py`` (without the optimizer, which belongs to the trainer).

Batches use seqio's EncDecFeatureConverter feature names::

  encoder_input_tokens   [batch, inputs_len]   int, 0 = padding
  decoder_input_tokens   [batch, targets_len]  int, targets shifted right, starting with 0
  decoder_target_tokens  [batch, targets_len]  int, ending with EOS (1), 0 = padding
  decoder_loss_weights   [batch, targets_len]  0/1 (or float) per-token weights
  + encoder_segment_ids, decoder_segment_ids, encoder_positions, decoder_positions when packed

Every method is a pure function of ``params`` and the batch, so it can be wrapped in ``jax.jit`` (pass
``method``, ``num_decodes``, ``max_decode_length`` and ``logits_mask_fn`` as static values, e.g. with
``functools.partial``).
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from iuie.model import decoding, losses
from iuie.model.network import T5Config, Transformer

Array = jax.Array
PyTree = Any
Batch = Mapping[str, Array]

DECODE_METHODS = ("greedy", "sample", "beam")
PAD_ID = 0  # also the decoder start token, as in T5


def count_packed_examples(segment_ids: Array) -> Array:
    """Number of distinct non-padding segments in a ``[batch, length]`` segment-id array (seqio numbering)."""
    padded_rows_end = jnp.sum(segment_ids[:, -1] == 0)
    changes = jnp.sum(jnp.diff(segment_ids, axis=1) != 0)
    return changes + segment_ids.shape[0] - padded_rows_end


class EncoderDecoderModel:
    """A T5X-style model: ``loss_fn``, ``predict_batch(_with_aux)``, ``score_batch``, ``get_initial_variables``.

    Args:
      module: the Flax network (``iuie.model.network.Transformer``); built from ``config`` when None.
      config: the network config; read from ``module.config`` when None.
      input_vocabulary, output_vocabulary: optional seqio vocabularies, kept for the trainer and binaries; the
        model itself only needs ``output_vocabulary.eos_id`` (default 1).
      z_loss: coefficient of T5's auxiliary z-loss (``losses.cross_entropy_with_logits``).
      label_smoothing: label smoothing of the training targets.
      loss_normalizing_factor: None (plain token sum, T5X's default), a constant, or a
        ``losses.SpecialLossNormalizingFactor`` (or its name: 'NUM_REAL_TARGET_TOKENS', 'NUM_TOTAL_TARGET_TOKENS',
        'AVERAGE_PER_SEQUENCE').
      loss_normalizing_by_weight_sum: shorthand for 'NUM_REAL_TARGET_TOKENS' (a per-token mean); cannot be
        combined with ``loss_normalizing_factor``.
      decode_method: default of ``predict_batch``: 'greedy', 'sample' or 'beam'.
      num_decodes: default beam size / number of samples.
      decoder_params: default keyword arguments of the decode function (e.g. ``{'alpha': 0.6}`` for beam search,
        ``{'temperature': 0.7, 'topk': 40}`` for sampling), overridden per call.
    """

    def __init__(
        self,
        module: nn.Module | None = None,
        config: T5Config | None = None,
        *,
        input_vocabulary: Any = None,
        output_vocabulary: Any = None,
        z_loss: float = 0.0,
        label_smoothing: float = 0.0,
        loss_normalizing_factor: float | str | losses.SpecialLossNormalizingFactor | None = None,
        loss_normalizing_by_weight_sum: bool = False,
        decode_method: str = "greedy",
        num_decodes: int = 1,
        decoder_params: Mapping[str, Any] | None = None,
    ):
        if module is None:
            if config is None:
                raise ValueError("EncoderDecoderModel needs a module or a config")
            module = Transformer(config)
        self.module = module
        self.config = config if config is not None else getattr(module, "config", None)
        self.input_vocabulary = input_vocabulary
        self.output_vocabulary = output_vocabulary
        self.z_loss = z_loss
        self.label_smoothing = label_smoothing
        if loss_normalizing_by_weight_sum:
            if loss_normalizing_factor is not None:
                raise ValueError("set loss_normalizing_factor or loss_normalizing_by_weight_sum, not both")
            loss_normalizing_factor = losses.SpecialLossNormalizingFactor.NUM_REAL_TARGET_TOKENS
        self.loss_normalizing_factor = loss_normalizing_factor
        if decode_method not in DECODE_METHODS:
            raise ValueError(f"decode_method must be one of {DECODE_METHODS}, got {decode_method!r}")
        self.decode_method = decode_method
        self.num_decodes = num_decodes
        self.decoder_params = dict(decoder_params or {})

    @property
    def eos_id(self) -> int:
        eos = getattr(self.output_vocabulary, "eos_id", None)
        return decoding.EOS_ID if eos is None else int(eos)

    # --------------------------------------------------------------------------------------------------------------
    # Initialisation and forward passes
    # --------------------------------------------------------------------------------------------------------------

    def get_initial_variables(
        self,
        rng: Array,
        input_shapes: Mapping[str, tuple[int, ...]],
        input_types: Mapping[str, Any] | None = None,
    ) -> PyTree:
        """Initial variables ``{'params': ...}`` for batches of the given feature shapes.

        The leaves are ``flax.linen.LogicallyPartitioned`` boxes carrying T5X's logical axis names: use
        ``nn.get_partition_spec`` (e.g. on ``jax.eval_shape`` of this method) for sharding, and ``nn.unbox`` for
        plain arrays. Every method of this class accepts boxed or plain params.
        """
        input_types = input_types or {}

        def ones(name, default_dtype=jnp.int32):
            if name not in input_shapes:
                return None
            return jnp.ones(input_shapes[name], input_types.get(name, default_dtype))

        decoder_shape = input_shapes.get("decoder_input_tokens", input_shapes.get("decoder_target_tokens"))
        return self.module.init(
            {"params": rng},
            ones("encoder_input_tokens"),
            jnp.ones(decoder_shape, jnp.int32),
            jnp.ones(decoder_shape, jnp.int32),
            encoder_segment_ids=ones("encoder_segment_ids"),
            decoder_segment_ids=ones("decoder_segment_ids"),
            encoder_positions=ones("encoder_positions"),
            decoder_positions=ones("decoder_positions"),
            enable_dropout=False,
        )

    def compute_logits(self, params: PyTree, batch: Batch, dropout_rng: Array | None = None) -> Array:
        """Teacher-forced logits ``[batch, targets_len, vocab]`` (float32); dropout iff ``dropout_rng`` is given."""
        return self.module.apply(
            {"params": params},
            batch["encoder_input_tokens"],
            batch["decoder_input_tokens"],
            batch["decoder_target_tokens"],
            encoder_segment_ids=batch.get("encoder_segment_ids"),
            decoder_segment_ids=batch.get("decoder_segment_ids"),
            encoder_positions=batch.get("encoder_positions"),
            decoder_positions=batch.get("decoder_positions"),
            enable_dropout=dropout_rng is not None,
            rngs={"dropout": dropout_rng} if dropout_rng is not None else None,
        )

    # --------------------------------------------------------------------------------------------------------------
    # Training loss
    # --------------------------------------------------------------------------------------------------------------

    def loss_fn(self, params: PyTree, batch: Batch, dropout_rng: Array | None) -> tuple[Array, dict[str, Array]]:
        """Cross-entropy training loss and metrics.

        Returns:
          ``(loss, metrics)``; ``loss`` is the scalar to differentiate (z-loss included, normalised as configured).
          ``metrics`` holds scalars: ``loss``, ``z_loss``, ``cross_ent_loss`` (= loss - z_loss), ``accuracy``
          (weighted fraction of argmax-correct target tokens), ``correct`` and ``weight_sum`` (its numerator and
          denominator, for exact aggregation across steps), ``num_examples`` (packed examples counted) and
          ``num_tokens`` (target positions, padding included).
        """
        logits = self.compute_logits(params, batch, dropout_rng)
        factor, weights = losses.get_loss_normalizing_factor_and_weights(self.loss_normalizing_factor, batch)
        loss, z_loss, _ = losses.compute_weighted_cross_entropy(
            logits,
            batch["decoder_target_tokens"],
            weights=weights,
            label_smoothing=self.label_smoothing,
            z_loss=self.z_loss,
            loss_normalizing_factor=factor,
        )
        return loss, self._metrics(logits, batch, loss, z_loss)

    def _metrics(self, logits: Array, batch: Batch, loss: Array, z_loss: Array) -> dict[str, Array]:
        targets = batch["decoder_target_tokens"]
        # Accuracy counts real tokens (the batch's loss weights, or non-padding), whatever loss normaliser is used.
        mask = batch.get("decoder_loss_weights")
        mask = (targets > 0) if mask is None else (mask > 0)
        mask = mask.astype(jnp.float32)
        correct = jnp.sum((jnp.argmax(logits, axis=-1) == targets) * mask)
        weight_sum = jnp.sum(mask)
        segments = batch.get("decoder_segment_ids")
        num_examples = count_packed_examples(segments) if segments is not None else jnp.asarray(targets.shape[0])
        return {
            "loss": loss,
            "z_loss": z_loss,
            "cross_ent_loss": loss - z_loss,
            "accuracy": correct / jnp.maximum(weight_sum, 1.0),
            "correct": correct,
            "weight_sum": weight_sum,
            "num_examples": num_examples,
            "num_tokens": jnp.asarray(targets.size),
        }

    # --------------------------------------------------------------------------------------------------------------
    # Scoring
    # --------------------------------------------------------------------------------------------------------------

    def score_batch(self, params: PyTree, batch: Batch) -> Array:
        """Log-likelihood of each example's targets, ``[batch]``: the sum over target tokens of
        ``log p(token | prefix, inputs)`` times ``decoder_loss_weights`` (non-padding targets when absent).
        No z-loss and no label smoothing: those shape training, not the scores."""
        logits = self.compute_logits(params, batch)
        targets = batch["decoder_target_tokens"]
        weights = batch.get("decoder_loss_weights")
        weights = (targets > 0) if weights is None else weights
        token_scores = jnp.take_along_axis(jax.nn.log_softmax(logits), targets[..., None], axis=-1)[..., 0]
        return jnp.sum(token_scores * weights, axis=-1)

    # --------------------------------------------------------------------------------------------------------------
    # Decoding
    # --------------------------------------------------------------------------------------------------------------

    def encode(self, params: PyTree, encoder_input_tokens: Array) -> Array:
        return self.module.apply(
            {"params": params}, encoder_input_tokens, enable_dropout=False, method=self.module.encode
        )

    def init_decode_cache(
        self, params: PyTree, encoded: Array, encoder_input_tokens: Array, max_decode_length: int
    ) -> PyTree:
        """The decoder's cache for ``max_decode_length`` steps: self-attention keys/values (zeros) and the
        cross-attention keys/values projected once from ``encoded``. Every leaf has the batch as its leading axis."""
        batch = encoder_input_tokens.shape[0]
        # One real step at position 0 with the start token creates every cache; the start token's own
        # key/value it writes at slot 0 are exactly what decoding step 0 writes there again.
        _, variables = self.module.apply(
            {"params": params},
            encoded,
            encoder_input_tokens,
            jnp.zeros((batch, 1), jnp.int32),
            decoder_positions=jnp.zeros((batch, 1), jnp.int32),
            enable_dropout=False,
            decode=True,
            max_decode_length=max_decode_length,
            mutable=["cache"],
            method=self.module.decode,
        )
        return variables["cache"]

    def make_tokens_to_logits(
        self, params: PyTree, encoder_input_tokens: Array, max_decode_length: int
    ) -> decoding.TokensToLogits:
        """The decode step for ``decoding``: ``encoder_input_tokens`` must already have one row per decode row
        (it only provides the encoder padding mask; the encodings live in the cache)."""

        def tokens_to_logits(state: decoding.DecodingState) -> tuple[Array, PyTree]:
            rows = state.cur_token.shape[0]
            logits, variables = self.module.apply(
                {"params": params, "cache": state.cache},
                None,
                encoder_input_tokens,
                state.cur_token,
                decoder_positions=jnp.full((rows, 1), state.cur_index, jnp.int32),
                enable_dropout=False,
                decode=True,
                max_decode_length=max_decode_length,
                mutable=["cache"],
                method=self.module.decode,
            )
            return logits[:, 0, :], variables["cache"]

        return tokens_to_logits

    def predict_batch_with_aux(
        self,
        params: PyTree,
        batch: Batch,
        rng: Array | None = None,
        *,
        decoder_params: Mapping[str, Any] | None = None,
        num_decodes: int | None = None,
        method: str | None = None,
        max_decode_length: int | None = None,
        logits_mask_fn: decoding.LogitsMaskFn | None = None,
        return_all_decodes: bool = False,
        prompt_with_targets: bool = False,
    ) -> tuple[Array, dict[str, Array]]:
        """Decodes the batch's inputs.

        Args:
          params: model parameters.
          batch: needs ``encoder_input_tokens``; ``decoder_input_tokens`` gives the default decode length (and the
            prompt with ``prompt_with_targets``).
          rng: PRNG key for sampling (``decode_rng``).
          decoder_params: keyword arguments for the decode function, over the model's defaults: beam search takes
            ``alpha`` and ``semantics`` ('t5x' or 'hf'), sampling ``temperature`` and ``topk``.
          num_decodes: beam size / samples per example (model default when None).
          method: 'greedy', 'sample' or 'beam' (model default when None).
          max_decode_length: tokens to generate at most (default: ``decoder_input_tokens.shape[1]``).
          logits_mask_fn: ``(step, sequences, logits) -> logits`` hook (see ``iuie.model.decoding``).
          return_all_decodes: return every beam / sample, not only the best.
          prompt_with_targets: force ``decoder_input_tokens`` (EOS removed) as a prefix of every output.

        Returns:
          ``(decodes, {'scores': ...})``: ``[batch, max_len]`` and ``[batch]``, or with ``return_all_decodes``
          ``[batch, num_decodes, max_len]`` and ``[batch, num_decodes]`` sorted by increasing score (best last).
          Scores are summed log-probabilities (beam search: divided by its length penalty).
        """
        method = method or self.decode_method
        if method not in DECODE_METHODS:
            raise ValueError(f"method must be one of {DECODE_METHODS}, got {method!r}")
        num_decodes = num_decodes or self.num_decodes
        params_for_decoder = {**self.decoder_params, **(decoder_params or {})}
        encoder_input_tokens = batch["encoder_input_tokens"]
        batch_size = encoder_input_tokens.shape[0]
        if max_decode_length is None:
            if "decoder_input_tokens" not in batch:
                raise ValueError("pass max_decode_length or a batch with decoder_input_tokens")
            max_decode_length = batch["decoder_input_tokens"].shape[1]

        if prompt_with_targets:
            prompt = batch["decoder_input_tokens"]
            prompt = jnp.where(prompt == self.eos_id, 0, prompt)
        else:
            prompt = jnp.zeros((batch_size, max_decode_length), jnp.int32)

        encoded = self.encode(params, encoder_input_tokens)
        cache = self.init_decode_cache(params, encoded, encoder_input_tokens, max_decode_length)
        tokens_to_logits = self.make_tokens_to_logits(
            params, decoding.expand_rows(encoder_input_tokens, num_decodes), max_decode_length
        )
        common = dict(
            eos_id=self.eos_id,
            num_decodes=num_decodes,
            logits_mask_fn=logits_mask_fn,
            max_decode_len=max_decode_length,
        )
        if method == "beam":
            decode_fn = functools.partial(decoding.beam_search, **common)
        else:
            if method == "greedy":
                params_for_decoder["temperature"] = 0.0
            if rng is not None:
                params_for_decoder["decode_rng"] = rng
            # An all-zero input row is padding (a real input ends with EOS): it counts as ended from the
            # first step, so the decode loop stops when the real rows end (a fixed-shape batch padded with
            # such rows, e.g. by iuie.model.batch_decode or the server's row buckets, costs no extra steps).
            params_for_decoder.setdefault("finished", jnp.all(encoder_input_tokens == PAD_ID, axis=1))
            decode_fn = functools.partial(decoding.temperature_sample, **common)
        decodes, scores = decode_fn(prompt, cache, tokens_to_logits, **params_for_decoder)
        if return_all_decodes:
            return decodes, {"scores": scores}
        return decodes[:, -1, :], {"scores": scores[:, -1]}

    def predict_batch(self, params: PyTree, batch: Batch, rng: Array | None = None, **kwargs) -> Array:
        """Best decode per example, ``[batch, max_len]`` (see ``predict_batch_with_aux`` for the arguments)."""
        return self.predict_batch_with_aux(params, batch, rng, **kwargs)[0]
