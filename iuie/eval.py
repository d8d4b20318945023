"""``python -m iuie.eval``: evaluate a checkpoint on a Mixture or Task split, in both metric modes.

T5X's ``eval.py`` role. The checkpoint may be an iuie training run (``MODEL_DIR``, its ``checkpoints/``
folder or one ``checkpoints/<step>`` folder), a Hugging Face Flan-T5 folder, a T5X ``checkpoint_<step>``
folder or an exported iuie folder, relative or absolute (``iuie.interop.reader.read_params`` reads them
all). Predictions come from the model gin's ``DECODE_METHOD``, decoded once per example with the examples
split over the data axis and the processes (``iuie.evaluation.predict``); seqio's ``Evaluator`` runs the
Tasks' own postprocessors and metric functions (``strict/...`` and ``reference/...``), and ``iuie.ie.report``
prints the per-dataset tables with the per-task average (``iuie.evaluation.seqio_eval``). Written to
``EVAL_OUTPUT_DIR``:

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

import logging
import os
import sys
import time
from collections.abc import Mapping, Sequence
from typing import Any

from iuie.runtime import gin_flags, launch

logger = logging.getLogger("iuie.eval")


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

    import seqio_tasks
    from iuie.evaluation import predict, seqio_eval
    from iuie.interop import reader
    from iuie.training import configs
    from iuie.training import partitioning as partitioning_lib

    start = time.time()
    mixture_or_task_name = seqio_eval.evaluation_target(mixture_or_task_name)
    seqio_eval.check_data(mixture_or_task_name, split)
    partitioner = partitioning_lib.Partitioner.from_config(partitioning or configs.PartitioningConfig())
    predictor = predict.Predictor(model, partitioner, batch_size)
    read = reader.read_params(checkpoint_path, predict.abstract_params(model, partitioner, task_feature_lengths))
    logger.info("loaded %s (%s) in %.1fs", read.source.path, read.source.format, time.time() - start)
    gin_flags.write_operative_config(output_dir)
    evaluator = seqio_eval.make_evaluator(
        mixture_or_task_name, split, task_feature_lengths, num_examples, use_cached_tasks
    )
    metrics, rows = seqio_eval.run_evaluation(evaluator, predictor.predict_fn(read.params), seqio_tasks.VOCABULARY)
    tables = seqio_eval.reports(evaluator, metrics)
    seqio_eval.write_results(output_dir, metrics, tables, rows)
    if jax.process_index() == 0:
        for mode in seqio_eval.MODES:
            print(tables[mode].to_text(), flush=True)
        print(
            f"{len(rows)} predictions written to {os.path.join(output_dir, seqio_eval.PREDICTIONS_FILE)} "
            f"({time.time() - start:.1f}s)",
            flush=True,
        )
    return {mode: tables[mode].to_json() for mode in seqio_eval.MODES}


def _user_errors():
    from iuie.training import user_errors

    return user_errors.user_errors()


def _register_tasks() -> None:
    import seqio_tasks  # noqa: F401  (registers the Tasks the gin files name)


def main(argv: Sequence[str] | None = None) -> int:
    return launch.binary_main(
        "python -m iuie.eval",
        __doc__.splitlines()[0],
        evaluate,
        argv,
        before_configure=_register_tasks,
        extra_errors=_user_errors,
    )


if __name__ == "__main__":
    # Run the imported module's main, so that gin configures the functions of ``iuie.eval`` (the module gin
    # files import), not those of this ``__main__`` copy.
    from iuie import eval as _module

    sys.exit(_module.main())
