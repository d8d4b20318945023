"""Dynamic batching: requests from many concurrent callers gathered into one model call, off the event loop.

One worker thread owns the model. Callers ``await batcher.submit(job)``: the job goes on a thread-safe queue
with an asyncio future of the caller's loop. The worker takes the first waiting job, then keeps taking jobs
until their cost (texts) would pass ``max_batch``, runs ``run_batch(jobs)`` once and resolves each future from
the loop's thread (``call_soon_threadsafe``), so the event loop never waits on a decode.

How long it gathers adapts to the load: it waits for more jobs (at most ``max_wait_ms`` after the first) only
while the batch holds fewer jobs than the previous one did, since the callers of that batch are likely to be
coming back; once it holds as many, it takes only what is already queued and runs. A lone caller therefore never
waits ``max_wait_ms`` per request (the previous batch was one job), while 32 callers in a loop keep meeting in
batches of ~32. Before the first batch the expectation is ``max_batch`` (one wait at start). ``run_batch`` returns one result per job, or an exception instance for a
job that failed; an exception raised by ``run_batch`` itself fails every job of that batch and is logged, and
the worker goes on with the next batch. A job costlier than ``max_batch`` runs alone.

Leaf module: no JAX, no iuie imports (the tests drive it with a plain function).
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import queue
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

log = logging.getLogger("iuie.serve")


@dataclasses.dataclass
class BatchStats:
    """Counts since start: batches run, jobs and texts in them, the largest batch, failed jobs."""

    batches: int = 0
    jobs: int = 0
    texts: int = 0
    largest: int = 0
    failed: int = 0

    def to_json(self) -> dict[str, Any]:
        mean = self.texts / self.batches if self.batches else 0.0
        return {**dataclasses.asdict(self), "mean_texts_per_batch": round(mean, 3)}


@dataclasses.dataclass
class _Pending:
    job: Any
    cost: int
    loop: asyncio.AbstractEventLoop
    future: asyncio.Future


_STOP = object()


class Batcher:
    """Gathers jobs into batches for ``run_batch`` on one worker thread (module docstring)."""

    def __init__(
        self,
        run_batch: Callable[[Sequence[Any]], Sequence[Any]],
        *,
        max_batch: int = 32,
        max_wait_ms: float = 5.0,
        cost: Callable[[Any], int] = lambda job: 1,
    ):
        if max_batch < 1 or max_wait_ms < 0:
            raise ValueError("max_batch >= 1 and max_wait_ms >= 0 are needed")
        self.run_batch = run_batch
        self.max_batch = int(max_batch)
        self.max_wait = float(max_wait_ms) / 1000.0
        self.cost = cost
        self.stats = BatchStats()
        self._queue: queue.Queue = queue.Queue()
        self._held: _Pending | None = None  # a job taken that did not fit the last batch: it opens the next
        self._expected = self.max_batch  # jobs in the previous batch: how many to wait for (module docstring)
        self._thread: threading.Thread | None = None

    # -- life cycle -----------------------------------------------------------------------------------

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._work, name="iuie-serve-batcher", daemon=True)
            self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        if self._thread is not None:
            self._queue.put(_STOP)
            self._thread.join(timeout)
            self._thread = None

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    # -- callers --------------------------------------------------------------------------------------

    async def submit(self, job: Any) -> Any:
        """The job's result; raises the job's exception if it failed."""
        if not self.running:
            raise RuntimeError("the batcher is not running")
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        self._queue.put(_Pending(job, max(int(self.cost(job)), 1), loop, future))
        return await future

    # -- the worker -----------------------------------------------------------------------------------

    def _next_batch(self) -> list[_Pending] | None:
        first = self._held if self._held is not None else self._queue.get()
        self._held = None
        if first is _STOP:
            return None
        batch, total = [first], first.cost
        deadline = time.monotonic() + self.max_wait
        while total < self.max_batch:
            remaining = deadline - time.monotonic()
            wait = remaining > 0 and len(batch) < self._expected
            try:
                item = self._queue.get(timeout=remaining) if wait else self._queue.get_nowait()
            except queue.Empty:
                break
            if item is _STOP or total + item.cost > self.max_batch:
                self._held = item  # a stop or a job that does not fit: handled after this batch
                break
            batch.append(item)
            total += item.cost
        self._expected = len(batch)
        return batch

    def _work(self) -> None:
        while True:
            batch = self._next_batch()
            if batch is None:
                return
            try:
                results = list(self.run_batch([p.job for p in batch]))
                if len(results) != len(batch):
                    raise RuntimeError(f"run_batch gave {len(results)} results for {len(batch)} jobs")
            except Exception as e:  # the model failed: every job of the batch fails, the worker goes on
                log.exception("batch of %d jobs failed", len(batch))
                results = [e] * len(batch)
            self.stats.batches += 1
            self.stats.jobs += len(batch)
            texts = sum(p.cost for p in batch)
            self.stats.texts += texts
            self.stats.largest = max(self.stats.largest, texts)
            for pending, result in zip(batch, results):
                if isinstance(result, BaseException):
                    self.stats.failed += 1
                pending.loop.call_soon_threadsafe(_resolve, pending.future, result)
            if self._held is _STOP:
                return


def _resolve(future: asyncio.Future, result: Any) -> None:
    if future.done():  # the caller went away (cancelled): nothing to deliver
        return
    if isinstance(result, BaseException):
        future.set_exception(result)
    else:
        future.set_result(result)
