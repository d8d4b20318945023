"""The shared launch of the binaries (``iuie.train``, ``iuie.eval``, ``iuie.infer``): flags, the multi-process
start, gin parsing and one-line errors.

**When to start JAX's multi-process runtime.** ``jax.distributed.initialize`` blocks until every process of
the launch has joined, so it must run only when this process really is one task of a multi-process launch.
:func:`detect_launch` decides from the flags and the environment, never from an allocation alone:

* flags: ``--multiprocess`` (T5X's ``--multiprocess_gpu`` is an alias; CPU and TPU hosts use it too) or
  ``--coordinator_address`` (with ``--process_count`` / ``--process_index``);
* ``JAX_COORDINATOR_ADDRESS`` (with ``JAX_NUM_PROCESSES`` / ``JAX_PROCESS_ID``: the neutral recipe, e.g. for
  Kubernetes JobSet);
* a SLURM job *step* of several tasks (``srun``: ``SLURM_STEP_ID`` and ``SLURM_STEP_NUM_TASKS`` > 1). An
  ``sbatch`` script runs as the batch step with ``SLURM_NTASKS`` and ``SLURM_PROCID`` set but no step of its
  own, so a plain ``python -m iuie.train`` inside it stays a single process instead of waiting for peers
  that never come;
* Open MPI (``mpirun``: ``OMPI_COMM_WORLD_SIZE`` > 1 and ``OMPI_COMM_WORLD_RANK``);
* a Cloud TPU pod slice (``TPU_WORKER_HOSTNAMES`` naming several hosts and ``TPU_WORKER_ID``).

**Bounded start.** A wrong or unreachable coordinator ends the process within ``--distributed_timeout``
seconds with one line naming the address (exit status 2), never a hang and never the runtime's own abort
(a C++ stack trace): the host name is resolved first (an unknown host fails at once); process 0 checks that
the address is one of its own; the other processes wait for the coordinator's port to accept connections;
and a watchdog ends the process with one line should ``jax.distributed.initialize`` not return in time
(peers that never come).

**Errors.** Configuration and data errors end the process at once with one line on stderr and exit
status 2 (:func:`run_configured`), never a traceback.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import os
import socket
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import gin
from iuie.runtime import errors, gin_flags

logger = logging.getLogger("iuie.launch")

EXIT_CONFIG_ERROR = 2
DEFAULT_DISTRIBUTED_TIMEOUT = 120
DISTRIBUTED_TIMEOUT_FLAG = "--distributed_timeout"
# jax's Cloud TPU cluster uses this port for its coordinator on worker 0.
TPU_COORDINATOR_PORT = 8476
# SLURM's pseudo step ids of the batch script and of the "extern" step: not a task launch.
_SLURM_NON_STEPS = {"4294967294", "4294967295", "batch", "extern"}


class LaunchError(Exception):
    """A multi-process start that cannot succeed (one line; the binary exits with status 2)."""


# --------------------------------------------------------------------------------------------------------
# Flags
# --------------------------------------------------------------------------------------------------------


def add_multiprocess_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--multiprocess",
        "--multiprocess_gpu",
        dest="multiprocess",
        action="store_true",
        help="initialise JAX's multi-process runtime (jax.distributed.initialize); --multiprocess_gpu is T5X's name",
    )
    parser.add_argument("--coordinator_address", default=None, help="host:port of process 0")
    parser.add_argument("--process_count", type=int, default=None, help="number of processes")
    parser.add_argument("--process_index", type=int, default=None, help="this process's index")
    parser.add_argument(
        DISTRIBUTED_TIMEOUT_FLAG,
        type=int,
        default=DEFAULT_DISTRIBUTED_TIMEOUT,
        help=f"seconds to wait for every process to join (default {DEFAULT_DISTRIBUTED_TIMEOUT})",
    )


# --------------------------------------------------------------------------------------------------------
# Detection
# --------------------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Launch:
    """A multi-process launch: who detected it and the values to pass (None: jax detects it)."""

    launcher: str  # 'flags', 'jax-env', 'slurm', 'openmpi', 'tpu'
    coordinator_address: str | None
    num_processes: int | None
    process_id: int | None

    @property
    def complete(self) -> bool:
        return None not in (self.coordinator_address, self.num_processes, self.process_id)


def _int(env: Mapping[str, str], name: str) -> int | None:
    value = (env.get(name) or "").strip()
    try:
        return int(value) if value else None
    except ValueError:
        raise LaunchError(f"{name}={value!r} is not an integer") from None


def detect_launch(
    env: Mapping[str, str],
    *,
    multiprocess: bool = False,
    coordinator_address: str | None = None,
    process_count: int | None = None,
    process_index: int | None = None,
) -> Launch | None:
    """The launch to initialise for these flags and this environment, or None for a single process (module
    docstring). Flag values win over the environment's."""

    def launch(launcher: str, address: str | None, count: int | None, index: int | None) -> Launch:
        return Launch(
            launcher,
            coordinator_address or address,
            process_count if process_count is not None else count,
            process_index if process_index is not None else index,
        )

    if env.get("JAX_COORDINATOR_ADDRESS"):
        return launch(
            "jax-env",
            env["JAX_COORDINATOR_ADDRESS"],
            _int(env, "JAX_NUM_PROCESSES"),
            _int(env, "JAX_PROCESS_ID"),
        )
    step = (env.get("SLURM_STEP_ID") or env.get("SLURM_STEPID") or "").strip()
    step_tasks = _int(env, "SLURM_STEP_NUM_TASKS")
    if step and step not in _SLURM_NON_STEPS and (step_tasks or 1) > 1 and "SLURM_PROCID" in env:
        # The coordinator comes from jax's SLURM detection (first host of the step, port from the job id).
        return launch("slurm", None, step_tasks, _int(env, "SLURM_PROCID"))
    if (_int(env, "OMPI_COMM_WORLD_SIZE") or 1) > 1 and "OMPI_COMM_WORLD_RANK" in env:
        return launch("openmpi", None, _int(env, "OMPI_COMM_WORLD_SIZE"), _int(env, "OMPI_COMM_WORLD_RANK"))
    hosts = [h.strip() for h in (env.get("TPU_WORKER_HOSTNAMES") or "").split(",") if h.strip()]
    if len(hosts) > 1 and env.get("TPU_WORKER_ID", "").strip():
        return launch("tpu", f"{hosts[0]}:{TPU_COORDINATOR_PORT}", len(hosts), _int(env, "TPU_WORKER_ID"))
    if multiprocess or coordinator_address is not None:
        return launch("flags", None, None, None)
    return None


# --------------------------------------------------------------------------------------------------------
# Start
# --------------------------------------------------------------------------------------------------------


def _split_address(address: str) -> tuple[str, int]:
    host, sep, port = address.rpartition(":")
    if not sep or not host or not port.isdigit():
        raise LaunchError(f"coordinator address {address!r} is not host:port")
    return host.strip("[]"), int(port)


def _resolve(address: str) -> list[tuple]:
    host, port = _split_address(address)
    try:
        return socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError as e:
        raise LaunchError(f"coordinator address {address!r}: cannot resolve {host!r} ({e.strerror or e})") from None


def _check_local(address: str) -> None:
    """Process 0 runs the coordinator: its address must be one of this host's."""
    for family, kind, proto, _, sockaddr in _resolve(address):
        with socket.socket(family, kind, proto) as probe:
            try:
                probe.bind((sockaddr[0], 0))
                return
            except OSError:
                continue
    raise LaunchError(
        f"coordinator address {address!r} is not an address of this host, but this is process 0, which runs "
        "the coordinator"
    )


def _wait_for_coordinator(address: str, deadline: float, timeout: int) -> None:
    """Polls until the coordinator accepts connections, or raises before ``deadline`` (time.monotonic)."""
    host, port = _split_address(address)
    _resolve(address)
    last = None
    while True:
        try:
            with socket.create_connection((host, port), timeout=max(0.1, min(2.0, deadline - time.monotonic()))):
                return
        except OSError as e:
            last = e.strerror or type(e).__name__
        if time.monotonic() + 0.5 >= deadline:
            raise LaunchError(
                f"coordinator {address} not reachable within {timeout}s ({last}; {DISTRIBUTED_TIMEOUT_FLAG}): is "
                "process 0 running, and is the address right?"
            )
        time.sleep(0.5)


def initialize_distributed(launch: Launch, timeout: int = DEFAULT_DISTRIBUTED_TIMEOUT) -> None:
    """``jax.distributed.initialize`` for ``launch``, failing within ``timeout`` seconds with one line naming
    the coordinator: a :class:`LaunchError` for a wrong or unreachable address (checked in Python first, since
    the runtime aborts the process with a stack trace on its own deadline), else, should the runtime not
    return in time (peers that never come), a one-line message and exit status 2 from a watchdog."""
    deadline = time.monotonic() + timeout
    import jax

    address = launch.coordinator_address
    if address:
        if launch.process_id == 0:
            _check_local(address)
        else:
            _wait_for_coordinator(address, deadline, timeout)
    if "JAX_CPU_COLLECTIVES_IMPLEMENTATION" not in os.environ:
        # Cross-process collectives on CPU hosts need Gloo; GPU and TPU backends ignore this setting.
        jax.config.update("jax_cpu_collectives_implementation", "gloo")
    what = f"{launch.launcher} launch, coordinator {address or '(auto-detected)'}"

    def give_up() -> None:
        print(
            f"error: jax.distributed did not start within {timeout}s ({what}): did every process start, with "
            f"the same address and process count? ({DISTRIBUTED_TIMEOUT_FLAG})",
            file=sys.stderr,
            flush=True,
        )
        os._exit(EXIT_CONFIG_ERROR)

    remaining = max(1.0, deadline - time.monotonic())
    watchdog = threading.Timer(remaining, give_up)
    watchdog.daemon = True
    watchdog.start()
    try:
        jax.distributed.initialize(
            coordinator_address=address,
            num_processes=launch.num_processes,
            process_id=launch.process_id,
            cluster_detection_method="deactivate" if launch.complete else None,
            # Past our watchdog: the runtime's own deadline aborts the process with a stack trace.
            initialization_timeout=int(remaining) + 60,
        )
        # The first cross-process collective sets up the CPU collectives (Gloo waits only 30 s for its peers
        # there): run it now, while every process has just joined, not minutes later at whatever point
        # each busy host reaches its first collective.
        from jax.experimental import multihost_utils

        multihost_utils.sync_global_devices("iuie launch")
    except Exception as e:  # the runtime raises XlaRuntimeError, ValueError, RuntimeError, ...
        first = (str(e).strip().splitlines() or [type(e).__name__])[0]
        raise LaunchError(f"jax.distributed did not start ({what}): {first[:300]}") from None
    finally:
        watchdog.cancel()
    logger.info("jax.distributed (%s): process %d of %d", launch.launcher, jax.process_index(), jax.process_count())


def maybe_initialize_distributed(args: argparse.Namespace, env: Mapping[str, str] | None = None) -> bool:
    """Initialises the multi-process runtime when :func:`detect_launch` finds a launch; True if it did."""
    launch = detect_launch(
        os.environ if env is None else env,
        multiprocess=getattr(args, "multiprocess", False),
        coordinator_address=getattr(args, "coordinator_address", None),
        process_count=getattr(args, "process_count", None),
        process_index=getattr(args, "process_index", None),
    )
    if launch is None:
        return False
    initialize_distributed(launch, getattr(args, "distributed_timeout", DEFAULT_DISTRIBUTED_TIMEOUT))
    return True


# --------------------------------------------------------------------------------------------------------
# The binaries' entry
# --------------------------------------------------------------------------------------------------------


def print_error(message: Any) -> None:
    text = errors.one_line(message) if isinstance(message, BaseException) else message
    print(f"error: {text}", file=sys.stderr, flush=True)


def user_errors(extra: Sequence[type[BaseException]] = ()) -> tuple[type[BaseException], ...]:
    """The exceptions that mean a user error (configuration, data, checkpoint), not a bug: the binaries
    report them in one line on stderr and exit with status 2; anything else keeps its traceback. ``extra``:
    those of the layers above (``iuie.training.user_errors``)."""
    from iuie.pipeline import seqio_data

    return (*errors.FILE_ERRORS, gin_flags.GinConfigError, seqio_data.DataNotFoundError, *extra)


def report_error(error: BaseException) -> int:
    print_error(error)
    return EXIT_CONFIG_ERROR


def run_configured(
    args: argparse.Namespace, fn: Callable[..., Any], extra_errors: Sequence[type[BaseException]] = ()
) -> int:
    """Parses gin from the flags and calls the gin-configured ``fn``; configuration and data errors end the
    process at once with a one-line message (exit status 2)."""
    try:
        gin_flags.parse(args.gin_file, args.gin_bindings, args.gin_search_paths)
        configured = gin.get_configurable(fn)
    except (gin_flags.GinConfigError, ValueError, OSError) as e:
        return report_error(e)
    try:
        result = configured()
    except user_errors(extra_errors) as e:
        return report_error(e)
    return int(result) if isinstance(result, int) else 0


def setup_logging() -> None:
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s: %(message)s")
    logging.getLogger("iuie").setLevel(logging.INFO)  # our progress lines, not every library's INFO chatter
    # iuie's Tasks count their examples without seqio's cache (docs/seqio_tasks.md), so seqio's warning that
    # a Task is "not cached" is expected for every Task of a Mixture: one line per Task says nothing.
    logging.getLogger("absl").addFilter(gin_flags.DropMessages("not cached so using number of input examples"))


def binary_main(
    prog: str,
    description: str,
    fn: Callable[..., Any],
    argv: Sequence[str] | None,
    *,
    before_configure: Callable[[], Any] | None = None,
    extra_errors: Callable[[], Sequence[type[BaseException]]] | None = None,
) -> int:
    """The entry of a binary: T5X-style flags, logging, the multi-process start, ``before_configure`` (e.g.
    registering the Tasks the gin files name), then the gin-configured ``fn`` (:func:`run_configured`)."""
    parser = errors.OneLineArgumentParser(prog=prog, description=description)
    gin_flags.add_gin_flags(parser)
    add_multiprocess_flags(parser)
    try:
        args = parser.parse_args(gin_flags.rewrite_gin_args(list(sys.argv[1:] if argv is None else argv)))
    except gin_flags.GinConfigError as e:
        print_error(e)
        return EXIT_CONFIG_ERROR
    setup_logging()
    try:
        maybe_initialize_distributed(args)
    except LaunchError as e:
        print_error(e)
        return EXIT_CONFIG_ERROR
    if before_configure is not None:
        before_configure()
    return run_configured(args, fn, extra_errors() if extra_errors is not None else ())
