"""The ``iuie`` command: a thin dispatcher over ``iuie.commands``.

Each sub-command lives in its own module so that ``iuie score`` does not import JAX and ``iuie
convert-checkpoint`` does not import seqio. Modules are imported only for the command that runs (and for
``--help``, which needs their one-line summaries).
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from iuie.runtime import errors

# Sub-command name -> module under iuie.commands.
COMMANDS: dict[str, str] = {
    "format": "iuie.commands.format_views",
    "score": "iuie.commands.score",
    "demo": "iuie.commands.demo",
    "convert-checkpoint": "iuie.commands.convert_checkpoint",
    "zeroshot-splits": "iuie.commands.zeroshot_splits",
    "mixtures": "iuie.commands.mixtures",
    "convert-data": "iuie.commands.convert_data",
    "t5x": "iuie.commands.t5x_launcher",
    "extract": "iuie.commands.extract",
    "serve": "iuie.commands.serve",
    "report": "iuie.commands.report",
    "cache": "iuie.commands.cache",
    "plan": "iuie.commands.plan",
}


def _summary(module) -> str:
    doc = (module.__doc__ or "").strip()
    return doc.splitlines()[0] if doc else ""


def build_parser(argv: Sequence[str]) -> argparse.ArgumentParser:
    parser = errors.OneLineArgumentParser(prog="iuie", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    wanted = [a for a in argv if not a.startswith("-")][:1]
    for name, module_name in COMMANDS.items():
        # Import every module only for top-level help; otherwise just the one asked for.
        if wanted and wanted[0] != name:
            sub.add_parser(name)
            continue
        module = importlib.import_module(module_name)
        command = sub.add_parser(
            name,
            help=_summary(module),
            description=module.__doc__,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        module.add_arguments(command)
        command.set_defaults(_run=module.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Runs one sub-command. Each reports its own user errors in one line (exit status 2); as a safety net,
    an unreadable file or a record error that a command did not catch gets the same treatment here."""
    from iuie.ie.records import RecordError

    argv = list(sys.argv[1:] if argv is None else argv)
    wanted = [a for a in argv if not a.startswith("-")][:1]
    if wanted and wanted[0] in COMMANDS:
        # A command may take arguments argparse cannot express (T5X's ``--gin.NAME=VALUE``): it rewrites them.
        rewrite = getattr(importlib.import_module(COMMANDS[wanted[0]]), "rewrite_argv", None)
        if rewrite is not None:
            argv = rewrite(argv)
    args = build_parser(argv).parse_args(argv)
    try:
        return int(args._run(args) or 0)
    except (*errors.FILE_ERRORS, RecordError) as e:
        return errors.report(f"iuie {args.command}", e)


if __name__ == "__main__":
    sys.exit(main())
