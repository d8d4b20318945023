"""Decoding for evaluation and inference: sharded over the data axis and the processes, each example once.

A :class:`Predictor` decodes rows of input token ids with the model's ``predict_batch`` (the model gin's
``DECODE_METHOD``) through :func:`iuie.model.batch_decode.decode_rows`, the decode path the ``Extractor``
uses too:

* **Sharded.** Every batch of ``batch_size`` rows is placed with the partitioner's batch sharding: its rows
  are split over the mesh's data axis, and so over the processes (each process materialises only the rows
  of its own devices; every process holds the whole evaluation set, as seqio's ``Evaluator`` caches it).
  Each example is decoded exactly once, on one data shard; the decodes are gathered to every process
  (replicated output), so predictions and metrics are those of a one-device run, in input order.
* **Padding never leaks.** A last partial batch is filled with padding rows so that the shape stays fixed;
  they are dropped before anything is returned, so they never reach metrics or a predictions file.
* **Length buckets.** Rows are sorted by input length and each batch is padded only to the next power of
  two of its longest row (from 32, capped at the feature length), so batches pad less; a few shapes compile.
  The decode padding share before (input order, full feature length) and after is logged.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from iuie.model import batch_decode
from iuie.runtime import gin_flags

logger = logging.getLogger("iuie.evaluation")


def abstract_params(model: Any, partitioner: Any, feature_lengths: Mapping[str, int]) -> Any:
    """Parameter shapes with their shardings, without allocating anything."""
    import flax.linen as nn
    import jax

    shapes = {
        "encoder_input_tokens": (1, feature_lengths["inputs"]),
        "decoder_input_tokens": (1, feature_lengths["targets"]),
    }
    boxed = jax.eval_shape(lambda rng: model.get_initial_variables(rng, shapes)["params"], jax.random.key(0))
    shardings = partitioner.param_shardings(boxed)
    return jax.tree.map(
        lambda a, s: jax.ShapeDtypeStruct(a.shape, a.dtype, sharding=s), nn.meta.unbox(boxed), shardings
    )


def input_length(row: np.ndarray) -> int:
    """Tokens of a padded input row up to its last non-padding id."""
    nonzero = np.flatnonzero(np.asarray(row))
    return int(nonzero[-1]) + 1 if len(nonzero) else 0


class Predictor:
    """Decodes rows of input ids for one model and partitioner (module docstring).

    Args:
      model: an ``iuie.model.models.EncoderDecoderModel``.
      partitioner: an ``iuie.training.partitioning.Partitioner``: the mesh, the parameter and batch shardings.
      batch_size: rows per decode call (global, over all processes); a multiple of the data-parallel size.
      length_buckets: sort rows into length buckets (else input order at the full feature length).
    """

    def __init__(self, model: Any, partitioner: Any, batch_size: int, *, length_buckets: bool = True):
        data_parallel = partitioner.data_parallel_size
        if batch_size < 1 or batch_size % data_parallel:
            raise gin_flags.GinConfigError(
                f"the evaluation batch size {batch_size} must be a positive multiple of the data-parallel size "
                f"({data_parallel}: the rows of a batch are split over the data axis)"
            )
        self.model = model
        self.partitioner = partitioner
        self.batch_size = int(batch_size)
        self.length_buckets = bool(length_buckets)
        self.last_stats = batch_decode.DecodeStats()
        self._decoders: dict[int, Any] = {}

    def _decoder(self, max_decode_length: int):
        import jax

        if max_decode_length not in self._decoders:
            model = self.model

            def decode(params, tokens):
                return model.predict_batch(
                    params, {"encoder_input_tokens": tokens}, max_decode_length=max_decode_length
                )

            self._decoders[max_decode_length] = jax.jit(decode, out_shardings=self.partitioner.replicated)
        return self._decoders[max_decode_length]

    def decode(
        self, params: Any, rows: Sequence[Sequence[int]], *, max_input_length: int, max_decode_length: int
    ) -> list[np.ndarray]:
        """One decode (``[max_decode_length]`` ids) per row, in the order of ``rows``; ``self.last_stats``
        then holds the counts of this call."""
        decoder = self._decoder(int(max_decode_length))
        partitioner = self.partitioner

        def run(tokens, _rows):
            with partitioner.context():
                return decoder(params, tokens)

        if self.length_buckets:
            length_of = lambda n: batch_decode.bucket_length(n, max_input_length)  # noqa: E731
        else:
            length_of = lambda n: max(n, max_input_length)  # noqa: E731
        stats = batch_decode.DecodeStats()
        decodes = batch_decode.decode_rows(
            run,
            rows,
            batch_size=self.batch_size,
            length_of=length_of,
            sharding=partitioner.batch_sharding(2),
            sort_by_length=self.length_buckets,
            stats=stats,
        )
        self.last_stats = stats
        if rows:
            before = batch_decode.padding_share(
                [len(r) for r in rows], self.batch_size, lambda n: max(n, max_input_length), sort=False
            )
            logger.info(
                "decode padding: %.1f%% of input positions in input order at length %d -> %.1f%% %s "
                "(%d examples, %d batches of %d, %d padding rows)",
                100 * before,
                max_input_length,
                100 * stats.padding_share,
                "sorted into length buckets" if self.length_buckets else "as is",
                stats.rows,
                stats.batches,
                self.batch_size,
                stats.padding_rows,
            )
        return decodes

    def predict_fn(self, params: Any):
        """seqio's ``predict_fn``: ``dataset of (index, features) -> [(index, token ids)]`` for ``params``."""

        def predict_fn(dataset) -> list[tuple[int, list[int]]]:
            indices, rows = [], []
            max_input_length, max_decode_length = 1, 1
            for index, features in dataset.as_numpy_iterator():
                encoder = np.asarray(features["encoder_input_tokens"], np.int32)
                max_input_length = max(max_input_length, encoder.shape[-1])
                max_decode_length = max(max_decode_length, np.shape(features["decoder_input_tokens"])[-1])
                indices.append(int(index))
                rows.append(encoder[: input_length(encoder)])
            decodes = self.decode(params, rows, max_input_length=max_input_length, max_decode_length=max_decode_length)
            return [(i, d.tolist()) for i, d in zip(indices, decodes)]

        return predict_fn


def make_predict_fn(model: Any, partitioner: Any, batch_size: int, *, length_buckets: bool = True):
    """``params -> predict_fn`` (seqio's, see :meth:`Predictor.predict_fn`); the decode is compiled once per
    bucket and reused for new parameters (the training loop evaluates with it)."""
    predictor = Predictor(model, partitioner, batch_size, length_buckets=length_buckets)
    return predictor.predict_fn
