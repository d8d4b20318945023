"""Crash safety of the train loop: SIGKILL and restart, and stopping on a NaN loss.

Reference for the resume test: an uninterrupted run of the same command. The runs are subprocesses of
``tests/trainer/harness.py`` (real tiny FlanT5, dropout on, asynchronous Orbax checkpoints every 2 steps); the
resume test trains on the real seqio input pipeline, whose state is saved with every checkpoint.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time

import numpy as np

from tests.trainer.conftest import REPO, harness_command

STEPS = 10
PERIOD = 2


def _batch_log(model_dir) -> list[tuple[int, int]]:
    """``(pid, position)`` per consumed batch, in order."""
    with open(os.path.join(model_dir, "batches.log"), encoding="utf-8") as f:
        return [tuple(int(x) for x in line.split()[:2]) for line in f if line.strip()]


def _batch_examples(model_dir) -> list[tuple[int, int, tuple[str, ...]]]:
    """``(pid, position, examples)`` per consumed batch: the ``task:example`` of every packed example."""
    with open(os.path.join(model_dir, "batches.log"), encoding="utf-8") as f:
        rows = [line.split() for line in f if line.strip()]
    return [(int(r[0]), int(r[1]), tuple(r[2:])) for r in rows]


def _steps(model_dir) -> list[int]:
    folder = os.path.join(model_dir, "checkpoints")
    return sorted(int(name) for name in os.listdir(folder) if name.isdigit())


def test_sigkill_and_restart_reaches_the_same_parameters(tmp_path, run_harness, harness_env, synthetic_root):
    """On the real seqio input pipeline (synthetic Tasks, best-fit packing): the restarted run trains on
    exactly the examples the uninterrupted one trained on at the same steps, and ends with its parameters."""
    train = (
        "train",
        "--steps",
        str(STEPS),
        "--period",
        str(PERIOD),
        "--real-data",
        "--synthetic-dir",
        str(synthetic_root),
    )

    reference_dir = tmp_path / "uninterrupted"
    done = run_harness(*train, "--model-dir", str(reference_dir), timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]

    crash_dir = tmp_path / "crashed"
    crash_dir.mkdir()
    process = subprocess.Popen(
        harness_command(*train, "--model-dir", str(crash_dir), "--sleep", "0.4"),
        cwd=REPO,
        env=harness_env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 600
    try:
        # Kill once checkpoint 4 is complete and the run has gone on past it (batch 5 consumed), so that the
        # restarted run must redo work the killed one had done.
        while time.monotonic() < deadline and process.poll() is None:
            log = _batch_log(crash_dir) if (crash_dir / "batches.log").exists() else []
            if (crash_dir / "checkpoints" / "4").is_dir() and any(position >= 5 for _, position in log):
                break
            time.sleep(0.05)
        assert process.poll() is None, "the run ended before it could be killed:\n" + process.stderr.read()[-3000:]
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == -signal.SIGKILL
    killed_pid = process.pid
    assert not (crash_dir / "final_params.npz").exists()

    restarted = run_harness(*train, "--model-dir", str(crash_dir), timeout=900)
    assert restarted.returncode == 0, restarted.stderr[-3000:]
    resumed = re.search(r"start: resumed from .* step (\d+)", restarted.stderr)
    assert resumed, restarted.stderr[-3000:]
    resumed_step = int(resumed.group(1))
    assert resumed_step >= 4 and resumed_step % PERIOD == 0

    # The data position continued exactly: the killed run consumed 0, 1, ... (at least up to the restored
    # step), the restarted run consumed resumed_step, ..., STEPS - 1: the trajectory saw each batch once.
    log = _batch_log(crash_dir)
    first = [position for pid, position in log if pid == killed_pid]
    second = [position for pid, position in log if pid != killed_pid]
    assert first == list(range(len(first))) and len(first) >= resumed_step
    assert second == list(range(resumed_step, STEPS))

    # The examples: every batch the restarted run trained on holds the same packed examples as the batch of
    # the same position in the uninterrupted run (the state resumed the real pipeline, not a batch counter).
    uninterrupted = {position: examples for _, position, examples in _batch_examples(reference_dir)}
    assert len(uninterrupted) == STEPS and all(len(e) >= 16 for e in uninterrupted.values())
    for pid, position, examples in _batch_examples(crash_dir):
        assert examples == uninterrupted[position], (pid, position)

    reference = np.load(reference_dir / "final_params.npz")
    result = np.load(crash_dir / "final_params.npz")
    assert sorted(reference.files) == sorted(result.files) and len(reference.files) > 10
    for name in reference.files:
        np.testing.assert_allclose(result[name], reference[name], rtol=0, atol=1e-6, err_msg=name)
    assert _steps(crash_dir) == list(range(PERIOD, STEPS + 1, PERIOD))


def test_nan_loss_stops_the_run_naming_the_step_and_writes_no_nan_checkpoint(tmp_path, run_harness):
    # The NaN appears at step 5, which is neither a checkpoint step nor a logging step: the check before
    # saving step 6 finds it and names step 5, the first non-finite one.
    model_dir = tmp_path / "nan"
    result = run_harness(
        "train",
        "--steps",
        str(STEPS),
        "--period",
        "2",
        "--log-period",
        "10",
        "--nan-at-step",
        "5",
        "--model-dir",
        str(model_dir),
        "--sync",
    )
    assert result.returncode == 3, result.stderr[-3000:]
    assert re.search(r"loss is nan .*at step 5\b", result.stderr), result.stderr[-3000:]
    assert _steps(model_dir) == [2, 4]
    assert not (model_dir / "final_params.npz").exists()
