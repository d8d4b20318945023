"""Multi-process training does not depend on the number of processes (issue 11.1), end to end on
``python -m iuie.train`` with the tiny demo config.

Three runs of the same config (seed, Mixture, global batch 8, 4 steps, a checkpoint every 2):

* 1 process x 4 fake CPU devices (the reference);
* 2 processes x 2 fake devices each, on 127.0.0.1 through ``jax.distributed`` (Gloo collectives), writing
  one checkpoint set into a shared MODEL_DIR, as hosts on a shared file system do;
* elastic restore: the 2x2 run's step-2 checkpoint (state and data position) continued to step 4 by
  1 process x 4 devices and by 1 process x 1 device.

Checked against the reference: the loss of every step (TensorBoard scalars, <= 1e-5 relative) and every
final parameter (<= 1e-5). Equal losses on the first steps mean equal global batches (the pipeline is
index-based: each process builds only the rows its devices hold); equal losses after the restore mean the
data position came back with the weights and optimizer state, on another mesh shape.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

from tests.tiny_runs import REPO, TINY_MODEL_BINDINGS, free_port, subprocess_env

pytestmark = pytest.mark.slow

STEPS = 4
TRAIN = [
    "--gin_file=t5x_configs/demo_cpu.gin",
    *TINY_MODEL_BINDINGS,
    f"--gin.TRAIN_STEPS={STEPS}",
    "--gin.BATCH_SIZE=8",
    "--gin.LOG_PERIOD=1",
    "--gin.CHECKPOINT_PERIOD=2",
    "--gin.CHECKPOINTS_TO_KEEP=None",
    "--gin.configs.ScheduleConfig.warmup_steps=1",
    "--gin.EVAL_PERIOD=0",
    "--gin.EVAL_AT_END=False",
    # A small window keeps the pipeline's planning cheap; it defines the row sequence, so every run uses it.
    "--gin.PACKING_WINDOW=64",
]
TIMEOUT = 300


def _launch(model_dir, devices: int, *flags: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "iuie.train", *TRAIN, f"--gin.MODEL_DIR='{model_dir}'", *flags],
        cwd=REPO,
        env=subprocess_env(XLA_FLAGS=f"--xla_force_host_platform_device_count={devices}"),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def _wait(procs: list[subprocess.Popen]) -> None:
    outputs = []
    for proc in procs:
        try:
            out, _ = proc.communicate(timeout=TIMEOUT)
        except subprocess.TimeoutExpired:
            for p in procs:
                p.kill()
            raise
        outputs.append((proc.returncode, out))
    for code, out in outputs:
        assert code == 0, out[-4000:]


def _train_single(model_dir, devices: int) -> None:
    _wait([_launch(model_dir, devices)])


def _train_two_processes(model_dir) -> None:
    address = f"127.0.0.1:{free_port()}"
    flags = [f"--coordinator_address={address}", "--process_count=2", "--distributed_timeout=120"]
    _wait([_launch(model_dir, 2, *flags, f"--process_index={i}") for i in range(2)])


def _losses(model_dir) -> dict[int, float]:
    """Step -> ``loss`` from the TensorBoard events process 0 wrote (every step: LOG_PERIOD=1)."""
    import tensorflow as tf

    out = {}
    for path in sorted(glob.glob(os.path.join(model_dir, "train", "events.out.tfevents.*"))):
        for event in tf.compat.v1.train.summary_iterator(path):
            for value in event.summary.value:
                if value.tag == "loss":
                    out[int(event.step)] = float(tf.make_ndarray(value.tensor))
    return out


def _final_params(model_dir) -> dict[str, np.ndarray]:
    """The step-4 parameters as host numpy arrays, whatever mesh wrote them."""
    import jax
    import orbax.checkpoint as ocp

    path = os.path.join(model_dir, "checkpoints", str(STEPS), "state")
    checkpointer = ocp.PyTreeCheckpointer()
    metadata = checkpointer.metadata(path)
    tree = getattr(metadata, "item_metadata", metadata)
    tree = getattr(tree, "tree", tree)
    restore_args = jax.tree.map(lambda _: ocp.RestoreArgs(restore_type=np.ndarray), tree)
    state = checkpointer.restore(path, restore_args=restore_args)
    flat = jax.tree_util.tree_flatten_with_path(state["params"])[0]
    return {jax.tree_util.keystr(k): np.asarray(v) for k, v in flat}


def _continue_from_step_2(source, target, devices: int) -> None:
    """Copies ``source``'s step-2 checkpoint (nothing later, no event files) and trains it to step 4."""
    os.makedirs(os.path.join(target, "checkpoints"))
    shutil.copytree(os.path.join(source, "checkpoints", "2"), os.path.join(target, "checkpoints", "2"))
    _train_single(target, devices)


def _assert_same_run(reference, other, steps) -> None:
    want, got = _losses(reference), _losses(other)
    assert sorted(want) == list(range(1, STEPS + 1)), want
    for step in steps:
        assert got[step] == pytest.approx(want[step], rel=1e-5), (step, got, want)
    want_params, got_params = _final_params(reference), _final_params(other)
    assert sorted(got_params) == sorted(want_params)
    for name, value in want_params.items():
        np.testing.assert_allclose(got_params[name], value, rtol=1e-5, atol=1e-6, err_msg=name)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("multiprocess")
    one_by_four, two_by_two = root / "1x4", root / "2x2"
    _train_single(one_by_four, 4)
    _train_two_processes(two_by_two)
    return one_by_four, two_by_two


def test_two_processes_train_exactly_as_one(runs):
    one_by_four, two_by_two = runs
    _assert_same_run(one_by_four, two_by_two, range(1, STEPS + 1))
    # One checkpoint set for both processes, holding the data position beside the state.
    assert sorted(os.listdir(two_by_two / "checkpoints")) == ["2", "4"]


@pytest.mark.parametrize("devices", [4, 1], ids=["1x4", "1x1"])
def test_a_two_process_checkpoint_continues_on_another_mesh(runs, tmp_path, devices):
    one_by_four, two_by_two = runs
    resumed = tmp_path / f"resumed_1x{devices}"
    _continue_from_step_2(two_by_two, resumed, devices)
    assert sorted(_losses(resumed)) == [3, 4]  # started at step 3: the saved step and data position
    _assert_same_run(one_by_four, resumed, [3, 4])
