"""The Batcher's adaptive wait (iuie.serving.batcher docstring): it waits for more jobs only while the batch
holds fewer jobs than the previous batch did. Reference: that rule, worked by hand for each scenario below;
the runner is a plain function that records the batches it gets."""

from __future__ import annotations

import asyncio
import time

from iuie.serving.batcher import Batcher


def recording():
    batches: list[list[int]] = []

    def run(jobs):
        batches.append(list(jobs))
        return [job * 10 for job in jobs]

    return run, batches


def test_a_lone_caller_waits_only_before_the_first_batch():
    """max_wait 1 s: the first batch expects max_batch jobs and waits the full second; after that the
    previous batch held one job, so each later request of a lone caller runs at once."""
    run, batches = recording()
    batcher = Batcher(run, max_batch=8, max_wait_ms=1000)

    async def scenario():
        batcher.start()
        try:
            t0 = time.monotonic()
            first = await batcher.submit(1)
            first_seconds = time.monotonic() - t0
            t0 = time.monotonic()
            later = [await batcher.submit(i) for i in (2, 3, 4)]
            return first, first_seconds, later, time.monotonic() - t0
        finally:
            batcher.stop()

    first, first_seconds, later, later_seconds = asyncio.run(scenario())
    assert first == 10 and later == [20, 30, 40]
    assert batches == [[1], [2], [3], [4]]
    assert first_seconds >= 0.9  # the one wait at start
    assert later_seconds < 0.9, later_seconds  # three requests without a 1 s wait each


def test_callers_of_a_batch_meet_again_when_they_come_back_staggered():
    """Four callers in one batch, then the same four again, arriving 50 ms apart: the batch holds fewer than
    the previous four, so the worker waits for them (max_wait 2 s) and they share one batch again."""
    run, batches = recording()
    batcher = Batcher(run, max_batch=8, max_wait_ms=2000)

    async def staggered(jobs):
        tasks = []
        for job in jobs:
            tasks.append(asyncio.create_task(batcher.submit(job)))
            await asyncio.sleep(0.05)
        return await asyncio.gather(*tasks)

    async def scenario():
        batcher.start()
        try:
            one = await asyncio.gather(*(batcher.submit(j) for j in (1, 2, 3, 4)))
            two = await staggered((5, 6, 7, 8))
            return one, two
        finally:
            batcher.stop()

    one, two = asyncio.run(scenario())
    assert one == [10, 20, 30, 40] and two == [50, 60, 70, 80]
    assert batches == [[1, 2, 3, 4], [5, 6, 7, 8]], batches
    assert batcher.stats.batches == 2 and batcher.stats.largest == 4
