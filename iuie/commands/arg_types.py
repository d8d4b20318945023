"""argparse ``type=`` functions the sub-commands share: a bad value is argparse's one-line error naming the
flag (exit status 2), before any data or checkpoint is read."""

from __future__ import annotations

import argparse


def count(value: str) -> int:
    """An integer >= 0 (``--limit``, ``--window-overlap``)."""
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a count >= 0, got {value!r}") from None
    if number < 0:
        raise argparse.ArgumentTypeError(f"expected a count >= 0, got {value}")
    return number
