"""Shared pytest fixtures.

Real data: the IE INSTRUCTIONS slices in ``../shared/data`` beside the clone (CI lays it there), or wherever
the environment variable ``IUIE_TEST_DATA`` points. Tests that need it skip, saying why, when it is absent;
tests that need no real data use the project's synthetic corpus.
"""

from __future__ import annotations

import os
import pathlib

import pytest

REPO = pathlib.Path(__file__).resolve().parent.parent
# The `test` extra installs libtpu (``iuie plan`` compiles for TPU topologies). On a machine without a TPU, jax
# would probe it at every backend start and print libtpu's warnings on stderr, which tests read; tests run on
# the CPU, and the subprocesses they start inherit this. ``iuie plan`` reaches libtpu through
# ``jax.experimental.topologies``, which does not need the TPU platform enabled.
os.environ.setdefault("JAX_PLATFORMS", "cpu")
SHARED_DATA = pathlib.Path(os.environ.get("IUIE_TEST_DATA", REPO.parent / "shared" / "data"))


@pytest.fixture(scope="session")
def shared_data() -> pathlib.Path:
    """The shared data root (holding ``IE_INSTRUCTIONS/`` and ``instructuie_configs/``)."""
    if not (SHARED_DATA / "IE_INSTRUCTIONS").is_dir():
        pytest.skip(f"real data not found at {SHARED_DATA}/IE_INSTRUCTIONS (set IUIE_TEST_DATA)")
    return SHARED_DATA


@pytest.fixture(scope="session")
def ie_instructions(shared_data: pathlib.Path) -> pathlib.Path:
    """The IE INSTRUCTIONS root of the shared data."""
    return shared_data / "IE_INSTRUCTIONS"


@pytest.fixture(scope="session")
def synthetic_root(tmp_path_factory) -> pathlib.Path:
    """The synthetic corpus with its default sizes, generated once per test session."""
    from iuie.ie import synthetic

    root = tmp_path_factory.mktemp("synthetic")
    synthetic.generate(root)
    return root
