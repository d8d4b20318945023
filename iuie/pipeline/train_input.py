"""The training input pipeline: seqio Tasks -> index-based global example sequence -> packed rows -> batches.

Why not ``seqio.get_dataset(...).skip(n)`` (what T5X does with ``ShardInfo``): there the global batch depends
on the number of hosts (each host packs its own shard) and resume re-reads every consumed example. Here:

1. **Examples come from the seqio Tasks** (:class:`TaskExamples`): a Task's own preprocessors (format,
   tokenize, EOS) run on exactly the examples asked for; a cached Task (``USE_CACHED_TASKS``, seqio's Beam
   cache) is read from its cache. Examples are numbered by their position in the split (the source's
   ``index`` order), so cached and uncached Tasks give the same numbers and the same tokens.
2. **The sequence of examples** is :class:`iuie.pipeline.sampling.MixtureSampler`'s: a function of the seed,
   the Mixture's Tasks, sizes and rates; each epoch reshuffled with a seed derived from ``(seed, epoch)``.
3. **Rows**: the sequence is cut into windows of ``window`` examples; each window is trimmed (or over-long
   examples dropped) and packed into rows by the configured packer (``best_fit``, ``seqio`` for seqio's own
   packer, ``none`` for one example per row). The row sequence depends on no batch size and no host count.
4. **Batches** are consecutive runs of ``batch_size`` rows; a process builds only the rows its devices hold
   (:meth:`TrainIterator.next_global_batch`, ``jax.make_array_from_callback``).
5. **State** (:meth:`TrainIterator.get_state`): the window number and the row inside it, plus counters (rows,
   examples, truncated and dropped examples per Task) and a fingerprint of what defines the sequence. It is a
   small JSON dict saved with each checkpoint; restoring it re-plans one window: O(1) in the examples
   consumed. Another batch size continues exactly (rows do not depend on it); another Mixture, seed,
   lengths, packer or window is refused in one line.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

import gin
from iuie.pipeline import packing, sampling

logger = logging.getLogger(__name__)

PACKERS = ("best_fit", "seqio", "none")
STATE_VERSION = 1
WARN_SHARE = 0.01


class DataStateError(ValueError):
    """A saved input-pipeline state that this configuration cannot continue (one-line message)."""


@gin.configurable(module="iuie.pipeline.train_input")
@dataclasses.dataclass(frozen=True)
class InputConfig:
    """How training rows are made (gin: ``train_input.InputConfig.packer = 'seqio'``).

    ``packer``: ``best_fit`` (default), ``seqio`` (seqio's ``EncDecFeatureConverter(pack=True)`` per window) or
    ``none`` (one example per row, the unpacked converter's features). ``window``: examples packed together
    (the best-fit buffer; also the unit of resume work). ``drop_overlong``: drop examples whose inputs or
    targets exceed the feature lengths instead of trimming them (counted per Task in the log and the state).
    """

    packer: str = "best_fit"
    window: int = 1024
    drop_overlong: bool = False

    def __post_init__(self):
        if self.packer not in PACKERS:
            raise ValueError(f"unknown packer {self.packer!r}; expected one of {', '.join(PACKERS)}")
        if self.window < 1:
            raise ValueError(f"window must be positive, got {self.window}")


# --------------------------------------------------------------------------------------------------------
# Examples of one Task
# --------------------------------------------------------------------------------------------------------


class TaskExamples:
    """The tokenized ``inputs`` / ``targets`` of one seqio Task split, by example number (0 .. size - 1).

    A source that lists its raw examples (``iter_examples``, as :class:`iuie.pipeline.seqio_data.LayoutSource`)
    is read lazily: :meth:`get` runs the Task's pre-cache and post-cache preprocessors over just the examples
    asked for. A cached Task, or a source that cannot list examples, is read whole once (seqio's
    ``get_dataset`` without shuffling), ordered by the ``index`` feature when there is one.
    """

    def __init__(self, task: Any, split: str = "train", use_cached: bool = False):
        self.task = task
        self.name = task.name
        self.split = split
        self._raw: list[dict[str, Any]] | None = None
        self._table: list[tuple[np.ndarray, np.ndarray]] | None = None
        source = task.source
        if use_cached or not hasattr(source, "iter_examples"):
            self._table = self._read_whole(use_cached)
        else:
            self._raw = list(source.iter_examples(split))
        self.size = len(self._raw if self._raw is not None else self._table)

    def _read_whole(self, use_cached: bool) -> list[tuple[np.ndarray, np.ndarray]]:
        ds = self.task.get_dataset(None, split=self.split, use_cached=use_cached, shuffle=False, num_epochs=1)
        rows = [(ex.get("index", i), ex["inputs"], ex["targets"]) for i, ex in enumerate(ds.as_numpy_iterator())]
        rows.sort(key=lambda r: int(r[0]))
        return [(np.asarray(i, np.int32), np.asarray(t, np.int32)) for _, i, t in rows]

    def get(self, numbers: Sequence[int]) -> list[tuple[np.ndarray, np.ndarray]]:
        """``(inputs, targets)`` of each example number, untrimmed (EOS appended as the Task says)."""
        if self._table is not None:
            return [self._table[n] for n in numbers]
        if not numbers:
            return []
        import tensorflow as tf

        wanted = sorted(set(int(n) for n in numbers))
        raw = [self._raw[n] for n in wanted]
        ds = tf.data.Dataset.from_tensor_slices(
            {
                "index": np.array([e["index"] for e in raw], np.int64),
                "split": np.array([e["split"] for e in raw], object),
                "record": np.array([e["record"].encode("utf-8") for e in raw], object),
            }
        )
        ds = self.task.preprocess_precache(ds, seed=None)
        ds = self.task.preprocess_postcache(ds, sequence_length=None, seed=None)
        got = {}
        for ex in ds.as_numpy_iterator():
            got[int(ex["index"])] = (np.asarray(ex["inputs"], np.int32), np.asarray(ex["targets"], np.int32))
        by_number = {}
        for n, e in zip(wanted, raw):
            if e["index"] not in got:
                raise ValueError(f"Task {self.name}: its preprocessors dropped example {n} (index {e['index']})")
            by_number[n] = got[e["index"]]
        return [by_number[int(n)] for n in numbers]


def mixture_tasks(name: str) -> tuple[list[Any], list[float]]:
    """The Tasks of a Mixture (sorted by name) and their rates; a Task alone has rate 1."""
    import seqio

    entry = seqio.get_mixture_or_task(name)
    if isinstance(entry, seqio.Mixture):
        tasks = sorted(entry.tasks, key=lambda t: t.name)
        return tasks, [float(entry.get_rate(t)) for t in tasks]
    return [entry], [1.0]


# --------------------------------------------------------------------------------------------------------
# The iterator
# --------------------------------------------------------------------------------------------------------


@dataclasses.dataclass
class Window:
    """One packed window: its rows (lists of ``(task, example)``), their tokens, and its counts."""

    rows: list[list[int]]  # indices into ``tokens`` / ``refs``
    tokens: list[tuple[np.ndarray, np.ndarray]]
    refs: list[tuple[int, int]]  # (task number, example number) per entry of ``tokens``
    truncated: dict[str, int]
    dropped: dict[str, int]
    over_inputs: dict[str, int]
    over_targets: dict[str, int]
    seen: dict[str, int]


class TrainIterator:
    """Global batches of packed rows with a small, exact, host-independent state (module docstring).

    Args:
      sources: one :class:`TaskExamples` per Task, in the Mixture's order.
      rates: the rate of each.
      lengths: ``{"inputs": N, "targets": M}``.
      seed: the shuffle seed.
      config: an :class:`InputConfig`.
      name: the Mixture's name (part of the fingerprint).
      eos_ids: the EOS id per feature (None: plain truncation), for seqio-style trimming.
      prefetch: prepare the next window in a background thread.
    """

    def __init__(
        self,
        sources: Sequence[TaskExamples],
        rates: Sequence[float],
        lengths: Mapping[str, int],
        seed: int,
        config: InputConfig = InputConfig(),
        *,
        name: str = "",
        eos_ids: Mapping[str, int | None] | None = None,
        prefetch: bool = True,
    ):
        self.sources = list(sources)
        self.lengths = {"inputs": int(lengths["inputs"]), "targets": int(lengths["targets"])}
        self.config = config
        self.seed = int(seed)
        self.name = name
        self.eos_ids = dict(eos_ids or {"inputs": 1, "targets": 1})
        self.sampler = sampling.MixtureSampler([s.size for s in self.sources], rates, self.seed)
        self.packed = config.packer != "none"
        self.features = packing.PACKED_FEATURES if self.packed else packing.UNPACKED_FEATURES
        self._window_number = 0
        self._row = 0
        self._rows_total = 0
        self._examples_total = 0
        self._counts = {"truncated": {}, "dropped": {}}
        self._window: Window | None = None
        self._window_for = -1
        self.last_refs: list[list[tuple[int, int]]] = []  # (Task, example) of each row of the last batch
        self.prefetch = prefetch
        self._pool = None
        self._next = None

    # -- the row sequence --------------------------------------------------------------------------------

    def fingerprint(self) -> dict[str, Any]:
        """What defines the row sequence; a saved state is only continued under the same fingerprint."""
        return {
            "mixture": self.name,
            "tasks": [s.name for s in self.sources],
            "sizes": [s.size for s in self.sources],
            "seed": self.seed,
            "lengths": self.lengths,
            "packer": self.config.packer,
            "window": self.config.window,
            "drop_overlong": self.config.drop_overlong,
        }

    def window(self, number: int) -> Window:
        """Window ``number``: its draws fetched from the Tasks, trimmed or dropped, and packed.

        The next window is prepared in a background thread meanwhile (it is a pure function of its number),
        so tokenizing it overlaps training on this one.
        """
        if self._window_for == number and self._window is not None:
            return self._window
        future, self._next = self._next, None
        win = future[1].result() if future is not None and future[0] == number else self._make_window(number)
        self._window, self._window_for = win, number
        if self.prefetch:
            import concurrent.futures

            if self._pool is None:
                self._pool = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="iuie-input")
            self._next = (number + 1, self._pool.submit(self._make_window, number + 1))
        return win

    def _make_window(self, number: int) -> Window:
        w = self.config.window
        draws = self.sampler.draws(number * w, (number + 1) * w)
        tokens: list[tuple[np.ndarray, np.ndarray] | None] = [None] * len(draws.tasks)
        for t in np.unique(draws.tasks).tolist():
            where = np.flatnonzero(draws.tasks == t)
            for i, pair in zip(where.tolist(), self.sources[t].get(draws.examples[where].tolist())):
                tokens[i] = pair
        counts = {k: {} for k in ("truncated", "dropped", "over_inputs", "over_targets", "seen")}
        kept, refs = [], []
        for i, (inputs, targets) in enumerate(tokens):
            task = self.sources[int(draws.tasks[i])].name
            over_in, over_tg = len(inputs) > self.lengths["inputs"], len(targets) > self.lengths["targets"]
            counts["seen"][task] = counts["seen"].get(task, 0) + 1
            for key, flag in (("over_inputs", over_in), ("over_targets", over_tg)):
                if flag:
                    counts[key][task] = counts[key].get(task, 0) + 1
            if over_in or over_tg:
                key = "dropped" if self.config.drop_overlong else "truncated"
                counts[key][task] = counts[key].get(task, 0) + 1
                if self.config.drop_overlong:
                    continue
            kept.append(
                (
                    packing.trim(inputs, self.lengths["inputs"], self.eos_ids.get("inputs")),
                    packing.trim(targets, self.lengths["targets"], self.eos_ids.get("targets")),
                )
            )
            refs.append((int(draws.tasks[i]), int(draws.examples[i])))
        return Window(self._pack(kept, number), kept, refs, **counts)

    def _pack(self, tokens: list[tuple[np.ndarray, np.ndarray]], number: int) -> list[list[int]]:
        if self.config.packer == "none":
            return [[i] for i in range(len(tokens))]
        if self.config.packer == "seqio":
            return _seqio_rows(tokens, self.lengths)
        rows = packing.best_fit([len(a) for a, _ in tokens], [len(b) for _, b in tokens], self.lengths)
        order = np.random.default_rng([self.seed, 3, number]).permutation(len(rows))
        return [sorted(rows[i]) for i in order]

    def _take(self, count: int) -> list[list[tuple[np.ndarray, np.ndarray]]]:
        """The next ``count`` rows (as token pairs), advancing the state."""
        out, self.last_refs = [], []
        while len(out) < count:
            win = self.window(self._window_number)
            if self._window_number != self._counted_window():
                self._count(win)
            if self._row >= len(win.rows):
                self._window_number += 1
                self._row = 0
                continue
            row = win.rows[self._row]
            out.append([win.tokens[i] for i in row])
            self.last_refs.append([win.refs[i] for i in row])
            self._row += 1
            self._rows_total += 1
            self._examples_total += len(row)
        return out

    def _counted_window(self) -> int:
        return self._counts.get("window", -1)

    def _count(self, win: Window) -> None:
        """Adds a window's truncation / drop counts once, when the iterator first enters it."""
        for key in ("truncated", "dropped"):
            for task, n in getattr(win, key).items():
                self._counts[key][task] = self._counts[key].get(task, 0) + n
        self._counts["window"] = self._window_number

    # -- batches -----------------------------------------------------------------------------------------

    def element_spec(self, batch_size: int) -> dict[str, tuple[tuple[int, int], Any]]:
        """``{feature: (shape, dtype)}`` of a global batch."""
        spec = {}
        for name in self.features:
            side = "inputs" if name.startswith("encoder") else "targets"
            spec[name] = ((int(batch_size), self.lengths[side]), np.int32)
        return spec

    def next_rows(self, count: int) -> dict[str, np.ndarray]:
        """The next ``count`` rows' features on this host (all of them): for tests and benchmarks."""
        return packing.row_features(self._take(count), self.lengths, self.packed)

    def next_global_batch(self, batch_size: int, sharding_for: Callable[[int], Any]) -> dict[str, Any]:
        """The next global batch as ``jax.Array``s; this process builds only the rows its devices hold.

        ``sharding_for(ndim)``: the batch sharding (``Partitioner.batch_sharding``).
        """
        import jax

        rows = self._take(batch_size)
        sharding = sharding_for(2)
        built: dict[tuple[int, int], dict[str, np.ndarray]] = {}
        out = {}
        for name, (shape, dtype) in self.element_spec(batch_size).items():

            def callback(index, _name=name):
                start, stop, _ = index[0].indices(batch_size)
                if (start, stop) not in built:
                    built[(start, stop)] = packing.row_features(rows[start:stop], self.lengths, self.packed)
                return built[(start, stop)][_name][(slice(None),) + tuple(index[1:])].astype(dtype)

            out[name] = jax.make_array_from_callback(shape, sharding, callback)
        return out

    # -- state -------------------------------------------------------------------------------------------

    @property
    def examples_consumed(self) -> int:
        return self._examples_total

    def get_state(self) -> dict[str, Any]:
        """JSON-able: where the next row is, what has been consumed, and the fingerprint."""
        return {
            "version": STATE_VERSION,
            "window": self._window_number,
            "row": self._row,
            "rows": self._rows_total,
            "examples": self._examples_total,
            "truncated": dict(self._counts["truncated"]),
            "dropped": dict(self._counts["dropped"]),
            "counted_window": self._counted_window(),
            "fingerprint": self.fingerprint(),
        }

    def set_state(self, state: Mapping[str, Any]) -> None:
        """Continues from a :meth:`get_state` dict; :class:`DataStateError` (one line) when it cannot."""
        if "version" not in state:
            raise DataStateError(
                f"the checkpoint's data state {dict(state)} counts batches of the old input pipeline; this "
                "pipeline records examples and cannot continue it exactly (start a new MODEL_DIR, or use "
                "INITIAL_CHECKPOINT_PATH to start from its weights)"
            )
        saved, now = dict(state["fingerprint"]), self.fingerprint()
        changed = [k for k in now if saved.get(k) != now[k]]
        if changed:
            detail = "; ".join(f"{k}: saved {saved.get(k)!r}, now {now[k]!r}" for k in changed[:3])
            raise DataStateError(f"cannot continue the saved input pipeline: {detail}")
        self._window_number = int(state["window"])
        self._row = int(state["row"])
        self._rows_total = int(state["rows"])
        self._examples_total = int(state["examples"])
        self._counts = {
            "truncated": dict(state.get("truncated", {})),
            "dropped": dict(state.get("dropped", {})),
            "window": int(state.get("counted_window", -1)),
        }

    # -- reports -----------------------------------------------------------------------------------------

    def length_report(self) -> list[str]:
        """Per Task, the share of over-long examples in the current window (a bounded sample)."""
        win = self.window(self._window_number)
        lines = []
        for task in sorted(win.seen):
            seen = win.seen[task]
            over_in, over_tg = win.over_inputs.get(task, 0), win.over_targets.get(task, 0)
            share = (win.truncated.get(task, 0) + win.dropped.get(task, 0)) / seen
            action = "dropped" if self.config.drop_overlong else "truncated"
            line = (
                f"{task}: {share:.1%} of {seen} sampled examples over the lengths {self.lengths} "
                f"(inputs {over_in}, targets {over_tg}) {action}"
            )
            lines.append(("WARNING " if share > WARN_SHARE else "") + line)
        return lines

    def totals_line(self) -> str:
        n_t, n_d = sum(self._counts["truncated"].values()), sum(self._counts["dropped"].values())
        return (
            f"input pipeline: {self._examples_total} examples in {self._rows_total} rows "
            f"({self._examples_total / max(1, self._rows_total):.2f} per row, packer {self.config.packer}); "
            f"{n_t} truncated, {n_d} dropped as over-long"
        )


def _seqio_rows(tokens: list[tuple[np.ndarray, np.ndarray]], lengths: Mapping[str, int]) -> list[list[int]]:
    """seqio's own packing (``EncDecFeatureConverter(pack=True)``) of a window, as lists of example numbers.

    The converter packs the examples in the order given; each packed row's segments are matched back to the
    examples they came from (segments appear in order, so a running counter identifies them).
    """
    import seqio
    import tensorflow as tf

    ds = tf.data.Dataset.from_generator(
        lambda: ({"inputs": a, "targets": b} for a, b in tokens),
        output_signature={"inputs": tf.TensorSpec([None], tf.int32), "targets": tf.TensorSpec([None], tf.int32)},
    )
    converted = seqio.EncDecFeatureConverter(pack=True)(ds, dict(lengths))
    rows, next_example = [], 0
    for row in converted.as_numpy_iterator():
        segments = len(np.unique(row["encoder_segment_ids"][row["encoder_segment_ids"] > 0]))
        rows.append(list(range(next_example, next_example + segments)))
        next_example += segments
    if next_example != len(tokens):
        raise ValueError(f"seqio's packer returned {next_example} of {len(tokens)} examples")
    return rows


def build(
    mixture_or_task_name: str,
    lengths: Mapping[str, int],
    seed: int,
    *,
    split: str = "train",
    use_cached: bool = False,
    config: InputConfig | None = None,
    state: Mapping[str, Any] | None = None,
) -> TrainIterator:
    """The training iterator of a Mixture or Task, continued from ``state`` when one is given."""
    tasks, rates = mixture_tasks(mixture_or_task_name)
    sources = [TaskExamples(t, split, use_cached) for t in tasks]
    eos = {}
    for key in ("inputs", "targets"):
        feature = tasks[0].output_features[key]
        eos[key] = feature.vocabulary.eos_id if feature.add_eos else None
    it = TrainIterator(sources, rates, lengths, seed, config or InputConfig(), name=mixture_or_task_name, eos_ids=eos)
    if state:
        it.set_state(state)
    return it


def present_mixture(name: str, split: str = "train") -> tuple[str, list[str]]:
    """A Mixture of the Tasks of ``name`` whose ``split`` is on disk, with the same rates, registered as
    ``<name>__present`` (a partial download still trains, shows and benchmarks); and the Tasks left out."""
    import seqio

    from iuie.pipeline import seqio_data

    entry = seqio.get_mixture_or_task(name)
    tasks = list(entry.tasks) if isinstance(entry, seqio.Mixture) else [entry]
    present, missing = [], []
    for task in tasks:
        if split not in task.source.splits:
            continue
        try:
            if hasattr(task.source, "split_path"):
                task.source.split_path(split)
            present.append(task)
        except seqio_data.DataNotFoundError:
            missing.append(task.name)
    if not present:
        raise seqio_data.DataNotFoundError(
            f"no Task of {name} has its {split!r} split on disk (data root {seqio_data.data_options().data_dir!r})"
        )
    sub = f"{name}__present"
    seqio.MixtureRegistry.remove(sub)
    if isinstance(entry, seqio.Mixture):
        seqio.MixtureRegistry.add(sub, [(t.name, entry.get_rate(t)) for t in present])
    else:
        seqio.MixtureRegistry.add(sub, [(t.name, 1.0) for t in present])
    return sub, missing
