"""Postprocessing and metrics through a real ``seqio.Evaluator``, per view and in both modes.

Reference: ``seqio.test_utils.test_postprocessing`` (seqio injects a raw example into the Task, runs its
preprocessors, builds an Evaluator, feeds it the given prediction through the Task's vocabulary, and returns
the metrics the Evaluator computes), and a plain ``seqio.Evaluator`` over real test splits with the targets
as predictions. What is checked is the wiring: the ``record`` pass-through feature reaches
``postprocess_fn(..., example=..., is_target=True)`` and both metric modes come back under their own keys.
"""

from __future__ import annotations

import json

import pytest
import seqio
from seqio import test_utils

from iuie.ie import formats
from iuie.ie.records import Record

SPLIT = "validation"  # test_postprocessing's Evaluator reads seqio's default eval split
ACCURACY = {"EE", "EET"}  # views whose reference number is sentence accuracy


def _record(synthetic, view):
    """A synthetic test record of the view's folder that has something to extract (and no NA relation)."""
    with open(synthetic / formats.SOURCE_TASK[view] / "synthetic" / "test.json", encoding="utf-8") as f:
        raws = json.load(f)
    for raw in raws:
        record = Record.from_json(raw)
        if (record.entities or record.events or record.relations) and all(r.type != "NA" for r in record.relations):
            return record
    raise AssertionError("no usable record")


def _evaluate(view, record, prediction):
    task = f"iuie_{view.lower()}_synthetic"
    raw = {SPLIT: {"index": 0, "split": SPLIT, "record": record.to_json_string()}}
    return test_utils.test_postprocessing(task, raw, predict_output=[prediction])


@pytest.mark.parametrize("view", formats.SOURCE_TASK)
def test_evaluator_scores_both_modes(view, synthetic):
    from iuie.ie.instructions import DEFAULT_INSTRUCTIONS
    from iuie.ie.records import load_labels

    record = _record(synthetic, view)
    labels = load_labels(synthetic / formats.SOURCE_TASK[view] / "synthetic", formats.SOURCE_TASK[view])
    target = formats.format_view(view, record, labels, DEFAULT_INSTRUCTIONS.get(view)[0]).targets

    perfect = _evaluate(view, record, target)
    assert perfect["strict/f1"] == pytest.approx(100.0), perfect
    assert perfect["strict/hallucinated"] == 0
    key = "reference/accuracy" if view in ACCURACY else "reference/f1"
    assert perfect[key] == pytest.approx(100.0), perfect

    # An answer naming nothing that is in the sentence: no true positive in either mode, and the strict
    # mode counts the invented mention as hallucinated.
    wrong = _evaluate(view, record, _invented(view))
    assert wrong["strict/tp"] == 0 and wrong["strict/f1"] == 0.0, wrong
    assert wrong["strict/hallucinated"] >= 1, wrong
    assert wrong[key] == 0.0, wrong


def _invented(view):
    return {
        "NER": " person: Zyxwv Qutr",
        "ET": " person: Zyxwv Qutr",
        "ES": " Zyxwv Qutr",
        "RE": " work for: Zyxwv Qutr, Qqq Corp",
        "EPR": " work for: Zyxwv Qutr, Qqq Corp",
        "EP": " Zyxwv Qutr, Qqq Corp",
        "EET": " attack: zapped",
        "EEA": " Zyxwv Qutr: attacker",
        "EE": " ( attack: zapped, Zyxwv Qutr: attacker) ",
    }[view]


class _TargetsAsPredictions(seqio.evaluation.PredictFnCallable):
    """A model that writes the gold target: each example's decoder targets, EOS and padding included, as a
    fixed-length decoder returns them (the vocabulary's ``decode`` stops at EOS)."""

    def __call__(self, dataset, model_feature_lengths=None):
        return [(index, ex["decoder_target_tokens"].tolist()) for index, ex in dataset.as_numpy_iterator()]


@pytest.mark.parametrize(
    "task, split",
    [
        ("iuie_ner_conll_2003", "test"),
        ("iuie_re_conll04", "test"),
        ("iuie_eet_casie", "test"),
        ("iuie_eea_casie", "validation"),
    ],
)
def test_evaluator_on_real_splits(task, split, shared_root):
    # sequence_length=None: the Evaluator measures the longest example, so no target is truncated.
    evaluator = seqio.Evaluator(
        task,
        eval_split=split,
        num_examples=40,
        feature_converter=seqio.EncDecFeatureConverter(pack=False),
        sequence_length=None,
    )
    metrics = evaluator.evaluate(compute_metrics=True, predict_fn=_TargetsAsPredictions())[0].result()[task]
    assert metrics["strict/examples"] == metrics["reference/examples"] == 40
    assert metrics["strict/f1"] == pytest.approx(100.0), metrics
    assert metrics["strict/hallucinated"] == 0, metrics
    key = "reference/accuracy" if task.startswith("iuie_eet") else "reference/f1"
    assert metrics[key] == pytest.approx(100.0), metrics
