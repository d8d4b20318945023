"""Fixtures of the seqio tests: the registered Tasks pointed at the shared data or the synthetic corpus.

Importing ``seqio_tasks`` registers every Task once per session (seqio's registry is global). The data
options (:func:`iuie.pipeline.seqio_data.set_options`) are set per test by these fixtures and reset afterwards, so no
test depends on ``IUIE_DATA_DIR`` or on a corpus in the user's cache folder.
"""

from __future__ import annotations

import pathlib

import pytest

import seqio_tasks  # noqa: F401  (registers the Tasks and Mixtures)
from iuie.pipeline import seqio_data


@pytest.fixture(autouse=True)
def _clean_options():
    seqio_data.reset_options()
    yield
    seqio_data.reset_options()


@pytest.fixture
def shared_root(ie_instructions: pathlib.Path, synthetic_root: pathlib.Path) -> pathlib.Path:
    """The shared IE INSTRUCTIONS slices as the data root (skips when absent); synthetic corpus set too."""
    seqio_data.set_options(data_dir=ie_instructions, synthetic_dir=synthetic_root)
    return ie_instructions


@pytest.fixture
def synthetic(synthetic_root: pathlib.Path) -> pathlib.Path:
    """The session's synthetic corpus as the root of the ``iuie_*_synthetic`` Tasks."""
    seqio_data.set_options(synthetic_dir=synthetic_root)
    return synthetic_root
