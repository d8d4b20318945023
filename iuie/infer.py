"""``python -m iuie.infer``: predictions with parsed structures and their character offsets.

Two inputs (T5X's ``infer.py`` role):

* a Mixture or Task split (``MIXTURE_OR_TASK_NAME``, ``INFER_SPLIT``): the Tasks' own formatted inputs;
* a JSON-lines file (``INPUT_FILE``) of ``{"text": ..., "task": VIEW, "labels": OPTIONS}``: ``task`` is one of
  the nine views (NER, ES, ET, RE, EP, EPR, EE, EET, EEA), ``labels`` the option list in the dataset's
  ``labels.json`` shape (a list of types; EE ``[event types, roles]``; EET/EEA ``{event type: [roles]}``).
  The input is formatted with ``iuie.ie.formats`` and the default instruction (``INSTRUCTION_FILE`` for the
  paper's wording).

Each output line of ``INFER_OUTPUT_DIR/predictions.jsonl``: ``text``, ``task`` (the view), ``prediction``
(the raw decoded text), the parsed structures in the result JSON shape of docs/extract.md (``entities``,
``relations`` or ``events``, as the view's record section; each mention's ``pos`` is ``[start, end]`` with
``text[start:end]`` the mention, or null for a string that occurs nowhere in the text; all mentions of one output
are aligned together, as the Extractor does), ``unaligned`` (how many), ``malformed`` (pieces the parser could
not read); rows read from a Task add ``mixture_task`` (the Task
name), ``dataset`` and ``id``.

The checkpoint is read by ``iuie.interop.reader.read_params`` (an iuie run, exported iuie, Hugging Face or
T5X; relative or absolute). Decoding is sharded: the examples are split over the data axis and the
processes, each decoded once, gathered back in input order (``iuie.evaluation.predict``).

    python -m iuie.infer --gin_file=t5x_configs/demo_cpu/infer.gin \\
      --gin.CHECKPOINT_PATH="'/tmp/iuie_demo'" --gin.INFER_OUTPUT_DIR="'/tmp/iuie_demo/infer'" \\
      --gin.INPUT_FILE="'texts.jsonl'"
"""

from __future__ import annotations

import json
import logging
import os
import sys
import time
from collections.abc import Mapping, Sequence
from typing import Any

from iuie.runtime import gin_flags, launch

logger = logging.getLogger("iuie.infer")
OUTPUT_FILE = "predictions.jsonl"


def structures(view: str, items: Sequence[tuple], sentence: str) -> dict[str, Any]:
    """Parsed items in the result JSON shape (docs/extract.md): ``{section: [...], "unaligned": n}``.

    ``section`` is the view's record section (``entities``, ``relations`` or ``events``); every mention
    carries ``pos`` ``[start, end]`` into ``sentence`` or null when it occurs nowhere. All mentions of one
    output are aligned in a single call (:func:`iuie.ie.views.locate`), as the Extractor does.
    """
    from iuie.ie import views

    located, unaligned = views.locate(view, items, sentence)
    return {views.get(view).section: [s.to_json() for s in located], "unaligned": unaligned}


def _labels_for(view: str, raw: Any) -> Any:
    from iuie.ie import records, views

    return records.Labels.from_json(raw, views.get(view).source)


def read_input_file(
    path: str, instruction_file: str | None, input_length: int, vocabulary: Any
) -> tuple[list[dict[str, Any]], list[list[int]]]:
    """``(rows, input ids)`` of a ``{"text", "task", "labels"}`` JSON-lines file: each row formatted with the
    view's default (or ``instruction_file``'s first) instruction, tokenised, trimmed, EOS appended."""
    from iuie.ie import formats, instructions, records

    instruction_set = (
        instructions.load_instruction_file(instruction_file) if instruction_file else instructions.DEFAULT_INSTRUCTIONS
    )
    rows, tokens = [], []
    with open(path, encoding="utf-8") as f:
        for line_no, line in enumerate(f, start=1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
                text, view = obj["text"], str(obj["task"]).strip().upper()
                if view not in instructions.VIEWS:
                    raise ValueError(f"unknown task {obj['task']!r}; expected one of {', '.join(instructions.VIEWS)}")
                labels = _labels_for(view, obj.get("labels", []))
            except (KeyError, ValueError, records.RecordError) as e:
                raise ValueError(f"{path}:{line_no}: {e}") from None
            example = formats.format_view(view, records.Record(sentence=text), labels, instruction_set.choose(view))
            tokens.append(list(vocabulary.encode(example.inputs))[: input_length - 1] + [1])
            rows.append({"text": text, "task": view, "labels": labels, "inputs": example.inputs})
    return rows, tokens


def infer(
    *,
    model: Any,
    checkpoint_path: str,
    output_dir: str,
    task_feature_lengths: Mapping[str, int],
    mixture_or_task_name: str | None = None,
    input_file: str | None = None,
    instruction_file: str | None = None,
    split: str = "test",
    num_examples: int | None = None,
    batch_size: int = 32,
    use_cached_tasks: bool = False,
    partitioning: Any = None,
) -> int:
    """Writes ``output_dir/predictions.jsonl`` (module docstring); returns 0."""
    import jax

    import seqio_tasks
    from iuie.evaluation import predict, seqio_eval
    from iuie.ie import parsing
    from iuie.interop import reader
    from iuie.training import configs
    from iuie.training import partitioning as partitioning_lib

    start = time.time()
    if not input_file and not mixture_or_task_name:
        raise gin_flags.GinConfigError("set INPUT_FILE or MIXTURE_OR_TASK_NAME")
    if input_file and not os.path.isfile(input_file):
        raise FileNotFoundError(f"INPUT_FILE {input_file!r} does not exist")
    if not input_file:
        mixture_or_task_name = seqio_eval.evaluation_target(mixture_or_task_name)
        seqio_eval.check_data(mixture_or_task_name, split)
    vocabulary = seqio_tasks.VOCABULARY
    partitioner = partitioning_lib.Partitioner.from_config(partitioning or configs.PartitioningConfig())
    predictor = predict.Predictor(model, partitioner, batch_size)
    params = reader.read_params(
        checkpoint_path, predict.abstract_params(model, partitioner, task_feature_lengths)
    ).params
    gin_flags.write_operative_config(output_dir)
    out = []
    if input_file:
        rows, tokens = read_input_file(input_file, instruction_file, task_feature_lengths["inputs"], vocabulary)
        decoded = predictor.decode(
            params,
            tokens,
            max_input_length=task_feature_lengths["inputs"],
            max_decode_length=task_feature_lengths["targets"],
        )
        for row, ids in zip(rows, decoded):
            text = vocabulary.decode(ids.tolist())
            parsed = parsing.parse(row["task"], text, row["labels"], sentence=row["text"])
            out.append(
                {
                    "text": row["text"],
                    "task": row["task"],
                    "inputs": row["inputs"],
                    "prediction": text,
                    **structures(row["task"], parsed.items, row["text"]),
                    "malformed": parsed.malformed,
                }
            )
    else:
        evaluator = seqio_eval.make_evaluator(
            mixture_or_task_name, split, task_feature_lengths, num_examples, use_cached_tasks
        )
        _, rows = seqio_eval.run_evaluation(evaluator, predictor.predict_fn(params), vocabulary, compute_metrics=False)
        labels_of = {task.name: getattr(task.source, "labels", None) for task in evaluator.eval_tasks}
        for row in rows:
            sentence, view = row["Instance"]["sentence"], row["Task"]
            parsed = parsing.parse(view, row["Prediction"], labels_of.get(row["_task"]), sentence=sentence)
            out.append(
                {
                    "text": sentence,
                    "task": view,
                    "mixture_task": row["_task"],
                    "dataset": row["Dataset"],
                    "id": row["Instance"]["id"],
                    "prediction": row["Prediction"],
                    **structures(view, parsed.items, sentence),
                    "malformed": parsed.malformed,
                }
            )
    if jax.process_index() == 0:
        os.makedirs(output_dir, exist_ok=True)
        target = os.path.join(output_dir, OUTPUT_FILE)
        with open(target, "w", encoding="utf-8") as f:
            for row in out:
                f.write(json.dumps(row, ensure_ascii=False) + "\n")
        print(f"{len(out)} predictions written to {target} ({time.time() - start:.1f}s)", flush=True)
    return 0


def _user_errors():
    from iuie.training import user_errors

    return user_errors.user_errors()


def _register_tasks() -> None:
    import seqio_tasks  # noqa: F401  (registers the Tasks the gin files name)


def main(argv: Sequence[str] | None = None) -> int:
    return launch.binary_main(
        "python -m iuie.infer",
        __doc__.splitlines()[0],
        infer,
        argv,
        before_configure=_register_tasks,
        extra_errors=_user_errors,
    )


if __name__ == "__main__":
    # Run the imported module's main, so that gin configures the functions of ``iuie.infer`` (the module gin
    # files import), not those of this ``__main__`` copy.
    from iuie import infer as _module

    sys.exit(_module.main())
