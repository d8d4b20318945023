"""One device against eight fake devices: the same loss trajectory under every partitioning preset.

Reference: the single-device run of the same program (partitioning must not change the mathematics). The
model is the real tiny FlanT5 (``iuie.model.network`` through ``iuie.model.models``), float32, dropout on, packed batches,
two microbatches; the eight devices are XLA's fake host devices (``--xla_force_host_platform_device_count=8``
in a subprocess, set before jax is imported). Both runs go in parallel.
"""

from __future__ import annotations

import json
import subprocess

import numpy as np

from tests.trainer.conftest import REPO, env_with_devices, harness_command

PRESETS = ("data_parallel", "fsdp", "2d", "2d_fsdp")
STEPS = 5


def test_eight_devices_match_one_device_under_each_preset(harness_env):
    common = ("--steps", str(STEPS), "--microbatches", "2")
    runs = {
        1: subprocess.Popen(
            harness_command("losses", "--presets", "data_parallel", *common),
            cwd=REPO,
            env=env_with_devices(harness_env, 1),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        ),
        8: subprocess.Popen(
            harness_command("losses", "--presets", ",".join(PRESETS), *common),
            cwd=REPO,
            env=env_with_devices(harness_env, 8),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        ),
    }
    results = {}
    for devices, process in runs.items():
        out, err = process.communicate(timeout=600)
        assert process.returncode == 0, err[-3000:]
        results[devices] = json.loads(out.strip().splitlines()[-1])

    assert results[1]["devices"] == 1 and results[8]["devices"] == 8
    assert results[8]["mesh"] == {
        "data_parallel": {"data": 8, "model": 1},
        "fsdp": {"data": 8, "model": 1},
        "2d": {"data": 4, "model": 2},
        "2d_fsdp": {"data": 4, "model": 2},
    }
    reference = np.asarray(results[1]["losses"]["data_parallel"])
    assert len(reference) == STEPS and np.all(np.isfinite(reference))
    assert len(set(reference.tolist())) > 1, "the loss should move as the model trains"
    for preset in PRESETS:
        losses = np.asarray(results[8]["losses"][preset])
        relative = np.max(np.abs(losses - reference) / np.abs(reference))
        assert relative <= 1e-5, f"{preset}: relative difference {relative:.2e}\n{losses}\n{reference}"
