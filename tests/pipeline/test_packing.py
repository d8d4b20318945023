"""Rows and features of iuie.pipeline.packing, checked against seqio itself.

References: seqio's ``append_eos_after_trim`` (trimming), seqio's ``EncDecFeatureConverter`` with
``pack=False`` and ``pack=True`` (the features, value for value), and a hand-worked best-fit example.
"""

from __future__ import annotations

import numpy as np
import pytest
import seqio
import tensorflow as tf

from iuie.pipeline import packing

LENGTHS = {"inputs": 16, "targets": 8}
EOS = 1


def _examples(seed=0, n=12):
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        a = np.append(rng.integers(2, 50, int(rng.integers(1, 9))), EOS).astype(np.int32)
        b = np.append(rng.integers(2, 50, int(rng.integers(0, 4))), EOS).astype(np.int32)
        out.append((a, b))
    return out


def _dataset(examples):
    return tf.data.Dataset.from_generator(
        lambda: ({"inputs": a, "targets": b} for a, b in examples),
        output_signature={"inputs": tf.TensorSpec([None], tf.int32), "targets": tf.TensorSpec([None], tf.int32)},
    )


def test_trim_is_seqio_append_eos_after_trim():
    vocab = seqio.PassThroughVocabulary(100, eos_id=EOS)
    features = {k: seqio.Feature(vocab, add_eos=True) for k in ("inputs", "targets")}
    raw = [np.arange(2, 2 + n, dtype=np.int32) for n in (3, 7, 12)]
    ds = tf.data.Dataset.from_generator(
        lambda: ({"inputs": r, "targets": r} for r in raw),
        output_signature={"inputs": tf.TensorSpec([None], tf.int32), "targets": tf.TensorSpec([None], tf.int32)},
    )
    seqio_out = list(
        seqio.preprocessors.append_eos_after_trim(
            ds, output_features=features, sequence_length={"inputs": 6, "targets": 6}
        ).as_numpy_iterator()
    )
    for r, ex in zip(raw, seqio_out):
        np.testing.assert_array_equal(packing.trim(np.append(r, EOS), 6, EOS), ex["inputs"])
    np.testing.assert_array_equal(packing.trim(np.arange(2, 12), 4, None), [2, 3, 4, 5])


def test_unpacked_features_equal_seqio_enc_dec_converter():
    examples = _examples()
    ours = packing.row_features([[e] for e in examples], LENGTHS, packed=False)
    theirs = list(seqio.EncDecFeatureConverter(pack=False)(_dataset(examples), LENGTHS).as_numpy_iterator())
    assert set(ours) == set(packing.UNPACKED_FEATURES) == set(theirs[0])
    for name in ours:
        np.testing.assert_array_equal(ours[name], np.stack([t[name] for t in theirs]), err_msg=name)


def test_packed_features_equal_seqio_packed_rows_rebuilt_from_their_segments():
    examples = _examples(seed=1, n=20)
    theirs = list(seqio.EncDecFeatureConverter(pack=True)(_dataset(examples), LENGTHS).as_numpy_iterator())
    rows, at = [], 0
    for t in theirs:
        k = len(np.unique(t["encoder_segment_ids"][t["encoder_segment_ids"] > 0]))
        rows.append(examples[at : at + k])
        at += k
    assert at == len(examples) and len(rows) < len(examples)  # seqio did pack several per row
    ours = packing.row_features(rows, LENGTHS, packed=True)
    assert set(ours) == set(packing.PACKED_FEATURES) == set(theirs[0])
    for name in ours:
        np.testing.assert_array_equal(ours[name], np.stack([t[name] for t in theirs]), err_msg=name)


def test_best_fit_hand_worked():
    # Inputs 7, 3, 6, 4, 5, 5 into rows of 10 (targets 1 each, room 8): sorted 7, 6, 5, 5, 4, 3; 7 -> new row
    # A, 6 -> new row B, 5 -> new row C, 5 -> C (leaves 0), 4 -> B (leaves 0), 3 -> A (leaves 0): three full rows.
    rows = packing.best_fit([7, 3, 6, 4, 5, 5], [1] * 6, {"inputs": 10, "targets": 8})
    assert sorted(sorted(r) for r in rows) == [[0, 1], [2, 3], [4, 5]]
    # The target side binds too: two examples whose targets do not fit together never share a row.
    rows = packing.best_fit([2, 2, 2], [5, 5, 3], {"inputs": 10, "targets": 8})
    assert sorted(sorted(r) for r in rows) == [[0, 2], [1]] or sorted(sorted(r) for r in rows) == [[0], [1, 2]]
    with pytest.raises(ValueError, match="longer than the row"):
        packing.best_fit([11], [1], {"inputs": 10, "targets": 8})


def test_best_fit_places_every_example_once_within_the_lengths():
    rng = np.random.default_rng(5)
    li, lt = rng.integers(1, 17, 300), rng.integers(1, 9, 300)
    rows = packing.best_fit(li, lt, LENGTHS)
    assert sorted(i for r in rows for i in r) == list(range(300))
    for r in rows:
        assert li[r].sum() <= 16 and lt[r].sum() <= 8
