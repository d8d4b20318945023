"""Launch detection and the bounded multi-process start (``iuie.runtime.launch``).

Checked against: the variables each launcher documents for its tasks (SLURM's sbatch/srun environment
pages: a batch script has ``SLURM_NTASKS``/``SLURM_PROCID`` but no step of its own, an ``srun`` task has
``SLURM_STEP_ID``/``SLURM_STEP_NUM_TASKS``; Open MPI's ``OMPI_COMM_WORLD_SIZE``/``RANK``; Cloud TPU's
``TPU_WORKER_HOSTNAMES``/``TPU_WORKER_ID`` with jax's coordinator port 8476), jax's own
``jax.distributed.initialize`` (a real 2-process launch on 127.0.0.1 with Gloo CPU collectives must see 2
processes and 4 devices and all-gather both indices), and the wall clock for the bounded failures.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time

import pytest

from iuie.runtime import launch
from tests.tiny_runs import REPO, free_port, subprocess_env

SBATCH = {"SLURM_JOB_ID": "77", "SLURM_NTASKS": "4", "SLURM_PROCID": "0", "SLURM_NODELIST": "n[1-2]"}
SRUN = {
    **SBATCH,
    "SLURM_STEP_ID": "0",
    "SLURM_STEP_NUM_TASKS": "4",
    "SLURM_PROCID": "2",
    "SLURM_LOCALID": "0",
    "SLURM_STEP_NODELIST": "n[1-2]",
}


@pytest.mark.parametrize(
    "env, expected",
    [
        ({}, None),
        (SBATCH, None),  # a plain `python -m iuie.train` inside an sbatch allocation: one process
        ({**SBATCH, "SLURM_STEP_ID": "4294967294"}, None),  # the batch step's pseudo id
        ({**SRUN, "SLURM_STEP_NUM_TASKS": "1"}, None),  # `srun -n1`
        (SRUN, launch.Launch("slurm", None, 4, 2)),
        ({"OMPI_COMM_WORLD_SIZE": "2", "OMPI_COMM_WORLD_RANK": "1"}, launch.Launch("openmpi", None, 2, 1)),
        ({"OMPI_COMM_WORLD_SIZE": "1", "OMPI_COMM_WORLD_RANK": "0"}, None),
        (
            {"JAX_COORDINATOR_ADDRESS": "job-0.svc:1234", "JAX_NUM_PROCESSES": "8", "JAX_PROCESS_ID": "5"},
            launch.Launch("jax-env", "job-0.svc:1234", 8, 5),
        ),
        ({"JAX_COORDINATOR_ADDRESS": "h:1"}, launch.Launch("jax-env", "h:1", None, None)),
        (
            {"TPU_WORKER_HOSTNAMES": "t-0,t-1,t-2,t-3", "TPU_WORKER_ID": "3"},
            launch.Launch("tpu", "t-0:8476", 4, 3),
        ),
        ({"TPU_WORKER_HOSTNAMES": "t-0", "TPU_WORKER_ID": "0"}, None),  # a single-host TPU VM
    ],
)
def test_each_launcher_environment(env, expected):
    assert launch.detect_launch(env) == expected


def test_flags_ask_for_a_launch_and_win_over_the_environment():
    assert launch.detect_launch({}, multiprocess=True) == launch.Launch("flags", None, None, None)
    assert launch.detect_launch(SBATCH, multiprocess=True) == launch.Launch("flags", None, None, None)
    got = launch.detect_launch({}, coordinator_address="127.0.0.1:9", process_count=2, process_index=1)
    assert got == launch.Launch("flags", "127.0.0.1:9", 2, 1) and got.complete
    got = launch.detect_launch(SRUN, coordinator_address="n1:9", process_index=0)
    assert got == launch.Launch("slurm", "n1:9", 4, 0)
    with pytest.raises(launch.LaunchError, match="OMPI_COMM_WORLD_SIZE='two' is not an integer"):
        launch.detect_launch({"OMPI_COMM_WORLD_SIZE": "two", "OMPI_COMM_WORLD_RANK": "0"})


def test_multiprocess_gpu_is_an_alias_of_multiprocess():
    parser = argparse.ArgumentParser()
    launch.add_multiprocess_flags(parser)
    assert parser.parse_args(["--multiprocess_gpu"]).multiprocess
    assert parser.parse_args(["--multiprocess"]).multiprocess
    assert not parser.parse_args([]).multiprocess
    assert parser.parse_args([]).distributed_timeout == launch.DEFAULT_DISTRIBUTED_TIMEOUT


@pytest.mark.parametrize(
    "env, called",
    [
        (SBATCH, None),
        (SRUN, {"coordinator_address": None, "num_processes": 4, "process_id": 2}),
        (
            {"OMPI_COMM_WORLD_SIZE": "3", "OMPI_COMM_WORLD_RANK": "2"},
            {"coordinator_address": None, "num_processes": 3, "process_id": 2},
        ),
    ],
)
def test_initialize_is_called_only_for_a_real_launch(env, called, monkeypatch):
    """jax.distributed.initialize (faked: it would wait for peers) gets the launcher's values, or no call."""
    import jax

    calls = []
    monkeypatch.setattr(jax.distributed, "initialize", lambda **kw: calls.append(kw))
    args = argparse.Namespace(multiprocess=False, coordinator_address=None, process_count=None, process_index=None)
    assert launch.maybe_initialize_distributed(args, env=env) == (called is not None)
    if called is None:
        assert calls == []
    else:
        assert {k: calls[0][k] for k in called} == called
        assert calls[0]["cluster_detection_method"] is None  # jax finds the coordinator from the launcher


def _probe(*flags: str, devices: int = 2) -> subprocess.Popen:
    env = subprocess_env(XLA_FLAGS=f"--xla_force_host_platform_device_count={devices}")
    return subprocess.Popen(
        [sys.executable, "-m", "tests.binaries.distributed_probe", *flags],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_two_processes_on_localhost_start_and_all_gather():
    """A real launch: 2 processes x 2 CPU devices through jax.distributed (Gloo collectives)."""
    address = f"127.0.0.1:{free_port()}"
    procs = [_probe(f"--coordinator_address={address}", "--process_count=2", f"--process_index={i}") for i in range(2)]
    outs = [p.communicate(timeout=240) for p in procs]
    for p, (out, err) in zip(procs, outs):
        assert p.returncode == 0, err[-3000:]
    got = [json.loads(out.strip().splitlines()[-1]) for out, _ in outs]
    for i, row in enumerate(got):
        assert row == {
            "started": True,
            "process": i,
            "count": 2,
            "devices": 4,
            "local_devices": 2,
            "gathered": [0, 1],
        }


def _error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.strip()]


@pytest.mark.parametrize("index", [1, 0])
def test_an_unreachable_coordinator_fails_in_bounded_time_with_one_line(index):
    """Process 1 finds no coordinator listening; process 0 waits for a peer that never comes. Both end
    with exit status 2 and one line naming the address within the timeout (plus interpreter start-up)."""
    address = f"127.0.0.1:{free_port()}"
    start = time.monotonic()
    proc = _probe(
        f"--coordinator_address={address}",
        "--process_count=2",
        f"--process_index={index}",
        "--distributed_timeout=4",
        devices=1,
    )
    _, err = proc.communicate(timeout=120)
    seconds = time.monotonic() - start
    assert proc.returncode == 2, err[-3000:]
    lines = _error_lines(err)
    assert len(lines) == 1 and lines[0].startswith("error: ") and address in lines[0], err[-3000:]
    assert "--distributed_timeout" in lines[0]
    assert seconds < 4 + 45  # the interpreter and jax import take seconds on a loaded machine; no 300 s wait


def test_a_wrong_coordinator_address_fails_at_once():
    proc = _probe(
        "--coordinator_address=no-such-host.invalid:1234", "--process_count=2", "--process_index=1", devices=1
    )
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 2
    lines = _error_lines(err)
    assert len(lines) == 1 and "no-such-host.invalid:1234" in lines[0] and "cannot resolve" in lines[0]
    # Process 0 must own the address it serves on.
    proc = _probe("--coordinator_address=192.0.2.1:1234", "--process_count=2", "--process_index=0", devices=1)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 2
    assert "192.0.2.1:1234" in err and "not an address of this host" in err
