"""Draw a run's results as PNG figures: per-dataset F1 bars per task (both metric modes), training curves.

``RUN_DIR`` is a training run's MODEL_DIR (curves from its TensorBoard summaries under ``train/``, F1 bars
beside the tables of every ``eval/step_N``, F1 over steps) or an evaluation output folder of ``iuie.eval``
(F1 bars beside its ``report_*.json``). Example::

    iuie report /tmp/iuie_demo        # writes eval/step_600/f1_strict.png, ..., training_curves.png
"""

from __future__ import annotations

import argparse
import os
import sys


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run_dir", metavar="RUN_DIR", help="a MODEL_DIR or an evaluation output folder")


def run(args: argparse.Namespace) -> int:
    if not os.path.isdir(args.run_dir):
        print(f"iuie report: {args.run_dir!r} is not a folder", file=sys.stderr)
        return 2
    try:
        from iuie.reporting.plots import plot_run
    except ImportError as e:
        print(f"iuie report: {e.name} is missing: pip install 'iuie[serve]'", file=sys.stderr)
        return 2
    try:
        written = plot_run(args.run_dir)
    except (ValueError, OSError) as e:
        print(f"iuie report: {e}", file=sys.stderr)
        return 2
    for path in written:
        print(path)
    return 0
