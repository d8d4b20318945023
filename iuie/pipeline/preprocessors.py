"""seqio preprocessors of iuie's Tasks.

A Task's preprocessor list reads like t5's (``t5/data/tasks.py``)::

    functools.partial(iuie.pipeline.preprocessors.format_view, view="NER", labels=source.labels, dataset_name=...),
    seqio.preprocessors.tokenize,
    seqio.CacheDatasetPlaceholder(),
    seqio.preprocessors.append_eos_after_trim,

:func:`format_view` turns the data source's ``record`` feature into the strings of one task view with
:func:`iuie.ie.formats.format_view` (so the text equals the reference's character for character) and adds

``inputs`` / ``targets``  the model's input and target text (tokenized next by seqio),
``ground_truth``          what the reference's evaluator scores against (RE/EPR list NA pairs too),
``instruction``           the reference's template, ``{0}`` standing for the sentence,
``options``               the input's option list as JSON, which the metrics' parser reads (so training-time
                          metrics split answers on the same options as ``iuie score``).

It keeps ``index``, ``split`` and ``record``: they ride along to seqio's Evaluator, which hands the whole
example to ``postprocess_fn(..., example=..., is_target=True)``; :mod:`iuie.ie.metrics` reads the gold structures
from ``record`` there. (A Mixture's training dataset keeps only ``inputs`` and ``targets``; pass-through
features matter for evaluation, which seqio runs per Task.)

Why format in a preprocessor rather than in the data source: the preprocessor list then shows every step,
``seqio.test_utils`` can inject raw records and run the real formatting, and the seqio cache stores the
formatted text with the options it was built with. Formatting is Python (``tf.numpy_function``); the options
(instruction file and strategy, ``reference_quirks``) are read from :func:`iuie.pipeline.seqio_data.data_options` when
a dataset is built, not at import.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import tensorflow as tf

from iuie.ie import formats
from iuie.ie import instructions as instructions_lib
from iuie.ie.records import Labels, Record
from iuie.pipeline import seqio_data

FORMATTED_FEATURES = ("inputs", "targets", "ground_truth", "instruction", "options")
FORMAT_CHUNK = 64


def _text(value: bytes | str | np.ndarray) -> str:
    if isinstance(value, np.ndarray):
        value = value.item()
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)


def format_record(
    record: Record | str | bytes,
    *,
    view: str,
    labels: Labels,
    dataset_name: str,
    split: str = "",
    index: int = 0,
    instruction_set: instructions_lib.InstructionSet | None = None,
    strategy: str = "single",
    seed: int = 0,
    reference_quirks: bool = False,
) -> formats.FormattedExample:
    """One record as one view, with the instruction chosen as the options say (pure Python, no TF).

    With the ``multiple`` strategy the instruction is drawn from
    ``iuie.ie.instructions.example_rng(seed, view, dataset_name, split, index)``: the same example gets the same
    instruction on every host and in every epoch.
    """
    if not isinstance(record, Record):
        record = Record.from_json(record)
    instruction_set = instruction_set or instructions_lib.DEFAULT_INSTRUCTIONS
    rng = instructions_lib.example_rng(seed, view, dataset_name, split, index) if strategy == "multiple" else None
    instruction = instruction_set.choose(view, strategy, rng)
    return formats.format_view(view, record, labels, instruction, reference_quirks=reference_quirks)


def format_view(
    dataset: tf.data.Dataset, *, view: str, labels: Labels | Callable[[], Labels], dataset_name: str
) -> tf.data.Dataset:
    """Adds ``inputs``, ``targets``, ``ground_truth`` and ``instruction`` from each example's ``record``.

    ``labels``: the dataset's labels, or a callable returning them (a source's ``labels`` method), called
    once when the dataset is built. Needs the features ``record`` (JSON string) and, for the ``multiple``
    instruction strategy, ``index`` and ``split``; both are optional otherwise.
    """
    view = instructions_lib.canonical_view(view)
    resolved = labels() if callable(labels) else labels
    opts = seqio_data.data_options()
    instruction_set = seqio_data.instruction_set()
    instruction_set.get(view)  # fail now (naming the file) if the set has no instruction for the view

    def py_format(records: np.ndarray, indices: np.ndarray, splits: np.ndarray):
        out = [[] for _ in FORMATTED_FEATURES]
        for record, index, split in zip(records, indices, splits):
            example = format_record(
                _text(record),
                view=view,
                labels=resolved,
                dataset_name=dataset_name,
                split=_text(split),
                index=int(index),
                instruction_set=instruction_set,
                strategy=opts.instruction_strategy,
                seed=opts.instruction_seed,
                reference_quirks=opts.reference_quirks,
            )
            for column, name in zip(out, FORMATTED_FEATURES):
                column.append(getattr(example, name).encode("utf-8"))
        return tuple(np.array(column, dtype=object) for column in out)

    def map_fn(batch):
        size = tf.shape(batch["record"])[0]
        index = batch.get("index", tf.zeros([size], tf.int64))
        split = batch.get("split", tf.fill([size], ""))
        outputs = tf.numpy_function(
            py_format,
            [batch["record"], tf.cast(index, tf.int64), split],
            [tf.string] * len(FORMATTED_FEATURES),
            stateful=False,
        )
        out = dict(batch)
        for name, value in zip(FORMATTED_FEATURES, outputs):
            value.set_shape([None])
            out[name] = value
        return out

    # Formatting is Python; one tf.numpy_function call per chunk of examples instead of per example keeps
    # the call overhead (and GIL hand-offs) from dominating. Order and content are unchanged.
    chunked = dataset.batch(FORMAT_CHUNK)
    return chunked.map(map_fn, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True).unbatch()
