"""Rows for the encoder-decoder: trimming, best-fit packing, and seqio ``EncDecFeatureConverter``'s features.

Pure numpy, no data reading: the input pipeline (:mod:`iuie.pipeline.train_input`) hands in token arrays.

**Trimming** is seqio's ``append_eos_after_trim``: a sequence that ends in EOS and is longer than its feature
length keeps its first ``length - 1`` tokens and the EOS.

**Best-fit decreasing** (:func:`best_fit`) packs a window of examples into rows of ``(inputs, targets)``
capacity: examples in decreasing order of their larger relative size, each into the open row where it fits on
both sides and leaves the least room (the sum of both sides' leftover shares), else into a new row. seqio's
packer (and Grain's first-fit) puts each example into the first row with room in the order they come; a
window sorted by size and filled best-first leaves far less of a row empty. Rows come out in a seeded order so
that a batch does not hold only the window's largest examples.

**Features** (:func:`row_features`) are exactly those of ``seqio.EncDecFeatureConverter``: with packing
``encoder_input_tokens``, ``encoder_segment_ids``, ``encoder_positions``, ``decoder_target_tokens``,
``decoder_input_tokens`` (targets shifted right within each segment, 0 at each segment's start),
``decoder_segment_ids``, ``decoder_positions``, ``decoder_loss_weights``; without packing the four features
that carry no segment information (there seqio shifts the whole padded row right, so the EOS shows once more
in ``decoder_input_tokens``, where the loss weight is 0). The network and T5X read them unchanged.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

PACKED_FEATURES = (
    "encoder_input_tokens",
    "encoder_segment_ids",
    "encoder_positions",
    "decoder_target_tokens",
    "decoder_input_tokens",
    "decoder_segment_ids",
    "decoder_positions",
    "decoder_loss_weights",
)
UNPACKED_FEATURES = ("encoder_input_tokens", "decoder_target_tokens", "decoder_input_tokens", "decoder_loss_weights")


def trim(tokens: np.ndarray, length: int, eos_id: int | None) -> np.ndarray:
    """seqio's ``append_eos_after_trim`` on an EOS-terminated sequence (plain truncation without EOS)."""
    if len(tokens) <= length:
        return tokens
    if eos_id is None or len(tokens) == 0 or tokens[-1] != eos_id:
        return tokens[:length]
    return np.concatenate([tokens[: length - 1], tokens[-1:]])


def best_fit(
    input_lengths: Sequence[int], target_lengths: Sequence[int], lengths: Mapping[str, int]
) -> list[list[int]]:
    """Rows (lists of example numbers) packing every example; each must already fit ``lengths``."""
    cap_in, cap_tg = int(lengths["inputs"]), int(lengths["targets"])
    li = np.asarray(input_lengths, np.int64)
    lt = np.asarray(target_lengths, np.int64)
    if np.any(li > cap_in) or np.any(lt > cap_tg):
        raise ValueError("best_fit: an example is longer than the row; trim or drop it first")
    size = np.maximum(li / cap_in, lt / cap_tg)
    order = np.argsort(-size, kind="stable")
    room_in = np.zeros(len(li), np.int64)  # at most one row per example
    room_tg = np.zeros(len(li), np.int64)
    rows: list[list[int]] = []
    for i in order.tolist():
        n = len(rows)
        fits = (room_in[:n] >= li[i]) & (room_tg[:n] >= lt[i])
        if fits.any():
            leftover = (room_in[:n] - li[i]) / cap_in + (room_tg[:n] - lt[i]) / cap_tg
            leftover[~fits] = np.inf
            r = int(np.argmin(leftover))
            rows[r].append(i)
        else:
            r = n
            rows.append([i])
            room_in[r], room_tg[r] = cap_in, cap_tg
        room_in[r] -= li[i]
        room_tg[r] -= lt[i]
    return rows


def row_features(
    rows: Sequence[Sequence[tuple[np.ndarray, np.ndarray]]], lengths: Mapping[str, int], packed: bool
) -> dict[str, np.ndarray]:
    """The converter's features for ``rows``, each a list of ``(inputs, targets)`` token arrays that fit."""
    cap_in, cap_tg = int(lengths["inputs"]), int(lengths["targets"])
    n = len(rows)
    out = {
        "encoder_input_tokens": np.zeros((n, cap_in), np.int32),
        "decoder_target_tokens": np.zeros((n, cap_tg), np.int32),
        "decoder_input_tokens": np.zeros((n, cap_tg), np.int32),
        "decoder_loss_weights": np.zeros((n, cap_tg), np.int32),
    }
    if packed:
        for name in ("encoder_segment_ids", "encoder_positions"):
            out[name] = np.zeros((n, cap_in), np.int32)
        for name in ("decoder_segment_ids", "decoder_positions"):
            out[name] = np.zeros((n, cap_tg), np.int32)
    for r, row in enumerate(rows):
        if not packed and len(row) > 1:
            raise ValueError("an unpacked row holds one example")
        e = d = 0
        for segment, (inputs, targets) in enumerate(row, start=1):
            li, lt = len(inputs), len(targets)
            if e + li > cap_in or d + lt > cap_tg:
                raise ValueError(f"row {r} overflows its lengths {dict(lengths)}")
            out["encoder_input_tokens"][r, e : e + li] = inputs
            out["decoder_target_tokens"][r, d : d + lt] = targets
            if packed:  # shifted within the segment: 0 at its start, nothing after its end
                out["decoder_input_tokens"][r, d + 1 : d + lt] = targets[:-1]
            else:  # seqio shifts the whole padded row, so the last target (EOS) lands in the first padding cell
                out["decoder_input_tokens"][r, 1 : min(lt + 1, cap_tg)] = targets[: cap_tg - 1]
            out["decoder_loss_weights"][r, d : d + lt] = targets > 0
            if packed:
                out["encoder_segment_ids"][r, e : e + li] = segment
                out["encoder_positions"][r, e : e + li] = np.arange(li)
                out["decoder_segment_ids"][r, d : d + lt] = segment
                out["decoder_positions"][r, d : d + lt] = np.arange(lt)
            e, d = e + li, d + lt
    return out
