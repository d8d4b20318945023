"""Fixtures of the input-pipeline tests: the registered Tasks over the session's synthetic corpus."""

from __future__ import annotations

import pytest

import seqio_tasks  # noqa: F401  (registers the Tasks and Mixtures)
from iuie.pipeline import seqio_data


@pytest.fixture(autouse=True)
def _synthetic(synthetic_root):
    seqio_data.reset_options()
    seqio_data.set_options(synthetic_dir=synthetic_root)
    yield
    seqio_data.reset_options()
