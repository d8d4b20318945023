"""Preemption: a SIGTERM asks the train loop to checkpoint at the next step boundary and exit cleanly.

Preemptible VMs, SLURM (``scancel``, time limits with ``--signal``) and Kubernetes (pod eviction) send SIGTERM
and wait a grace period before SIGKILL. Python's default for SIGTERM ends the process at once (exit status
143), losing every step since the last periodic checkpoint. :class:`PreemptionGuard` replaces that default for
the duration of a run with a handler that only records the request; the loop asks :meth:`PreemptionGuard.
reached` after each step and, when it is true, saves and returns.

Several processes must stop at the *same* step (a checkpoint is a collective write, and a process that
leaves early deadlocks the others' next step). With ``jax.distributed`` running, the guard therefore leaves
SIGTERM to JAX's coordination service (its preemption notifier) and asks
``multihost_utils.reached_preemption_sync_point(step)``, which is true on every process at the same step once
any of them was signalled: T5X's and Orbax's mechanism.
"""

from __future__ import annotations

import signal
import threading
from typing import Any


class PreemptionGuard:
    """Context manager: while open, SIGTERM sets a flag instead of ending the process (one process), or is
    handled by JAX's preemption sync manager (several processes)."""

    def __init__(self, signals: tuple[int, ...] = (signal.SIGTERM,), *, multiprocess: bool | None = None):
        self.signals = signals
        self._multiprocess = multiprocess
        self._event = threading.Event()
        self._previous: dict[int, Any] = {}
        self.signal_name: str | None = None

    def _handler(self, signum: int, frame: Any) -> None:
        del frame
        self.signal_name = signal.Signals(signum).name
        self._event.set()

    def install(self) -> PreemptionGuard:
        """Starts guarding (what ``with`` does); returns ``self``."""
        return self.__enter__()

    def uninstall(self) -> None:
        """Restores the previous handlers (what leaving ``with`` does)."""
        self.__exit__(None, None, None)

    def __enter__(self) -> PreemptionGuard:
        if self._multiprocess is None:
            import jax

            self._multiprocess = jax.process_count() > 1
        # Signal handlers can only be set from the main thread; a loop run elsewhere keeps the defaults.
        if not self._multiprocess and threading.current_thread() is threading.main_thread():
            for signum in self.signals:
                self._previous[signum] = signal.signal(signum, self._handler)
        return self

    def __exit__(self, *exc: Any) -> None:
        for signum, previous in self._previous.items():
            signal.signal(signum, previous)
        self._previous.clear()

    @property
    def requested(self) -> bool:
        """True once a signal arrived in this process (one-process runs)."""
        return self._event.is_set()

    def reached(self, step: int) -> bool:
        """Whether the loop must checkpoint ``step`` and stop: the same answer on every process."""
        if self._multiprocess:
            from jax.experimental import multihost_utils

            try:
                if multihost_utils.reached_preemption_sync_point(step):
                    self.signal_name = self.signal_name or "SIGTERM"
                    return True
            except RuntimeError:  # no preemption sync manager (distributed runtime without one)
                return False
            return False
        return self.requested
