"""The index-based Mixture sampler (iuie.pipeline.sampling).

References: hand-worked quotas (the paper's per-Task counts under iuie's rates, ``weight * min(n, 10,000)``),
and the defining properties of an epoch-based sampler as Grain's ``IndexSampler`` states them: a pure function
of (seed, position), each epoch a permutation of the same multiset, reshuffled per epoch.
"""

from __future__ import annotations

import collections

import numpy as np
import pytest

from iuie.pipeline import sampling


def test_quotas_are_the_rates_when_the_rates_count_examples():
    # iuie's rates: NER 1.0 * min(3000, 10000) = 3000; ES 0.3 * 3000 = 900; a capped Task: 10000 of 25000.
    assert sampling.epoch_quotas([3000, 3000, 25000], [3000.0, 900.0, 10000.0]) == [3000, 900, 10000]
    # Equal rates (as an evaluation Mixture's 1.0): the smallest Task is seen once, the others as often.
    assert sampling.epoch_quotas([10, 40], [1.0, 1.0]) == [10, 10]
    assert sampling.epoch_quotas([10, 0, 5], [1.0, 1.0, 0.0]) == [10, 0, 0]
    with pytest.raises(ValueError, match="no Task"):
        sampling.epoch_quotas([0], [1.0])


def test_an_epoch_holds_each_example_once_and_the_next_epoch_is_reshuffled():
    sampler = sampling.MixtureSampler([7, 5], [7.0, 5.0], seed=3)
    assert sampler.epoch_size == 12
    epochs = [sampler.draws(e * 12, (e + 1) * 12) for e in range(3)]
    for d in epochs:
        pairs = sorted(zip(d.tasks.tolist(), d.examples.tolist()))
        assert pairs == [(0, i) for i in range(7)] + [(1, i) for i in range(5)]
    orders = [list(zip(d.tasks.tolist(), d.examples.tolist())) for d in epochs]
    assert orders[0] != orders[1] and orders[1] != orders[2]
    # Deterministic: a fresh sampler (another process, a resumed run) computes the same epochs.
    again = sampling.MixtureSampler([7, 5], [7.0, 5.0], seed=3).draws(12, 24)
    assert list(zip(again.tasks.tolist(), again.examples.tolist())) == orders[1]
    other = sampling.MixtureSampler([7, 5], [7.0, 5.0], seed=4).draws(0, 12)
    assert list(zip(other.tasks.tolist(), other.examples.tolist())) != orders[0]


def test_any_range_equals_the_same_slice_of_one_long_read():
    sampler = sampling.MixtureSampler([13, 4, 9], [13.0, 1.2, 9.0], seed=0)
    whole = sampler.draws(0, 100)
    fresh = sampling.MixtureSampler([13, 4, 9], [13.0, 1.2, 9.0], seed=0)
    parts = [fresh.draws(a, b) for a, b in ((0, 7), (7, 31), (31, 32), (32, 100))]
    np.testing.assert_array_equal(np.concatenate([p.tasks for p in parts]), whole.tasks)
    np.testing.assert_array_equal(np.concatenate([p.examples for p in parts]), whole.examples)


def test_a_subsampled_task_walks_a_whole_pass_before_repeating():
    # Task 1 has 10 examples and a quota of 3 per epoch (rate 3 vs 6 for a 6-example Task): its first 10 draws
    # (over epochs 0..3) are a permutation of its 10 examples; draws 10..19 a new permutation.
    sampler = sampling.MixtureSampler([6, 10], [6.0, 3.0], seed=1)
    assert sampler.quotas == [6, 3]
    d = sampler.draws(0, 9 * 7)
    task1 = d.examples[d.tasks == 1].tolist()
    assert sorted(task1[:10]) == list(range(10)) and sorted(task1[10:20]) == list(range(10))
    assert task1[:10] != task1[10:20]
    counts = collections.Counter(d.tasks.tolist())
    assert counts == {0: 6 * 7, 1: 3 * 7}
