"""Sharded, length-bucketed decoding (``iuie.evaluation.predict`` over ``iuie.model.batch_decode``).

Checked against: the unsharded, unbucketed decode of the same rows on one device (the behaviour before
sharding: input order, every batch at the full feature length), which must give identical tokens; and
counts worked out by hand for 10 rows in batches of 8 over 4 devices (2 rows per device per batch; the last
batch has 2 real rows, both on device 0, and 6 padding rows).
"""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from tests.tiny_runs import REPO, subprocess_env


@pytest.fixture(scope="module")
def decoded():
    done = subprocess.run(
        [sys.executable, "-m", "tests.binaries.sharded_decode_probe", "10", "8"],
        cwd=REPO,
        env=subprocess_env(XLA_FLAGS="--xla_force_host_platform_device_count=4"),
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-5000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_four_devices_decode_exactly_what_one_device_decodes(decoded):
    assert decoded["sharded"]["devices"] == 4 and decoded["reference"]["devices"] == 1
    assert len(decoded["sharded"]["decodes"]) == 10  # the 6 padding rows never come back
    assert decoded["sharded"]["decodes"] == decoded["reference"]["decodes"]


def test_each_example_is_decoded_once_and_work_splits_over_devices(decoded):
    stats = decoded["sharded"]["stats"]
    assert stats["rows"] == 10 and stats["padding_rows"] == 6 and stats["batches"] == 2
    assert stats["rows_per_device"] == {"0": 4, "1": 2, "2": 2, "3": 2}
    assert sum(stats["rows_per_device"].values()) == 10
    assert decoded["reference"]["stats"]["rows_per_device"] == {"0": 10}


def test_length_buckets_pad_less(decoded):
    """The same rows at full length in input order (reference) pad more than sorted into buckets."""
    reference, sharded = decoded["reference"], decoded["sharded"]
    assert reference["stats"]["tokens"] == 2 * 8 * 64  # two batches of 8 rows at the feature length
    assert sharded["padding_share"] < reference["padding_share"]
    real = reference["stats"]["tokens"] - reference["stats"]["padding_tokens"]
    assert sharded["stats"]["tokens"] - sharded["stats"]["padding_tokens"] == real  # same real tokens


def test_batch_decode_orders_pads_and_counts_without_a_model():
    """decode_rows on a fake decode that echoes its rows: results in input order, padding rows dropped."""
    from iuie.model import batch_decode

    rows = [[5, 1], [7, 7, 7, 1], [9, 1], [3, 3, 3, 3, 3, 1], [4, 1]]
    seen = []

    def decode(tokens, numbers):
        seen.append((tokens.shape, list(numbers)))
        return np.asarray(tokens) * 10

    stats = batch_decode.DecodeStats()
    out = batch_decode.decode_rows(
        decode,
        rows,
        batch_size=2,
        length_of=lambda n: batch_decode.bucket_length(n, 16, minimum=2),
        sort_by_length=True,
        stats=stats,
    )
    for row, got in zip(rows, out):
        assert got[: len(row)].tolist() == [10 * t for t in row] and not got[len(row) :].any()
    # Sorted by length (stable): [0, 2] (len 2), [4, 1] (2, 4), [3] (6) + one padding row.
    assert seen == [((2, 2), [0, 2]), ((2, 4), [4, 1]), ((2, 8), [3])]
    assert stats.rows == 5 and stats.padding_rows == 1 and stats.tokens == 4 + 8 + 16
    assert stats.padding_tokens == stats.tokens - sum(len(r) for r in rows)
    assert batch_decode.padding_share([2, 4, 2, 6, 2], 2, lambda n: 16, sort=False) == 1 - 16 / 96
