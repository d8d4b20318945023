"""seqio's ``Evaluator`` over the iuie Tasks: the data checks, the evaluation run, the reports and files.

* :func:`check_data` fails in the first seconds, naming the path, when a Task's split file is missing;
* :func:`evaluation_target` maps a training Mixture to its evaluation Mixture (``iuie_supervised`` ->
  ``iuie_eval``), so one experiment gin serves iuie.train, iuie.eval and iuie.infer;
* :func:`run_evaluation` decodes with a ``predict_fn`` (``iuie.evaluation.predict``), lets seqio run the
  Tasks' own postprocessors and metric functions (``strict/...`` and ``reference/...``), and returns one
  row per example in the InstructUIE reference's shape (``Task``, ``Dataset``, ``Instance`` {``id``,
  ``sentence``, ``label``, ``ground_truth``, ``instruction``, ``options``}, ``Prediction``) plus the gold ``record``, so
  ``iuie score`` reproduces the numbers from the predictions file;
* :func:`reports` builds the per-dataset tables (``iuie.ie.report``) and :func:`write_results` writes
  ``metrics.json``, ``report_{strict,reference}.{txt,json}`` and ``predict_eval_predictions.jsonl``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from typing import Any

MODES = ("strict", "reference")
PREDICTIONS_FILE = "predict_eval_predictions.jsonl"


def task_view_and_dataset(task: Any) -> tuple[str, str]:
    """``(view, dataset display name)`` of an iuie Task, read from its formatting preprocessor."""
    for prep in task.preprocessors:
        keywords = getattr(prep, "keywords", None) or {}
        if "view" in keywords:
            return keywords["view"], keywords.get("dataset_name") or getattr(task.source, "name", task.name)
    parts = task.name.split("_")
    return (parts[1].upper() if len(parts) > 1 else task.name), getattr(task.source, "name", task.name)


def check_data(mixture_or_task_name: str, split: str) -> list[Any]:
    """The Tasks of a Mixture or Task, after checking each has ``split`` and its file exists: a missing data
    root, dataset folder or split file fails here, in the first seconds, naming the expected path."""
    import seqio

    tasks = seqio.get_subtasks(seqio.get_mixture_or_task(mixture_or_task_name))
    # seqio's Evaluator skips a Task without the split (FewRel and Wiki-ZSL have only 'test'), so do we.
    with_split = [task for task in tasks if split in task.source.splits]
    if not with_split:
        raise ValueError(f"no Task of {mixture_or_task_name!r} has a {split!r} split")
    for task in with_split:
        if hasattr(task.source, "split_path"):
            task.source.split_path(split)  # raises seqio_data.DataNotFoundError naming the path
    return with_split


def evaluation_target(mixture_or_task_name: str) -> str:
    """The Mixture to evaluate for a name: a training Mixture's evaluation Mixture
    (``seqio_tasks.eval_mixture_for``: ``iuie_supervised`` -> ``iuie_eval``), any other name itself, so an
    experiment gin's ``MIXTURE_OR_TASK_NAME`` serves iuie.train, iuie.eval and iuie.infer alike."""
    import seqio_tasks

    try:
        return seqio_tasks.eval_mixture_for(mixture_or_task_name)
    except KeyError:
        return mixture_or_task_name


def _text(value: Any) -> str:
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)


def run_evaluation(
    evaluator: Any, predict_fn: Any, vocabulary: Any, step: int | None = None, compute_metrics: bool = True
) -> tuple[dict[str, dict[str, float]], list[dict[str, Any]]]:
    """``(seqio metrics per Task, prediction rows)``: the Evaluator's metrics, and one reference-shaped row
    per example (module docstring) from the cached Task examples and the decoded predictions."""
    import seqio

    future, outputs = evaluator.evaluate(compute_metrics=compute_metrics, step=step, predict_fn=predict_fn)
    metrics = future.result() or {}
    rows = []
    for task in evaluator.eval_tasks:
        view, dataset = task_view_and_dataset(task)
        tokens = outputs[task.name][seqio.metrics.ModelOutputType.PREDICTION]
        examples = list(evaluator.cached_task_datasets[task.name].as_numpy_iterator())
        for example, output in zip(examples, tokens):
            record = json.loads(_text(example["record"]))
            rows.append(
                {
                    "Task": view,
                    "Dataset": dataset,
                    "Instance": {
                        "id": str(int(example["index"])) if "index" in example else str(len(rows)),
                        "sentence": record.get("sentence", ""),
                        "label": _text(example["targets_pretokenized"]),
                        "ground_truth": _text(example["ground_truth"]),
                        "instruction": _text(example["instruction"]),
                        # The input's option list: iuie score parses with exactly these options.
                        **({"options": json.loads(_text(example["options"]))} if "options" in example else {}),
                    },
                    "Prediction": vocabulary.decode(list(output)),
                    "record": record,
                    "_task": task.name,
                }
            )
    return {name: {k: float(v) for k, v in m.items()} for name, m in metrics.items()}, rows


def reports(evaluator: Any, metrics: Mapping[str, Mapping[str, float]]) -> dict[str, Any]:
    """``{mode: iuie.ie.report.Report}`` from seqio's per-Task metrics (``strict/f1`` -> strict table's ``f1``)."""
    from iuie.ie import report

    out = {mode: report.Report(mode) for mode in MODES}
    for task in evaluator.eval_tasks:
        if task.name not in metrics:
            continue
        view, dataset = task_view_and_dataset(task)
        for mode in MODES:
            prefix = f"{mode}/"
            values = {k[len(prefix) :]: v for k, v in metrics[task.name].items() if k.startswith(prefix)}
            if values:
                out[mode].add(view, dataset, values)
    return out


def make_evaluator(
    mixture_or_task_name: str,
    split: str,
    feature_lengths: Mapping[str, int],
    num_examples: int | None,
    use_cached: bool = False,
) -> Any:
    import seqio

    return seqio.Evaluator(
        mixture_or_task_name,
        seqio.EncDecFeatureConverter(pack=False),
        eval_split=split,
        use_cached=use_cached,
        sequence_length=dict(feature_lengths),
        num_examples=num_examples,
        use_memory_cache=False,
        async_compute_metrics=False,
    )


def write_results(
    output_dir: str,
    metrics: Mapping[str, Any],
    tables: Mapping[str, Any],
    rows: Sequence[Mapping[str, Any]] | None = None,
    prefix: str = "",
) -> None:
    """Writes metrics, the two reports and (optionally) the predictions file, on process 0 only."""
    import jax

    if jax.process_index() != 0:
        return
    os.makedirs(output_dir, exist_ok=True)
    with open(os.path.join(output_dir, f"{prefix}metrics.json"), "w", encoding="utf-8") as f:
        json.dump(metrics, f, indent=1, sort_keys=True)
    for mode, table in tables.items():
        with open(os.path.join(output_dir, f"{prefix}report_{mode}.txt"), "w", encoding="utf-8") as f:
            f.write(table.to_text())
        with open(os.path.join(output_dir, f"{prefix}report_{mode}.json"), "w", encoding="utf-8") as f:
            json.dump(table.to_json(), f, indent=1)
    if rows is not None:
        with open(os.path.join(output_dir, f"{prefix}{PREDICTIONS_FILE}"), "w", encoding="utf-8") as f:
            for row in rows:
                row = {k: v for k, v in row.items() if not k.startswith("_")}
                f.write(json.dumps(row, ensure_ascii=False) + "\n")


def summary_scalars(metrics: Mapping[str, Mapping[str, float]], tables: Mapping[str, Any]) -> dict[str, float]:
    """TensorBoard scalars of an evaluation: seqio's per-Task metrics and each view's average per mode."""
    scalars = {}
    for task, values in metrics.items():
        for key, value in values.items():
            scalars[f"eval/{task}/{key}"] = value
    for mode, table in tables.items():
        for view, rows in table.to_json().items():
            for key, value in rows.get("Average", {}).items():
                scalars[f"eval_average/{mode}/{view}/{key}"] = value
    return scalars
