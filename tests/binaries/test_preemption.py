"""Preemption and broken checkpoints, end to end on ``python -m iuie.train`` (the tiny demo config).

Reference: what preemptible VMs, SLURM and Kubernetes do (SIGTERM, then SIGKILL after a grace period), and
the checkpoint files the run itself wrote: a real SIGTERM is sent to a real training process, and real
Orbax files are damaged on disk. The SIGTERMed run must save the step it reached and exit 0; a damaged newest
checkpoint must be named in one line and the newest intact one restored (nothing deleted); a checkpoint of
another model shape must be refused in one line with exit status 2.
"""

from __future__ import annotations

import re
import shutil
import signal
import subprocess
import sys
import time

import pytest

from tests.binaries.test_user_errors import counted_lines, error_lines
from tests.tiny_runs import REPO, TINY_MODEL_BINDINGS, free_port, subprocess_env

TRAIN = [
    "--gin_file=t5x_configs/demo_cpu.gin",
    *TINY_MODEL_BINDINGS,
    "--gin.BATCH_SIZE=8",
    "--gin.LOG_PERIOD=1",
    "--gin.CHECKPOINT_PERIOD=2",
    "--gin.configs.ScheduleConfig.warmup_steps=1",
    "--gin.EVAL_PERIOD=0",
    "--gin.EVAL_AT_END=False",
]
PROGRESS = re.compile(r"step (\d+)/")


def _steps(model_dir):
    return sorted(int(p.name) for p in (model_dir / "checkpoints").iterdir() if p.name.isdigit())


def _train(model_dir, *extra, timeout=900):
    return subprocess.run(
        [sys.executable, "-m", "iuie.train", *TRAIN, f"--gin.MODEL_DIR='{model_dir}'", *extra],
        cwd=REPO,
        env=subprocess_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


@pytest.fixture(scope="module")
def preempted(tmp_path_factory):
    """A run to 10,000 steps, SIGTERMed once checkpoint 2 is written and step 3 is logged."""
    model_dir = tmp_path_factory.mktemp("preempted")
    log = model_dir.parent / "preempted.stderr"
    with open(log, "w", encoding="utf-8") as err:
        process = subprocess.Popen(
            [sys.executable, "-m", "iuie.train", *TRAIN, f"--gin.MODEL_DIR='{model_dir}'", "--gin.TRAIN_STEPS=10000"],
            cwd=REPO,
            env=subprocess_env(),
            stdout=subprocess.DEVNULL,
            stderr=err,
        )
    deadline = time.monotonic() + 900
    try:
        while time.monotonic() < deadline and process.poll() is None:
            logged = [int(s) for s in PROGRESS.findall(log.read_text(encoding="utf-8", errors="replace"))]
            if logged and max(logged) >= 3 and (model_dir / "checkpoints" / "2").is_dir():
                break
            time.sleep(0.2)
        assert process.poll() is None, "the run ended before the signal:\n" + log.read_text()[-3000:]
        signalled_after = max(logged)
        process.send_signal(signal.SIGTERM)
        status = process.wait(timeout=600)
    finally:
        if process.poll() is None:
            process.kill()
    return model_dir, status, log.read_text(encoding="utf-8", errors="replace"), signalled_after


def test_sigterm_saves_at_the_next_step_boundary_and_exits_0(preempted):
    model_dir, status, stderr, signalled_after = preempted
    assert status == 0, stderr[-3000:]
    saved = re.findall(r"SIGTERM: saved checkpoint (\d+) in (\S+) and stopped", stderr)
    assert len(saved) == 1, stderr[-3000:]
    step = int(saved[0][0])
    assert saved[0][1] == str(model_dir / "checkpoints")
    # The step it reached, not the last periodic one: nothing trained is lost.
    assert step >= signalled_after >= 3
    assert _steps(model_dir)[-1] == step and 2 in _steps(model_dir)
    assert not (model_dir / "train_done.json").exists()  # the run is not complete


def test_damaged_newest_checkpoint_restores_the_newest_intact_one(preempted, tmp_path):
    source, _, _, _ = preempted
    model_dir = tmp_path / "run"
    shutil.copytree(source, model_dir)
    newest = _steps(model_dir)[-1]
    intact = _steps(model_dir)[-2]
    arrays = sorted(
        (p for p in (model_dir / "checkpoints" / str(newest) / "state").rglob("*") if p.parent.name == "d"),
        key=lambda p: p.stat().st_size,
    )
    with open(arrays[-1], "r+b") as f:  # a truncated array file, as a copy cut short leaves it
        f.truncate(arrays[-1].stat().st_size // 2)
    done = _train(model_dir, f"--gin.TRAIN_STEPS={newest + 1}")
    assert done.returncode == 0, done.stderr[-3000:]
    damaged = [line for line in done.stderr.splitlines() if "is damaged" in line]
    assert len(damaged) == 1, damaged
    assert f"checkpoint {model_dir / 'checkpoints' / str(newest)} is damaged (" in damaged[0]
    assert f"resumed from {model_dir / 'checkpoints'} step {intact}" in done.stderr
    assert (model_dir / "damaged_checkpoints" / str(newest) / "state").is_dir()  # kept, not deleted
    assert _steps(model_dir)[-1] == newest + 1


def test_resuming_with_another_model_shape_is_one_line_and_exit_2(preempted, tmp_path):
    source, _, _, _ = preempted
    model_dir = tmp_path / "run"
    shutil.copytree(source, model_dir)
    before = _steps(model_dir)
    done = _train(model_dir, "--gin.TRAIN_STEPS=100", "--gin.network.T5Config.emb_dim=48")
    # The run logs what its data pipeline counted before it reaches the restore; the error is one line.
    lines = error_lines(done.stderr)
    assert done.returncode == 2, done.stderr[-3000:]
    assert len(lines) == 1, lines
    assert lines[0].startswith("error: ") and "holds a model of another shape" in lines[0], lines[0]
    assert "model wants (" in lines[0] and "Traceback" not in done.stderr
    assert counted_lines(done.stderr)[-1] == lines[0]  # nothing after it
    assert _steps(model_dir) == before and not (model_dir / "damaged_checkpoints").exists()


def test_sigterm_to_one_of_two_processes_stops_both_at_the_same_step(tmp_path):
    """Two processes on 127.0.0.1 (``jax.distributed``, one fake device each); SIGTERM goes to process 1
    only, as a preemptible VM losing one host would. JAX's preemption sync point must bring both to the
    same step: both exit 0, process 0 names the saved step, and that step is the newest checkpoint on disk
    (a process stopping alone would leave the other blocked in the next step's collectives until the
    timeout, and the collective checkpoint write incomplete)."""
    model_dir = tmp_path / "run"
    address = f"127.0.0.1:{free_port()}"
    logs = [tmp_path / f"process{i}.log" for i in range(2)]
    processes = []
    for i, log in enumerate(logs):
        with open(log, "w", encoding="utf-8") as out:
            processes.append(
                subprocess.Popen(
                    [sys.executable, "-m", "iuie.train", *TRAIN, f"--gin.MODEL_DIR='{model_dir}'"]
                    + ["--gin.TRAIN_STEPS=10000", f"--coordinator_address={address}", "--process_count=2"]
                    + [f"--process_index={i}", "--distributed_timeout=120"],
                    cwd=REPO,
                    env=subprocess_env(XLA_FLAGS="--xla_force_host_platform_device_count=1"),
                    stdout=out,
                    stderr=subprocess.STDOUT,
                )
            )
    deadline = time.monotonic() + 900
    try:
        while time.monotonic() < deadline and all(p.poll() is None for p in processes):
            logged = [int(s) for s in PROGRESS.findall(logs[0].read_text(encoding="utf-8", errors="replace"))]
            if logged and max(logged) >= 3 and (model_dir / "checkpoints" / "2").is_dir():
                break
            time.sleep(0.2)
        assert all(p.poll() is None for p in processes), logs[0].read_text()[-3000:] + logs[1].read_text()[-3000:]
        signalled_after = max(logged)
        processes[1].send_signal(signal.SIGTERM)
        statuses = [p.wait(timeout=600) for p in processes]
    finally:
        for p in processes:
            if p.poll() is None:
                p.kill()
    texts = [log.read_text(encoding="utf-8", errors="replace") for log in logs]
    assert statuses == [0, 0], texts[0][-3000:] + "\n----\n" + texts[1][-3000:]
    saved = re.findall(r"SIGTERM: saved checkpoint (\d+) in (\S+) and stopped", texts[0])
    assert len(saved) == 1, texts[0][-3000:]
    step = int(saved[0][0])
    assert step >= signalled_after >= 3
    assert _steps(model_dir)[-1] == step
    assert not (model_dir / "train_done.json").exists()
