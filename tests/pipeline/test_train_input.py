"""The training input pipeline (iuie.pipeline.train_input) on the real seqio Tasks of the synthetic corpus.

References: the Tasks' own ``get_dataset`` (the tokens of every example), one uninterrupted pass of the same
iterator (resume, batch-size change, drops), and the saved state's JSON round trip.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import seqio

from iuie.pipeline import train_input

MIXTURE = "iuie_synthetic_ner_re"
LENGTHS = {"inputs": 256, "targets": 64}


def _iterator(config=None, seed=0, lengths=LENGTHS, state=None):
    config = config or train_input.InputConfig(window=24)
    return train_input.build(MIXTURE, lengths, seed, config=config, state=state)


def _rows(it, n):
    return it.next_rows(n)


def _same(a, b):
    assert a.keys() == b.keys()
    for k in a:
        np.testing.assert_array_equal(a[k], b[k], err_msg=k)


def test_examples_are_the_tasks_own_tokens():
    task = seqio.get_mixture_or_task("iuie_re_synthetic")
    lazy = train_input.TaskExamples(task)
    reference = list(task.get_dataset(None, split="train", shuffle=False, num_epochs=1).take(5).as_numpy_iterator())
    for (inputs, targets), ex in zip(lazy.get([4, 0, 2, 1, 3]), [reference[i] for i in (4, 0, 2, 1, 3)]):
        np.testing.assert_array_equal(inputs, ex["inputs"])
        np.testing.assert_array_equal(targets, ex["targets"])
    assert lazy.size == task.num_input_examples("train")


def test_resume_from_the_saved_state_continues_exactly_and_any_batch_size_continues_the_rows():
    reference = _iterator()
    whole = _rows(reference, 40)  # crosses windows (24 examples, about 12 rows each)
    first = _iterator()
    part = _rows(first, 15)
    state = json.loads(json.dumps(first.get_state()))  # what the checkpoint stores
    assert state["rows"] == 15 and state["examples"] == int(np.sum(part["encoder_segment_ids"].max(axis=1)))
    resumed = _iterator(state=state)
    rest = [_rows(resumed, 5) for _ in range(5)]  # another batch size: 5 rows at a time, not 15
    combined = {k: np.concatenate([part[k]] + [r[k] for r in rest]) for k in part}
    _same(combined, whole)
    assert resumed.get_state()["examples"] == reference.get_state()["examples"]


def test_another_seed_lengths_or_packer_is_refused_in_one_line_and_so_is_a_batch_count():
    it = _iterator()
    _rows(it, 3)
    state = it.get_state()
    with pytest.raises(train_input.DataStateError, match="seed: saved 0, now 1"):
        _iterator(seed=1, state=state)
    with pytest.raises(train_input.DataStateError, match="lengths"):
        _iterator(lengths={"inputs": 128, "targets": 64}, state=state)
    with pytest.raises(train_input.DataStateError, match="packer"):
        _iterator(config=train_input.InputConfig(window=24, packer="seqio"), state=state)
    with pytest.raises(train_input.DataStateError, match="counts batches") as e:
        _iterator(state={"position": 3})
    assert "\n" not in str(e.value)


def test_rows_fit_hold_every_drawn_example_once_and_drops_are_counted():
    it = _iterator(
        config=train_input.InputConfig(window=24, drop_overlong=True), lengths={"inputs": 110, "targets": 64}
    )
    win = it.window(0)
    dropped = sum(win.dropped.values())
    assert dropped == sum(win.over_inputs.values()) > 0  # the synthetic inputs run about 90-130 tokens
    assert len(win.tokens) == 24 - dropped and sorted(i for r in win.rows for i in r) == list(range(24 - dropped))
    rows = it.next_rows(len(win.rows))
    assert rows["encoder_input_tokens"].shape == (len(win.rows), 110)
    assert it.get_state()["dropped"] == win.dropped
    assert any("dropped" in line for line in it.length_report())


def test_unpacked_and_seqio_packers_give_their_features_and_best_fit_packs_at_least_as_tight():
    plain = _iterator(config=train_input.InputConfig(window=24, packer="none"))
    seqio_packed = _iterator(config=train_input.InputConfig(window=24, packer="seqio"))
    best = _iterator()
    assert len(plain.window(0).rows) == 24 and set(plain.next_rows(2)) == set(train_input.packing.UNPACKED_FEATURES)
    assert len(best.window(0).rows) <= len(seqio_packed.window(0).rows) < 24
    # The same examples in both (same draws), only grouped differently.
    assert sorted(map(tuple, best.window(0).refs)) == sorted(map(tuple, seqio_packed.window(0).refs))
