"""``python -m iuie.eval``: evaluate a checkpoint on a Mixture or Task split, in both metric modes.

T5X's ``eval.py`` role. The checkpoint may be an iuie training run (``MODEL_DIR``, its ``checkpoints/``
folder or one ``checkpoints/<step>`` folder), a Hugging Face Flan-T5 folder, a T5X ``checkpoint_<step>``
folder or an exported iuie folder (``iuie.training.checkpoints.load_initial_params`` reads them all). Predictions
come from greedy decoding (the model gin's ``DECODE_METHOD``); seqio's ``Evaluator`` runs the Tasks'
own postprocessors and metric functions (``strict/...`` and ``reference/...``), and ``iuie.ie.report`` prints
the per-dataset tables with the per-task average. Written to ``EVAL_OUTPUT_DIR``:

* ``config.gin``: the operative gin config;
* ``predict_eval_predictions.jsonl``: one line per example in the InstructUIE reference's shape
  (``Task``, ``Dataset``, ``Instance`` {``id``, ``sentence``, ``label``, ``ground_truth``, ``instruction``,
  ``options``}, ``Prediction``) plus the gold ``record``, so ``iuie score`` reproduces the numbers from the
  file (``options``, the input's option list, is iuie's addition: the parser splits answers on it);
* ``metrics.json`` (seqio's per-Task metrics) and ``report_{strict,reference}.{txt,json}``.

Example (the demo run's last checkpoint)::

    python -m iuie.eval --gin_file=t5x_configs/demo_cpu/eval.gin \\
      --gin.CHECKPOINT_PATH="'/tmp/iuie_demo'" --gin.EVAL_OUTPUT_DIR="'/tmp/iuie_demo/eval'"
"""

from __future__ import annotations

import json
import logging
import os
import sys
import time
from collections.abc import Mapping, Sequence
from typing import Any

from iuie.runtime import gin_flags

logger = logging.getLogger("iuie.eval")
MODES = ("strict", "reference")
PREDICTIONS_FILE = "predict_eval_predictions.jsonl"


# --------------------------------------------------------------------------------------------------------
# Pieces shared with iuie.train and iuie.infer
# --------------------------------------------------------------------------------------------------------


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


def resolve_checkpoint(path: str) -> str:
    """An iuie ``MODEL_DIR`` means its ``checkpoints/`` folder (newest step); other paths are kept."""
    if not path or not os.path.exists(path):
        raise FileNotFoundError(f"checkpoint {path!r} does not exist")
    nested = os.path.join(path, "checkpoints")
    return nested if os.path.isdir(nested) else path


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


def make_predict_fn(model: Any, partitioner: Any, batch_size: int):
    """``params -> predict_fn``, where ``predict_fn`` is seqio's: ``dataset of (index, features) ->
    [(index, tokens)]``. The decode is jit-compiled once (the training loop evaluates new params with it).

    Batches are padded to ``batch_size`` rows so the decode compiles once; inputs are replicated on every
    device (each host holds the whole, unsharded evaluation set), parameters stay in their shardings.
    """
    import jax
    import numpy as np

    replicated = partitioner.replicated
    decode = jax.jit(lambda p, batch: model.predict_batch(p, batch), out_shardings=replicated)

    def for_params(params: Any):
        def predict_fn(dataset) -> list[tuple[int, list[int]]]:
            out = []
            for indices, features in dataset.batch(batch_size).as_numpy_iterator():
                rows = len(indices)
                batch = {}
                for name in ("encoder_input_tokens", "decoder_input_tokens"):
                    value = np.asarray(features[name], np.int32)
                    if rows < batch_size:
                        pad = np.zeros((batch_size - rows,) + value.shape[1:], np.int32)
                        value = np.concatenate([value, pad])
                    batch[name] = jax.make_array_from_process_local_data(replicated, value, value.shape)
                with partitioner.context():
                    decodes = np.asarray(jax.device_get(decode(params, batch)))
                out.extend(zip(np.asarray(indices).tolist(), decodes[:rows].tolist()))
            return out

        return predict_fn

    return for_params


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


# --------------------------------------------------------------------------------------------------------
# The binary
# --------------------------------------------------------------------------------------------------------


def evaluate(
    *,
    model: Any,
    checkpoint_path: str,
    mixture_or_task_name: str,
    task_feature_lengths: Mapping[str, int],
    output_dir: str,
    split: str = "test",
    num_examples: int | None = None,
    batch_size: int = 32,
    use_cached_tasks: bool = False,
    partitioning: Any = None,
) -> dict[str, Any]:
    """Evaluates ``checkpoint_path`` (module docstring); returns ``{mode: report JSON}``."""
    import jax

    import seqio_tasks  # noqa: F401  (registers the Tasks)
    from iuie.training import checkpoints, configs
    from iuie.training import partitioning as partitioning_lib

    start = time.time()
    mixture_or_task_name = evaluation_target(mixture_or_task_name)
    check_data(mixture_or_task_name, split)
    path = resolve_checkpoint(checkpoint_path)
    partitioner = partitioning_lib.Partitioner.from_config(partitioning or configs.PartitioningConfig())
    params = checkpoints.load_initial_params(path, abstract_params(model, partitioner, task_feature_lengths))
    logger.info("loaded %s in %.1fs", path, time.time() - start)
    gin_flags.write_operative_config(output_dir)
    evaluator = make_evaluator(mixture_or_task_name, split, task_feature_lengths, num_examples, use_cached_tasks)
    vocabulary = seqio_tasks.VOCABULARY
    predict_fn = make_predict_fn(model, partitioner, batch_size)(params)
    metrics, rows = run_evaluation(evaluator, predict_fn, vocabulary)
    tables = reports(evaluator, metrics)
    write_results(output_dir, metrics, tables, rows)
    if jax.process_index() == 0:
        for mode in MODES:
            print(tables[mode].to_text(), flush=True)
        print(
            f"{len(rows)} predictions written to {os.path.join(output_dir, PREDICTIONS_FILE)} "
            f"({time.time() - start:.1f}s)",
            flush=True,
        )
    return {mode: tables[mode].to_json() for mode in MODES}


def main(argv: Sequence[str] | None = None) -> int:
    from iuie import train as train_lib

    return train_lib.binary_main("python -m iuie.eval", __doc__.splitlines()[0], evaluate, argv)


if __name__ == "__main__":
    # Run the imported module's main, so that gin configures the functions of ``iuie.eval`` (the module gin
    # files import), not those of this ``__main__`` copy.
    from iuie import eval as _module

    sys.exit(_module.main())
