"""The index-based sampler of a Mixture: global example position -> (Task, example), a pure function.

Nothing here reads data or knows about hosts: the sequence of examples is a function of the seed, the Tasks'
sizes and their rates only, so every process computes the same sequence and each can pick its own rows of it
(Grain's ``IndexSampler`` idea, for seqio Mixtures). No iterator state is needed beyond a position.

**Epochs.** A Mixture epoch is ``quota[t]`` draws from each Task ``t``, in proportion to its rate:
``quota[t] = round(rate[t] * s)`` with ``s = min(n[t] / rate[t])``, so the Task that is sampled most relative
to its size is seen exactly once per epoch and the others in proportion (with iuie's rates,
``weight * min(n, 10,000)``, the quotas are exactly the paper's per-Task counts). Epoch ``e`` interleaves the
draws with a permutation seeded by ``(seed, e)``. Each Task walks its own examples in passes: pass ``p`` of
Task ``t`` is a permutation seeded by ``(seed, t, p)``, so a second pass over a finite Task is a new order,
and a Task whose quota exceeds its size (or is a fraction of it) cycles through passes across epochs without
repeating an example inside a pass.
"""

from __future__ import annotations

import collections
import dataclasses
from collections.abc import Sequence

import numpy as np

# Salts that keep the three seeded streams apart (np.random.SeedSequence mixes the whole list).
_INTERLEAVE = 1
_TASK_PASS = 2


def epoch_quotas(sizes: Sequence[int], rates: Sequence[float]) -> list[int]:
    """Draws per Task per epoch (see the module docstring); Tasks with rate 0 or no examples get none."""
    if len(sizes) != len(rates):
        raise ValueError(f"{len(sizes)} Task sizes but {len(rates)} rates")
    live = [(n, r) for n, r in zip(sizes, rates) if n > 0 and r > 0]
    if not live:
        raise ValueError("the Mixture has no Task with examples and a positive rate")
    scale = min(n / r for n, r in live)
    return [max(1, round(r * scale)) if n > 0 and r > 0 else 0 for n, r in zip(sizes, rates)]


@dataclasses.dataclass(frozen=True)
class Draws:
    """Draws ``[start, stop)`` of the global sequence: the Task number and the example number of each."""

    tasks: np.ndarray  # int32, index into the sampler's Tasks
    examples: np.ndarray  # int64, index into that Task's examples (0 .. size - 1)


class MixtureSampler:
    """Global example position -> (Task number, example number); see the module docstring.

    Args:
      sizes: examples per Task (after any filtering); order is the Mixture's (sorted by Task name).
      rates: the Mixture's rate per Task.
      seed: the shuffle seed.
    """

    def __init__(self, sizes: Sequence[int], rates: Sequence[float], seed: int):
        self.sizes = [int(n) for n in sizes]
        self.quotas = epoch_quotas(self.sizes, rates)
        self.seed = int(seed)
        self.epoch_size = sum(self.quotas)
        self._epochs: collections.OrderedDict[int, tuple[np.ndarray, np.ndarray]] = collections.OrderedDict()
        self._passes: collections.OrderedDict[tuple[int, int], np.ndarray] = collections.OrderedDict()

    def _epoch(self, epoch: int) -> tuple[np.ndarray, np.ndarray]:
        """(Task per slot, rank of that draw among the epoch's draws of its Task), cached for a few epochs."""
        if epoch not in self._epochs:
            labels = np.repeat(np.arange(len(self.quotas), dtype=np.int32), self.quotas)
            rng = np.random.default_rng([self.seed, _INTERLEAVE, epoch])
            labels = labels[rng.permutation(labels.size)]
            # rank[i] = how many earlier slots hold the same Task: positions sorted stably by Task, minus the
            # first position of that Task's run.
            order = np.argsort(labels, kind="stable")
            starts = np.concatenate([[0], np.cumsum(self.quotas)[:-1]])
            rank = np.empty(labels.size, np.int64)
            rank[order] = np.arange(labels.size) - np.repeat(starts, self.quotas)
            self._epochs[epoch] = (labels, rank)
            while len(self._epochs) > 2:
                self._epochs.popitem(last=False)
        return self._epochs[epoch]

    def task_pass(self, task: int, number: int) -> np.ndarray:
        """The order of pass ``number`` over Task ``task``'s examples (a permutation seeded by both)."""
        key = (task, number)
        if key not in self._passes:
            rng = np.random.default_rng([self.seed, _TASK_PASS, task, number])
            self._passes[key] = rng.permutation(self.sizes[task])
            while len(self._passes) > 4 * max(1, len(self.sizes)):
                self._passes.popitem(last=False)
        return self._passes[key]

    def draws(self, start: int, stop: int) -> Draws:
        """The draws at global positions ``start .. stop - 1`` (any range; cost O(stop - start + epoch))."""
        tasks, examples = [], []
        position = start
        while position < stop:
            epoch, offset = divmod(position, self.epoch_size)
            take = min(stop - position, self.epoch_size - offset)
            labels, rank = self._epoch(epoch)
            t = labels[offset : offset + take]
            # The c-th draw of Task t overall: c = epoch * quota[t] + rank; pass c // n, example pass[c % n].
            counter = epoch * np.asarray(self.quotas, np.int64)[t] + rank[offset : offset + take]
            sizes = np.asarray(self.sizes, np.int64)[t]
            passes, within = np.divmod(counter, sizes)
            ex = np.empty(take, np.int64)
            for task, number in set(zip(t.tolist(), passes.tolist())):
                mask = (t == task) & (passes == number)
                ex[mask] = self.task_pass(task, number)[within[mask]]
            tasks.append(t)
            examples.append(ex)
            position += take
        if not tasks:
            return Draws(np.zeros(0, np.int32), np.zeros(0, np.int64))
        return Draws(np.concatenate(tasks), np.concatenate(examples))
