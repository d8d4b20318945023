"""Run T5X's own binaries (t5x.train, t5x.eval, t5x.infer) on iuie's Tasks, with iuie's T5X shims installed.

T5X is installed by the user from a source checkout (docs/t5x.md); nothing here builds or vendors it.
``iuie t5x train|eval|infer ARGS`` installs the shims of :mod:`iuie.t5x_compat`, adds iuie's config root to
``--gin_search_paths`` (so ``t5x_configs/t5x/...`` resolves wherever iuie is installed), and runs
``t5x.train`` / ``t5x.eval`` / ``t5x.infer`` as ``__main__`` with ARGS otherwise unchanged::

    iuie t5x train --gin_file=t5x_configs/t5x/tiny/finetune.gin --gin.MODEL_DIR="'/tmp/tiny'"
    iuie t5x eval --gin_file=t5x_configs/t5x/tiny/eval.gin \\
        --gin.CHECKPOINT_PATH="'/tmp/tiny/checkpoint_300'" --gin.EVAL_OUTPUT_DIR="'/tmp/tiny/eval'"
    iuie t5x infer --gin_file=t5x_configs/t5x/tiny/infer.gin \\
        --gin.CHECKPOINT_PATH="'/tmp/tiny/checkpoint_300'" --gin.INFER_OUTPUT_DIR="'/tmp/tiny/infer'"

Other actions:

    iuie t5x check          where T5X is, its commit, the shims it needs, whether its binaries import
    iuie t5x paths          the --gin_search_paths value for plain ``python -m t5x.train ...``
    iuie t5x install-hook   write a .pth file so plain ``python -m t5x.train ...`` gets the shims too
    iuie t5x remove-hook    delete it
"""

from __future__ import annotations

import argparse
import os
import runpy
import subprocess
import sys
from collections.abc import Sequence

BINARIES = ("train", "eval", "infer")
ACTIONS = BINARIES + ("check", "paths", "install-hook", "remove-hook")
SEARCH_PATHS_FLAG = "--gin_search_paths"


def config_root() -> str:
    """The folder holding ``t5x_configs/`` (:func:`iuie.t5x_compat.config_root`)."""
    from iuie import t5x_compat

    return t5x_compat.config_root()


def with_search_path(argv: Sequence[str], root: str) -> list[str]:
    """``argv`` with ``root`` appended to its ``--gin_search_paths`` (added, after T5X's default ``.``, when
    there is none). T5X appends its own checkout root to the list itself."""
    out, found = [], False
    args = list(argv)
    i = 0
    while i < len(args):
        arg = args[i]
        if arg.startswith(SEARCH_PATHS_FLAG + "="):
            out.append(f"{arg},{root}")
            found = True
        elif arg == SEARCH_PATHS_FLAG and i + 1 < len(args):
            out.append(f"{SEARCH_PATHS_FLAG}={args[i + 1]},{root}")
            found = True
            i += 1
        else:
            out.append(arg)
        i += 1
    if not found:
        out.insert(0, f"{SEARCH_PATHS_FLAG}=.,{root}")
    return out


def run_binary(binary: str, argv: Sequence[str]) -> None:
    """Runs ``t5x.<binary>`` as ``__main__`` in this process, after installing the shims.

    absl's ``app.run`` parses ``sys.argv`` and ends with ``sys.exit``; its SystemExit carries the binary's
    exit status out of this function.
    """
    from iuie import t5x_compat

    t5x_compat.install()
    module = f"t5x.{binary}"
    sys.argv = [module] + with_search_path(argv, config_root())
    runpy.run_module(module, run_name="__main__", alter_sys=True)


def t5x_commit(t5x_dir: str) -> str | None:
    """The git commit of the checkout T5X was installed from, when it is a git work tree."""
    try:
        out = subprocess.run(
            ["git", "-C", t5x_dir, "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


def check() -> int:
    """Prints where T5X is and whether its binaries import with the shims; 1 when they do not."""
    from iuie import t5x_compat

    missing = t5x_compat.missing_requirements()
    print(f"shims installed: {', '.join(t5x_compat.applied()) or 'none needed'}")
    print(f"tested T5X commit: {t5x_compat.TESTED_T5X_COMMIT}")
    if missing:
        print("t5x.train / t5x.eval / t5x.infer do not import: " + "; ".join(missing))
        print("install T5X from a source checkout as docs/t5x.md says")
        return 1
    import t5x

    checkout = os.path.dirname(os.path.dirname(os.path.abspath(t5x.__file__)))
    print(f"t5x: {checkout} (commit {t5x_commit(checkout) or 'unknown: not a git work tree'})")
    print(f"gin search paths: .,{config_root()} (T5X adds {checkout} itself)")
    return 0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("action", choices=ACTIONS, help="a T5X binary to run, or a helper (see above)")
    parser.add_argument(
        "t5x_args",
        nargs=argparse.REMAINDER,
        help="the binary's own flags (--gin_file, --gin.MACRO=VALUE, ...), passed on unchanged",
    )


def run(args: argparse.Namespace) -> int:
    from iuie import t5x_compat

    if args.action in BINARIES:
        import importlib.util

        if importlib.util.find_spec("t5x") is None:
            print(
                f"iuie t5x {args.action}: error: t5x is not importable in this interpreter: install T5X from a "
                "google-research/t5x source checkout (docs/t5x.md), then check with 'iuie t5x check'",
                file=sys.stderr,
            )
            return 2
        run_binary(args.action, args.t5x_args)
        return 0
    if args.t5x_args:
        print(
            f"iuie t5x {args.action}: error: takes no further arguments (got {' '.join(args.t5x_args)})",
            file=sys.stderr,
        )
        return 2
    if args.action == "check":
        return check()
    if args.action == "paths":
        print(f".,{config_root()}")
        return 0
    if args.action == "install-hook":
        print(f"wrote {t5x_compat.write_pth()}: python -m t5x.train|eval|infer now gets iuie's shims")
        return 0
    removed = t5x_compat.remove_pth()
    print(f"removed {removed}" if removed else f"no {t5x_compat.PTH_FILE} in {t5x_compat.site_packages()}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="iuie t5x", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
