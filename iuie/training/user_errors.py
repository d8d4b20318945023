"""The training-side exceptions that mean a user error (bad data record, unusable checkpoint, unknown
partitioning preset): the binaries pass them to ``iuie.runtime.launch.binary_main``, which reports them in
one line on stderr with exit status 2 (the launch module sits below ``iuie.training`` and cannot import them)."""

from __future__ import annotations


def user_errors() -> tuple[type[BaseException], ...]:
    from iuie.ie.records import RecordError
    from iuie.training.checkpoints import CheckpointError
    from iuie.training.partitioning import PresetError

    return (RecordError, CheckpointError, PresetError)
