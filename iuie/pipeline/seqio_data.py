"""The seqio side of the data chain: a ``seqio.DataSource`` over a layout folder, its options, mixing rates.

``seqio_tasks/`` registers Tasks and Mixtures from a table; everything they run lives here and in
:mod:`iuie.pipeline.preprocessors`.

Reading (:class:`LayoutSource`)
    One source per dataset folder ``<root>/<TASK>/<name>``. Nothing is read when a Task is registered: the
    root is resolved when a dataset is first asked for, so ``import seqio_tasks`` works without the data.
    A split yields one example per valid record, in file order, with the features

    ``index`` (int64)   the record's position in its split file (stable: sharding and instruction choice use it)
    ``split`` (string)  the split name
    ``record`` (string) the record as JSON (:meth:`iuie.ie.records.Record.to_json_string`), which travels with the
                        example to the metrics, so gold structures keep their exact offsets.

    Splits have seqio's names (``train``, ``validation``, ``test``); ``validation`` reads ``dev.json``.
    Records that fail validation are skipped and counted (:mod:`iuie.ie.records`, lenient mode) and logged once
    per file. Sharding across hosts is by record: host ``i`` of ``n`` (seqio ``ShardInfo``) reads the records
    with ``index % n == i``, so shards are disjoint, complete and independent of the number of records.

Counting
    seqio needs ``num_input_examples(split)`` for mixing rates and for its in-memory caching decision. The
    source counts the valid records of a split on first use (a full read and validation of that file) and
    keeps the count for the process, keyed by path, size and modification time. No TFDS build or seqio
    cache is needed, and the count always equals what the source yields.

Options (:func:`data_options`)
    Where the data lives and how records become text are read at read time, so they can be set after
    import, from gin or from Python. Precedence: :func:`set_options` (Python) > gin bindings of
    ``iuie.pipeline.seqio_data.data_options`` > environment (``IUIE_DATA_DIR``, ``IUIE_SYNTHETIC_DIR``) > defaults.

Mixing rates (:func:`mixing_rate`)
    ``weight * min(num_examples, maximum)`` per Task, with weight 0.3 for the auxiliary views the reference
    subsamples (ES, ET, EP, EPR) and 1.0 otherwise; evaluated lazily by seqio, so gin bindings of
    ``iuie.pipeline.seqio_data.mixing_rate.maximum`` / ``.view_weights`` apply to already registered Mixtures.

Postprocessing and metrics (:func:`postprocess_fn`, :func:`metric_fns`)
    :mod:`iuie.ie.metrics` bound for a view, both modes, their values prefixed ``strict/`` and ``reference/``
    (seqio refuses two metric functions of one Task that report the same key).
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import logging
import os
import random
import shutil
import tempfile
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import numpy as np
import seqio
import tensorflow as tf

import gin
from iuie.ie import instructions as instructions_lib
from iuie.ie import metrics as metrics_lib
from iuie.ie import records as records_lib
from iuie.ie import views as views_lib

logger = logging.getLogger(__name__)

ENV_DATA_DIR = "IUIE_DATA_DIR"
ENV_SYNTHETIC_DIR = "IUIE_SYNTHETIC_DIR"
ENV_CACHE_DIR = "XDG_CACHE_HOME"
# seqio's split names (the TFDS convention T5X's gin files use: eval reads "validation") and the layout file
# each one reads.
SPLITS = ("train", "validation", "test")
SPLIT_FILES = {"train": "train", "validation": "dev", "test": "test"}

# The auxiliary views the reference keeps with probability 0.3 (AUX_PROB in its uie_dataset.py). EET and EEA
# are not subsampled there, so they weigh 1.0 like the main views.
DEFAULT_VIEW_WEIGHTS = {v.name: v.mixing_weight for v in views_lib.TABLE if v.mixing_weight != 1.0}
DEFAULT_RATE_MAXIMUM = 10_000
# The reference's max_num_instances_per_task: "random" sampling keeps the first N records.
FIRST_N = 10_000


class DataNotFoundError(FileNotFoundError):
    """A data root that is not set, or a dataset folder or split file that is not where it should be."""


# --------------------------------------------------------------------------------------------------------
# Options
# --------------------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class DataOptions:
    """How the Tasks read and format data. Resolved at read time (see the module docstring).

    ``data_dir``: the IE INSTRUCTIONS root (holding ``NER/``, ``RE/``, ...). ``synthetic_dir``: where the
    synthetic corpus lives or is generated. ``synthetic_held_out``: generate the variant whose dev and test
    mentions never occur in train (``iuie.ie.synthetic.generate(held_out=True)``; the demo's corpus).
    ``instruction_file``: the paper's ``instruction_config.json``
    shape (None: iuie's own wording). ``instruction_strategy``: ``single`` or ``multiple`` (seeded per
    example with ``instruction_seed``). ``reference_quirks``: reproduce the reference's ``'`` -> ``#$%#`` in
    EE/EET targets. ``use_sample_copies``: read a dataset's train split from the benchmark's pre-sampled copy
    (``<name>_sample_<N>``) when that folder exists. ``strict_records``: refuse, rather than skip, a record
    that fails validation.
    """

    data_dir: str | None = None
    synthetic_dir: str | None = None
    synthetic_held_out: bool = False
    instruction_file: str | None = None
    instruction_strategy: str = "single"
    instruction_seed: int = 0
    reference_quirks: bool = False
    use_sample_copies: bool = True
    strict_records: bool = False


_OVERRIDES: dict[str, Any] = {}
_FIELDS = tuple(f.name for f in dataclasses.fields(DataOptions))


@gin.configurable(module="iuie.pipeline.seqio_data")
def data_options(
    data_dir: str | None = None,
    synthetic_dir: str | None = None,
    synthetic_held_out: bool | None = None,
    instruction_file: str | None = None,
    instruction_strategy: str | None = None,
    instruction_seed: int | None = None,
    reference_quirks: bool | None = None,
    use_sample_copies: bool | None = None,
    strict_records: bool | None = None,
) -> DataOptions:
    """The options in force now. Gin binds the arguments; None means "not set here"."""
    given = dict(
        data_dir=data_dir,
        synthetic_dir=synthetic_dir,
        synthetic_held_out=synthetic_held_out,
        instruction_file=instruction_file,
        instruction_strategy=instruction_strategy,
        instruction_seed=instruction_seed,
        reference_quirks=reference_quirks,
        use_sample_copies=use_sample_copies,
        strict_records=strict_records,
    )
    values: dict[str, Any] = {}
    for name in _FIELDS:
        if name in _OVERRIDES:
            values[name] = _OVERRIDES[name]
        elif given[name] is not None:
            values[name] = given[name]
    values.setdefault("data_dir", os.environ.get(ENV_DATA_DIR) or None)
    values.setdefault("synthetic_dir", os.environ.get(ENV_SYNTHETIC_DIR) or None)
    return DataOptions(**values)


def set_options(**kwargs: Any) -> DataOptions:
    """Sets options from Python (they win over gin and the environment); ``None`` unsets one."""
    for name, value in kwargs.items():
        if name not in _FIELDS:
            raise TypeError(f"unknown data option {name!r}; expected one of {', '.join(_FIELDS)}")
        if value is None:
            _OVERRIDES.pop(name, None)
        else:
            _OVERRIDES[name] = os.fspath(value) if name.endswith(("_dir", "_file")) else value
    return data_options()


def reset_options() -> None:
    """Forgets every :func:`set_options` override."""
    _OVERRIDES.clear()


def set_data_dir(path: str | os.PathLike | None) -> None:
    """Sets the IE INSTRUCTIONS root (what ``IUIE_DATA_DIR`` sets); None goes back to the environment."""
    set_options(data_dir=path)


def data_dir() -> str:
    """The IE INSTRUCTIONS root now in force; DataNotFoundError saying how to set it when there is none."""
    root = data_options().data_dir
    if not root:
        raise DataNotFoundError(
            f"no IE INSTRUCTIONS data root is set: set the environment variable {ENV_DATA_DIR} to the folder "
            "holding NER/, RE/, EE/, EET/, EEA/, or bind iuie.pipeline.seqio_data.data_options.data_dir in gin, or call "
            "seqio_tasks.set_data_dir(path)"
        )
    return root


# --------------------------------------------------------------------------------------------------------
# The synthetic corpus
# --------------------------------------------------------------------------------------------------------

_SYNTHETIC_LOCK = threading.Lock()


def _synthetic_fingerprint() -> str:
    """Changes whenever iuie/ie/synthetic.py does, so a cached corpus never outlives its generator."""
    from iuie.ie import synthetic

    with open(synthetic.__file__, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()[:12]


def default_synthetic_dir() -> str:
    """``$XDG_CACHE_HOME/iuie/synthetic-<fingerprint>-seed0`` (``~/.cache`` without XDG_CACHE_HOME), with
    ``-heldout`` for the held-out corpus."""
    cache = os.environ.get(ENV_CACHE_DIR) or os.path.join(os.path.expanduser("~"), ".cache")
    suffix = "-heldout" if data_options().synthetic_held_out else ""
    return os.path.join(cache, "iuie", f"synthetic-{_synthetic_fingerprint()}-seed0{suffix}")


# Written beside the generated corpus: which variant it is, so a folder is never read as the other one.
SYNTHETIC_STAMP = "corpus.json"


def synthetic_stamp(root: str) -> dict[str, Any] | None:
    """The stamp :func:`synthetic_dir` wrote beside the corpus in ``root``; None when there is none (a corpus
    written before stamps existed, by ``iuie.ie.synthetic.generate`` directly, or by hand)."""
    path = os.path.join(root, SYNTHETIC_STAMP)
    if not os.path.isfile(path):
        return None
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def _check_synthetic_stamp(root: str, held_out: bool) -> None:
    stamp = synthetic_stamp(root)
    if stamp is None:
        return  # taken as it is
    written = bool(stamp.get("held_out", False))
    path = os.path.join(root, SYNTHETIC_STAMP)
    if written != held_out:
        raise DataNotFoundError(
            f"{path}: field 'held_out': the synthetic corpus in {root} was generated with held_out={written}, "
            f"but iuie.pipeline.seqio_data.data_options.synthetic_held_out is {held_out}: use another "
            "synthetic_dir or delete this one"
        )


def synthetic_dir() -> str:
    """The synthetic corpus root, generated (seed 0, default sizes) on first use when it is not there.

    ``IUIE_SYNTHETIC_DIR`` / the ``synthetic_dir`` option name a folder to use; a folder without the corpus
    is filled. Generation writes to a temporary sibling and renames it, so concurrent processes (hosts
    sharing a disk, pytest workers) never see a half-written corpus.
    """
    from iuie.ie import synthetic

    options = data_options()
    root = options.synthetic_dir or default_synthetic_dir()
    marker = os.path.join(root, "EEA", synthetic.DATASET_NAME, records_lib.LABELS_FILE)
    with _SYNTHETIC_LOCK:
        if os.path.isfile(marker):
            _check_synthetic_stamp(root, options.synthetic_held_out)
            return root
        parent = os.path.dirname(os.path.abspath(root))
        os.makedirs(parent, exist_ok=True)
        tmp = tempfile.mkdtemp(prefix=".synthetic-", dir=parent)
        try:
            synthetic.generate(tmp, held_out=options.synthetic_held_out)
            with open(os.path.join(tmp, SYNTHETIC_STAMP), "w", encoding="utf-8") as f:
                json.dump({"held_out": options.synthetic_held_out, "seed": 0}, f)
            if os.path.isdir(root):
                # An existing (e.g. user-named, empty) folder: move the task folders in one by one.
                for task in os.listdir(tmp):
                    dest = os.path.join(root, task)
                    if not os.path.exists(dest):
                        os.replace(os.path.join(tmp, task), dest)
            else:
                try:
                    os.rename(tmp, root)
                except OSError:
                    pass  # another process won the race; its corpus is identical
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        logger.info("generated the synthetic corpus in %s", root)
        return root


# --------------------------------------------------------------------------------------------------------
# Reading a layout folder
# --------------------------------------------------------------------------------------------------------

# Per-process caches, keyed by (path, size, mtime): a file that changes is read again.
_COUNTS: dict[tuple, int] = {}
_LABELS: dict[tuple, records_lib.Labels] = {}
_CACHE_LOCK = threading.Lock()


def forget_counts() -> None:
    """Forgets the remembered split counts, so the next count re-reads the files (benchmarks start cold)."""
    with _CACHE_LOCK:
        _COUNTS.clear()


def _file_key(path: str, *extra: Any) -> tuple:
    st = os.stat(path)
    return (os.path.abspath(path), st.st_size, st.st_mtime_ns) + extra


def load_indexed(
    dataset_dir: str,
    task: str,
    split: str,
    *,
    labels: records_lib.Labels,
    limit: int | None = None,
    strict: bool = False,
) -> tuple[list[tuple[int, records_lib.Record]], records_lib.LoadReport]:
    """The valid records of a seqio split (``validation`` reads ``dev.json``) with their file positions.

    ``limit`` keeps the first N entries of the file (the reference's cap) before validation. The positions
    (:attr:`iuie.ie.records.LoadReport.kept_indices`) are what sharding and the per-example instruction choice
    key on, so they do not move when an earlier record is skipped.
    """
    records, report = records_lib.load_split(
        dataset_dir, task, SPLIT_FILES.get(split, split), labels=labels, strict=strict, limit=limit
    )
    return list(zip(report.kept_indices, records)), report


class LayoutSource(seqio.DataSource):
    """A ``seqio.DataSource`` over one dataset folder of the IE INSTRUCTIONS layout (module docstring).

    Args:
      task: the layout folder kind: NER, RE, EE, EET or EEA.
      name: the dataset's folder name, as released (``"CoNLL 2003"``).
      root: the layout root: a path, a zero-argument callable returning one (resolved at read time), or
        None for :func:`data_dir`.
      splits: the seqio splits the Task declares, of train, validation (read from ``dev.json``) and test;
        files are only looked for when read.
      train_folder: a pre-sampled copy to read the train split from when it exists under the root and the
        ``use_sample_copies`` option is on (``"NYT11_sample_30000"``); other splits always read ``name``.
      limits: the first N records to keep per split (``{"train": 10000}`` for the ``_first10k`` Tasks).
    """

    def __init__(
        self,
        task: str,
        name: str,
        *,
        root: str | os.PathLike | Callable[[], str] | None = None,
        splits: Sequence[str] = SPLITS,
        train_folder: str | None = None,
        limits: Mapping[str, int] | None = None,
    ):
        if task not in records_lib.TASKS:
            raise ValueError(f"unknown layout task {task!r}; expected one of {', '.join(records_lib.TASKS)}")
        unknown = set(splits) - set(SPLITS)
        if unknown:
            raise ValueError(f"unknown splits {sorted(unknown)}; expected some of {', '.join(SPLITS)}")
        super().__init__(splits=tuple(splits), num_input_examples=None, caching_permitted=True)
        self.task = task
        self.name = name
        self._root = os.fspath(root) if isinstance(root, os.PathLike) else root
        self.train_folder = train_folder
        self.limits = dict(limits or {})

    def __repr__(self) -> str:
        return f"LayoutSource({self.task}/{self.name}, splits={self.splits}, limits={self.limits})"

    # -- where the files are ------------------------------------------------------------------------------

    @property
    def root(self) -> str:
        if self._root is None:
            return data_dir()
        if callable(self._root):
            return os.fspath(self._root())
        return self._root

    def dataset_dir(self, split: str | None = None) -> str:
        """The folder a split is read from (the sample copy for train, when present and enabled)."""
        root = self.root
        base = os.path.join(root, self.task, self.name)
        if not self.train_folder:
            return base
        sampled = os.path.join(root, self.task, self.train_folder)
        if split == "train" and data_options().use_sample_copies and os.path.isdir(sampled):
            return sampled
        if not os.path.isdir(base) and os.path.isdir(sampled):
            return sampled  # only the pre-sampled copy was unpacked: its dev/test/labels are the dataset's
        return base

    def split_path(self, split: str) -> str:
        """``<dataset_dir>/<split>.json``; DataNotFoundError naming the expected path when it is missing."""
        if split not in self.splits:
            raise ValueError(f"{self.task}/{self.name} has no split {split!r}; it has {', '.join(self.splits)}")
        folder = self.dataset_dir(split)
        path = os.path.join(folder, f"{SPLIT_FILES[split]}.json")
        if not os.path.isfile(path):
            what = "dataset folder" if not os.path.isdir(folder) else "split file"
            raise DataNotFoundError(
                f"{what} not found for dataset {self.name!r} ({self.task}, split {split!r}): expected {path} "
                f"(data root {self.root!r}; layout <root>/<TASK>/<dataset>/{{train,dev,test}}.json + labels.json; "
                "seqio's 'validation' split reads dev.json)"
            )
        return path

    def list_shards(self, split: str) -> Sequence[str]:
        # One JSON file per split; finer sharding is by record (supports_arbitrary_sharding).
        return [self.split_path(split)]

    @property
    def supports_arbitrary_sharding(self) -> bool:
        return True

    # -- labels and counts ------------------------------------------------------------------------------

    def labels(self) -> records_lib.Labels:
        """The dataset's ``labels.json`` (of the released folder; the sample copies carry the same)."""
        folder = self.dataset_dir()
        path = os.path.join(folder, records_lib.LABELS_FILE)
        if not os.path.isfile(path):
            raise DataNotFoundError(f"labels.json not found for dataset {self.name!r} ({self.task}): expected {path}")
        key = _file_key(path, self.task)
        with _CACHE_LOCK:
            if key not in _LABELS:
                _LABELS[key] = records_lib.load_labels(folder, self.task)
            return _LABELS[key]

    def _load(self, split: str) -> list[tuple[int, records_lib.Record]]:
        path = self.split_path(split)
        opts = data_options()
        out, report = load_indexed(
            os.path.dirname(path),
            self.task,
            split,
            labels=self.labels(),
            limit=self.limits.get(split),
            strict=opts.strict_records,
        )
        key = _file_key(path, self.limits.get(split), opts.strict_records, self.task)
        with _CACHE_LOCK:
            first = key not in _COUNTS
            _COUNTS[key] = len(out)
        if first and (report.skipped or report.realigned or report.notes):
            logger.info("%s", report.summary())
        return out

    def num_input_examples(self, split: str) -> int:
        """The number of valid records the split yields (counted on first use, then remembered)."""
        path = self.split_path(split)
        key = _file_key(path, self.limits.get(split), data_options().strict_records, self.task)
        with _CACHE_LOCK:
            if key in _COUNTS:
                return _COUNTS[key]
        return len(self._load(split))

    # -- the dataset -------------------------------------------------------------------------------------

    CHUNK = 256
    OUTPUT_SIGNATURE = {
        "index": tf.TensorSpec([], tf.int64),
        "split": tf.TensorSpec([], tf.string),
        "record": tf.TensorSpec([], tf.string),
    }

    def iter_examples(
        self, split: str, shard_info: seqio.ShardInfo | None = None, shuffle_seed: int | None = None
    ) -> Iterator[dict[str, Any]]:
        """The examples as Python dicts (what :meth:`get_dataset` wraps), for tools that need no TF."""
        loaded = self._load(split)
        if shard_info is not None:
            loaded = [(i, r) for i, r in loaded if i % shard_info.num_shards == shard_info.index]
        if shuffle_seed is not None:
            random.Random(shuffle_seed).shuffle(loaded)
        for index, record in loaded:
            yield {"index": index, "split": split, "record": record.to_json_string()}

    def get_dataset(
        self,
        split: str = "train",
        shuffle: bool = True,
        seed: int | None = None,
        shard_info: seqio.ShardInfo | None = None,
        *,
        sequence_length=None,
        use_cached=False,
        num_epochs=1,
    ) -> tf.data.Dataset:
        """The split's examples; deterministic unless ``shuffle`` without a ``seed``.

        ``shuffle`` permutes the whole split (after sharding) with ``random.Random(seed)``; without a seed
        each iteration draws a fresh order, as seqio's file shuffling does. Missing files fail here, eagerly,
        with a message naming the expected path.
        """
        del sequence_length, use_cached, num_epochs  # seqio's DataSource signature; unused by a source
        self.split_path(split)  # fail now, not inside tf.data
        if shard_info is not None and not 0 <= shard_info.index < shard_info.num_shards:
            raise ValueError(f"bad shard {shard_info}")

        def generate():
            shuffle_seed = None
            if shuffle:
                shuffle_seed = seed if seed is not None else random.SystemRandom().randrange(2**63)
            # Chunks of records, unbatched by tf.data: from_generator costs a Python round trip per element,
            # which dominated the pipeline when it yielded one example at a time.
            chunk: list[dict[str, Any]] = []
            for example in self.iter_examples(split, shard_info, shuffle_seed):
                chunk.append(example)
                if len(chunk) == self.CHUNK:
                    yield _stack(chunk)
                    chunk = []
            if chunk:
                yield _stack(chunk)

        signature = {k: tf.TensorSpec([None], v.dtype) for k, v in self.OUTPUT_SIGNATURE.items()}
        return tf.data.Dataset.from_generator(generate, output_signature=signature).unbatch()


def _stack(examples: list[dict[str, Any]]) -> dict[str, np.ndarray]:
    return {
        "index": np.array([e["index"] for e in examples], np.int64),
        "split": np.array([e["split"].encode() for e in examples], object),
        "record": np.array([e["record"].encode("utf-8") for e in examples], object),
    }


# --------------------------------------------------------------------------------------------------------
# Mixing rates
# --------------------------------------------------------------------------------------------------------


@gin.configurable(module="iuie.pipeline.seqio_data", denylist=["task", "view"])
def mixing_rate(
    task: seqio.Task,
    view: str,
    maximum: int | None = DEFAULT_RATE_MAXIMUM,
    view_weights: Mapping[str, float] | None = None,
    temperature: float = 1.0,
) -> float:
    """``weight(view) * min(examples, maximum)``, the paper's sampling as a seqio rate.

    ``examples`` is the Task's train count (seqio's cached stats when the Task is cached, else
    ``num_input_examples``). The weight is 0.3 for ES, ET, EP and EPR (the reference keeps each of their
    examples with probability 0.3), 1.0 otherwise; ``view_weights`` replaces that table. Expressed with
    seqio's own ``mixing_rate_num_examples``: ``min(w * n, w * maximum) == w * min(n, maximum)``.
    """
    weights = DEFAULT_VIEW_WEIGHTS if view_weights is None else view_weights
    weight = float(weights.get(view, 1.0))
    return seqio.mixing_rate_num_examples(
        task, maximum=None if maximum is None else maximum * weight, scale=weight, temperature=temperature
    )


# --------------------------------------------------------------------------------------------------------
# Postprocessing and metrics, as seqio wants them
# --------------------------------------------------------------------------------------------------------


def postprocess_fn(view: str) -> Callable[..., Any]:
    """The Task's ``postprocess_fn``: :func:`iuie.ie.metrics.postprocess` bound to the view."""
    return functools.partial(metrics_lib.postprocess, view=view)


def metric_fns(view: str, modes: Sequence[str] = ("strict", "reference")) -> list[Callable[..., dict]]:
    """One seqio metric function per mode, each naming its values ``<mode>/<name>`` (``strict/f1``).

    seqio's Evaluator merges the dicts of a Task's metric functions and raises on a duplicate key, and both
    modes of :func:`iuie.ie.metrics.metric_fn` report ``f1``, ``precision``, ...: the prefix keeps them apart
    (and groups them in TensorBoard). Keys that already carry the prefix are left alone.
    """
    fns = []
    for mode in modes:
        fn = metrics_lib.metric_fn(view, mode)

        def metric(targets, predictions, _fn=fn, _prefix=f"{mode}/"):
            return {(k if k.startswith(_prefix) else _prefix + k): v for k, v in _fn(targets, predictions).items()}

        metric.__name__ = f"iuie_{view.lower()}_{mode}"
        fns.append(metric)
    return fns


def instruction_set() -> instructions_lib.InstructionSet:
    """The instruction texts now in force (the ``instruction_file`` option, else iuie's defaults)."""
    return _instruction_set_for(data_options().instruction_file)


_INSTRUCTION_SETS: dict[str | None, instructions_lib.InstructionSet] = {}


def _instruction_set_for(path: str | None) -> instructions_lib.InstructionSet:
    with _CACHE_LOCK:
        if path not in _INSTRUCTION_SETS:
            _INSTRUCTION_SETS[path] = instructions_lib.instruction_set(path)
        return _INSTRUCTION_SETS[path]
