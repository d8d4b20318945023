"""Fixtures for the trainer tests: launching ``tests/trainer/harness.py`` in subprocesses.

Subprocesses give each run its own fake device count (``XLA_FLAGS`` must be set before jax is imported) and a
process to kill. They share one persistent XLA compilation cache per test session, so that the second and
later runs of the same program (the restarted run after SIGKILL, the NaN run) skip compilation.
"""

from __future__ import annotations

import os
import pathlib
import subprocess
import sys

import pytest

REPO = pathlib.Path(__file__).resolve().parents[2]
FAST_COMPILE_FLAGS = "--xla_backend_optimization_level=0 --xla_llvm_disable_expensive_passes=true"


@pytest.fixture(scope="session")
def harness_env(tmp_path_factory) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO)] + [p for p in [env.get("PYTHONPATH")] if p])
    env["JAX_COMPILATION_CACHE_DIR"] = str(tmp_path_factory.mktemp("jax_cache"))
    env["JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS"] = "0"
    env["JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES"] = "0"
    env["JAX_PLATFORMS"] = "cpu"
    env["TF_CPP_MIN_LOG_LEVEL"] = "3"
    # Cheaper LLVM code generation: compilation dominates these short runs. Semantics are unchanged (the
    # 1-vs-8-device comparison runs both sides with the same flags).
    env["XLA_FLAGS"] = FAST_COMPILE_FLAGS
    return env


def harness_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "tests.trainer.harness", *args]


def env_with_devices(env: dict[str, str], devices: int) -> dict[str, str]:
    env = dict(env)
    if devices > 1:
        env["XLA_FLAGS"] = f"{env.get('XLA_FLAGS', '')} --xla_force_host_platform_device_count={devices}".strip()
    return env


@pytest.fixture
def run_harness(harness_env):
    """``run_harness(*args, devices=1, timeout=300) -> CompletedProcess`` (text output captured)."""

    def run(*args: str, devices: int = 1, timeout: float = 300) -> subprocess.CompletedProcess:
        return subprocess.run(
            harness_command(*args),
            cwd=REPO,
            env=env_with_devices(harness_env, devices),
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    return run
