"""The one batch-decoding path: rows of token ids in, one decode per row out, in input order.

Evaluation (``iuie.evaluation.predict``), inference and the ``Extractor`` all decode through
:func:`decode_rows`. It groups the rows into batches of exactly ``batch_size`` rows (a last partial batch is
filled with all-zero padding rows, so every batch has the same number of rows and the decode compiles once per
input length), pads each batch's inputs to ``length_of(longest row in the batch)``, calls the caller's
``decode`` on it, and drops the padding rows before anything is returned: a padding row never reaches a
caller.

``sort_by_length=True`` first orders the rows by length (stable), so rows of similar length share a batch and
each batch pads less; the results still come back in input order. With ``sharding`` (e.g. rows split over a
mesh's data axis) the batch is placed so that every device holds only its own rows: each row is decoded
exactly once, on one device. ``DecodeStats`` counts the rows and input positions decoded, how many of them are
padding, and the real rows each device decoded.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

MIN_BUCKET = 32


@dataclasses.dataclass
class DecodeStats:
    """What :func:`decode_rows` decoded: rows and input positions, with their padding share."""

    batches: int = 0
    rows: int = 0  # real rows (examples)
    padding_rows: int = 0  # rows added to fill a last partial batch
    tokens: int = 0  # input positions decoded, padding included
    padding_tokens: int = 0  # of which padding (past a row's end, or in a padding row)
    rows_per_device: dict[int, int] = dataclasses.field(default_factory=dict)  # real rows each device decoded

    @property
    def padding_share(self) -> float:
        """Share of the decoded input positions that are padding."""
        return self.padding_tokens / self.tokens if self.tokens else 0.0

    def add(self, other: DecodeStats) -> None:
        self.batches += other.batches
        self.rows += other.rows
        self.padding_rows += other.padding_rows
        self.tokens += other.tokens
        self.padding_tokens += other.padding_tokens
        for device, count in other.rows_per_device.items():
            self.rows_per_device[device] = self.rows_per_device.get(device, 0) + count


def bucket_length(length: int, maximum: int, minimum: int = MIN_BUCKET) -> int:
    """The padded input length for a batch whose longest row has ``length`` tokens: the next power of two
    from ``minimum`` on, capped at ``maximum`` (a longer row keeps its own length), so few shapes compile."""
    size = minimum
    while size < length:
        size *= 2
    return min(size, maximum) if length <= maximum else length


def padding_share(lengths: Sequence[int], batch_size: int, length_of: Callable[[int], int], sort: bool) -> float:
    """The input padding share :func:`decode_rows` would have for rows of these lengths (no decoding)."""
    stats = DecodeStats()
    order = sorted(range(len(lengths)), key=lambda i: lengths[i]) if sort else list(range(len(lengths)))
    for begin in range(0, len(order), batch_size):
        chunk = [lengths[i] for i in order[begin : begin + batch_size]]
        width = length_of(max(chunk))
        stats.tokens += batch_size * width
        stats.padding_tokens += batch_size * width - sum(chunk)
    return stats.padding_share


def _row_counts(sharding: Any, shape: tuple[int, ...], real_rows: int) -> dict[int, int]:
    """Real rows per addressable device of a batch placed with ``sharding``."""
    counts = {}
    for device, index in sharding.addressable_devices_indices_map(shape).items():
        rows = index[0] if index else slice(None)
        start, stop, _ = rows.indices(shape[0])
        counts[device.id] = max(0, min(stop, real_rows) - start)
    return counts


def decode_rows(
    decode: Callable[[Any, list[int]], Any],
    rows: Sequence[Sequence[int]],
    *,
    batch_size: int,
    length_of: Callable[[int], int],
    sharding: Any = None,
    sort_by_length: bool = False,
    stats: DecodeStats | None = None,
    on_batch: Callable[[int, int], None] | None = None,
) -> list[np.ndarray]:
    """Decodes every row once; returns the decodes (``np.ndarray`` per row) in the order of ``rows``.

    Args:
      decode: ``(tokens, row_numbers) -> decodes``: ``tokens`` is the ``[batch_size, length]`` int32 batch (a
        ``jax.Array`` placed with ``sharding`` if given, else numpy); ``row_numbers`` are the indices into
        ``rows`` of its first ``len(row_numbers)`` rows (the rest are padding). Returns ``[batch_size, ...]``.
      rows: token ids per row (an input's end is its last id; trailing padding must already be stripped).
      batch_size: rows per decode call; a multiple of the data-parallel size when ``sharding`` splits rows.
      length_of: padded input length of a batch from its longest row (e.g. :func:`bucket_length`).
      sharding: a ``jax.sharding.Sharding`` for the ``[batch_size, length]`` batch, or None.
      sort_by_length: batch rows of similar length together (results still in input order).
      stats: accumulates :class:`DecodeStats`.
      on_batch: ``(rows done, rows in all)`` after each batch (a progress line).
    """
    order = sorted(range(len(rows)), key=lambda i: len(rows[i])) if sort_by_length else list(range(len(rows)))
    out: list[np.ndarray | None] = [None] * len(rows)
    done = 0
    for begin in range(0, len(order), batch_size):
        numbers = order[begin : begin + batch_size]
        width = length_of(max((len(rows[i]) for i in numbers), default=1))
        tokens = np.zeros((batch_size, width), np.int32)
        real = 0
        for slot, i in enumerate(numbers):
            tokens[slot, : len(rows[i])] = rows[i]
            real += len(rows[i])
        batch: Any = tokens
        if sharding is not None:
            import jax

            batch = jax.make_array_from_callback(tokens.shape, sharding, lambda index: tokens[index])
        decodes = np.asarray(decode(batch, list(numbers)))
        for slot, i in enumerate(numbers):  # padding rows (slots past len(numbers)) are dropped here
            out[i] = decodes[slot]
        if stats is not None:
            stats.batches += 1
            stats.rows += len(numbers)
            stats.padding_rows += batch_size - len(numbers)
            stats.tokens += batch_size * width
            stats.padding_tokens += batch_size * width - real
            if sharding is not None:
                for device, count in _row_counts(sharding, tokens.shape, len(numbers)).items():
                    stats.rows_per_device[device] = stats.rows_per_device.get(device, 0) + count
        done += len(numbers)
        if on_batch is not None:
            on_batch(done, len(rows))
    return out  # type: ignore[return-value]
