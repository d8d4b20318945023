"""User errors: one line on stderr and exit status 2, for every ``iuie`` sub-command and binary.

A user error is a mistake in what the user gave (arguments, gin files, data, checkpoints), not a bug: it
gets one line naming the file, record and field where there is one, and exit status 2 (argparse's status
for bad arguments); a bug keeps its traceback. Leaf module: it imports nothing from iuie, so ``iuie``'s
dispatcher stays light.
"""

from __future__ import annotations

import argparse
import json
import sys

EXIT_USER_ERROR = 2

# What any command may meet while reading the user's files, whatever the command: a missing or unreadable
# path, bytes that are not UTF-8, a file that is not JSON. Commands add their own error types.
FILE_ERRORS: tuple[type[BaseException], ...] = (OSError, UnicodeError, json.JSONDecodeError)


class OneLineArgumentParser(argparse.ArgumentParser):
    """argparse, but a bad argument is one line (``prog: error: ... (see prog --help)``) instead of the
    usage block plus the message; the exit status stays 2. Sub-parsers inherit the class."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(EXIT_USER_ERROR, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def one_line(error: BaseException) -> str:
    """The message of ``error`` on one line, without what gin appends to an exception raised inside a
    configurable (``\\n  In call to configurable 'train' (<function ...>)``)."""
    lines = [line.strip() for line in str(error).splitlines()]
    kept = [line for line in lines if line and not line.startswith("In call to configurable")]
    return " ".join(kept) or type(error).__name__


def report(prog: str, error: BaseException) -> int:
    """Prints ``prog: error: <one line>`` to stderr; returns :data:`EXIT_USER_ERROR`."""
    print(f"{prog}: error: {one_line(error)}", file=sys.stderr, flush=True)
    return EXIT_USER_ERROR
