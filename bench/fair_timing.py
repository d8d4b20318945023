"""Fair side-by-side timing for the benchmarks on a shared CPU: the same cores for every side, interleaved calls.

* ``pin_threads(n)`` (call it before jax or torch is imported) confines the process, hence both engines, to
  the same ``n`` cores (``sched_setaffinity``) and sizes the thread pools to them: XLA's CPU client and
  Eigen pool take the cores they are allowed, torch gets ``set_num_threads(n)`` / one inter-op thread (see
  ``torch_threads``), OpenMP and MKL get ``n`` through their environment variables.
* ``interleaved(sides, rounds)`` calls every side once per round, alternating the order (A B, B A, ...), so
  a burst of load from other processes hits all sides alike and no side always runs first after another.
* ``summary`` gives min and median (the min is the least disturbed figure, the median the typical one).
* ``matmul_ceiling()`` measures what these cores can compute at best: the float32 GFLOP/s of a large square
  matmul, the better of XLA's and torch's. A side's model FLOPs per second over it says how much of the
  machine the side uses, and the ceiling over a baseline's rate bounds any speed-up over that baseline.

Importing this module makes jax use the CPU (``JAX_PLATFORMS=cpu`` unless set): with libtpu installed (the
test extra) jax would otherwise probe for a TPU and print libtpu's warnings.
"""

from __future__ import annotations

import os
import statistics
import time
from collections.abc import Callable, Mapping, Sequence

os.environ.setdefault("JAX_PLATFORMS", "cpu")


def pin_threads(n: int | None) -> int:
    """Restricts this process to ``n`` of its allowed cores (all when None); returns the count in use."""
    allowed = sorted(os.sched_getaffinity(0))
    n = len(allowed) if not n else min(n, len(allowed))
    os.sched_setaffinity(0, set(allowed[:n]))
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[var] = str(n)
    return n


def torch_threads(n: int) -> None:
    import torch

    torch.set_num_threads(n)
    try:
        torch.set_num_interop_threads(1)
    except RuntimeError:  # already set once in this process
        pass


def interleaved(sides: Mapping[str, Callable[[], object]], rounds: int) -> dict[str, list[float]]:
    """Seconds of each call: ``rounds`` calls per side, one per side per round, the order alternating."""
    names = list(sides)
    times: dict[str, list[float]] = {name: [] for name in names}
    for r in range(rounds):
        for name in names if r % 2 == 0 else reversed(names):
            start = time.perf_counter()
            sides[name]()
            times[name].append(time.perf_counter() - start)
    return times


def summary(seconds: Sequence[float]) -> dict[str, float]:
    return {"min_s": min(seconds), "median_s": statistics.median(seconds), "calls": len(seconds)}


def load_average() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def matmul_ceiling(n: int = 2048, calls: int = 10) -> dict[str, float]:
    """Float32 GFLOP/s of an ``n x n`` matmul on the cores this process may use: the best of ``calls`` timed
    calls, for XLA and for torch; ``best`` is the larger. No network layer runs faster than its matmuls at
    this size, so it is the ceiling of any side's model-FLOPs rate."""
    import jax
    import jax.numpy as jnp
    import numpy as np
    import torch

    flop = 2.0 * n**3
    a = jnp.asarray(np.random.default_rng(0).standard_normal((n, n), np.float32))
    matmul = jax.jit(lambda x: x @ x)
    matmul(a).block_until_ready()
    xla = min(_timed(lambda: matmul(a).block_until_ready()) for _ in range(calls))
    t = torch.from_numpy(np.array(a))  # a writable copy: torch refuses read-only buffers
    t @ t
    torch_s = min(_timed(lambda: t @ t) for _ in range(calls))
    rates = {"xla_gflops": flop / xla / 1e9, "torch_gflops": flop / torch_s / 1e9}
    return {**rates, "best_gflops": max(rates.values()), "n": n}


def _timed(call: Callable[[], object]) -> float:
    start = time.perf_counter()
    call()
    return time.perf_counter() - start
