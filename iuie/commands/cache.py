"""Pre-tokenise Tasks with seqio's Apache Beam cache job (seqio_cache_tasks) for USE_CACHED_TASKS = True.

Runs ``python -m seqio.scripts.cache_tasks_main`` with the flags iuie needs (``--module_import=seqio_tasks``,
the data roots in the environment; :mod:`iuie.pipeline.caching`). The DirectRunner by default; any Beam
runner through ``--pipeline-option`` (docs/scaling.md, "Beam cache", for Dataflow, Flink and Spark).
``--print-command`` prints the command line instead of running it, to paste into a cluster's launcher.
Needs ``apache-beam`` (``pip install -e '.[beam]'``).
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys

from iuie.pipeline import caching


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "tasks", nargs="+", help="Task or Mixture names (a Mixture caches all its Tasks), or regexes of Task names"
    )
    parser.add_argument("--output-dir", required=True, help="the cache folder (local path, gs://, hdfs://, ...)")
    parser.add_argument("--data-dir", help="IE INSTRUCTIONS root for the job (sets IUIE_DATA_DIR)")
    parser.add_argument("--synthetic-dir", help="synthetic corpus root for the job (sets IUIE_SYNTHETIC_DIR)")
    parser.add_argument(
        "--pipeline-option",
        action="append",
        default=[],
        metavar="OPTION",
        help="a Beam pipeline option, e.g. --pipeline-option=--runner=FlinkRunner (repeatable; default DirectRunner)",
    )
    parser.add_argument("--min-shards", type=int, default=64, help="minimum output shards per split (default 64)")
    parser.add_argument("--max-shards", type=int, default=0, help="maximum output shards per split (0: no cap)")
    parser.add_argument("--overwrite", action="store_true", help="rebuild Tasks already cached")
    parser.add_argument("--print-command", action="store_true", help="print the command line, do not run it")


def expand_mixtures(names: list[str]) -> list[str]:
    """Each registered Mixture name becomes the exact names of its Tasks (seqio's job matches Task names only;
    ``use_cached=True`` on a Mixture needs every one of its Tasks cached)."""
    import re

    import seqio

    import seqio_tasks  # noqa: F401  (registers the Tasks and Mixtures)

    out: list[str] = []
    for name in names:
        if name in seqio.MixtureRegistry.names():
            out.extend(re.escape(t.name) for t in seqio.get_mixture_or_task(name).get_subtasks())
        else:
            out.append(name)
    return list(dict.fromkeys(out))


def run(args: argparse.Namespace) -> int:
    env = {}
    if args.data_dir:
        env["IUIE_DATA_DIR"] = os.path.abspath(args.data_dir) if "://" not in args.data_dir else args.data_dir
    if args.synthetic_dir:
        env["IUIE_SYNTHETIC_DIR"] = os.path.abspath(args.synthetic_dir)
    options = tuple(args.pipeline_option) or caching.DEFAULT_PIPELINE_OPTIONS
    args.tasks = expand_mixtures(args.tasks)
    try:
        argv = caching.cache_command(
            args.tasks,
            args.output_dir,
            pipeline_options=options,
            min_shards=args.min_shards,
            max_shards=args.max_shards,
            overwrite=args.overwrite,
        )
    except ValueError as e:
        print(f"iuie cache: {e}", file=sys.stderr)
        return 2
    if args.print_command:
        prefix = " ".join(f"{k}={shlex.quote(v)}" for k, v in env.items())
        print((prefix + " " if prefix else "") + shlex.join(argv))
        return 0
    try:
        import apache_beam  # noqa: F401
    except ImportError:
        print("iuie cache: apache-beam is not installed (pip install -e '.[beam]')", file=sys.stderr)
        return 2
    try:
        caching.run_cache_job(
            args.tasks,
            args.output_dir,
            env=env,
            pipeline_options=options,
            min_shards=args.min_shards,
            max_shards=args.max_shards,
            overwrite=args.overwrite,
        )
    except caching.CacheJobError as e:
        print(f"iuie cache: {e}", file=sys.stderr)
        return 1
    done = caching.completed_tasks(args.output_dir) if "://" not in args.output_dir else []
    print(f"iuie cache: cached {len(done)} Task(s) in {args.output_dir}: {', '.join(done)}")
    print(f"train with --gin.USE_CACHED_TASKS=True and seqio's cache dir {args.output_dir} (docs/scaling.md)")
    return 0
