"""T5X-compatible command-line handling of gin for iuie's binaries (``iuie.train``, ``iuie.eval``, ``iuie.infer``).

The flags are T5X's:

* ``--gin_file=PATH`` (repeatable; comma-separated lists allowed): gin files, parsed in order;
* ``--gin_bindings='X = V'`` (repeatable) and the shorthand ``--gin.X=V``, rewritten to the binding ``X = V``
  as T5X's ``gin_utils.rewrite_gin_args`` does (``--gin.MODEL_DIR="'/tmp/run'"``);
* ``--gin_search_paths=DIR[,DIR...]`` (repeatable): folders gin looks ``include``\\ d files up in. iuie's own
  config roots are always appended (the repository's ``gin/`` and ``t5x_configs/`` folders, or the
  ``iuie.gin`` / ``iuie.t5x_configs`` packages of an installed wheel, and the folder holding both), so
  ``include 'models/flan_t5_tiny.gin'``, ``include 'runs/finetune.gin'`` and
  ``--gin_file=t5x_configs/demo_cpu.gin`` resolve from any working directory after ``pip install``.

Fail fast. A binary's first seconds must catch configuration mistakes, before data is read or anything is
compiled. Gin itself rejects an unknown configurable or parameter when the binding is parsed; it accepts a
mistyped *macro* silently (``--gin.TRAIN_STEP=10`` defines a macro nobody reads). :func:`parse` therefore
refuses a macro given on the command line that no binding references, naming the closest known macro.
Missing ``%gin.REQUIRED`` values are refused right after parsing (all of them in one line), then the
config is finalised as T5X does (``gin.finalize()``: unset requirements and references to undefined macros
fail there, not after data loading).
"""

from __future__ import annotations

import argparse
import difflib
import importlib.util  # noqa: F401  (gin 0.5.0's resource reader uses importlib.util without importing it)
import logging
import os
import re
from collections.abc import Iterable, Sequence
from typing import Any

import gin

_MACRO_SELECTOR = "gin.macro"
# This module sits in iuie/runtime/: the package is one folder up, the checkout two.
_PACKAGE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_REPO_DIR = os.path.dirname(_PACKAGE_DIR)
# The output macro only one run gin defines: gin/runs/finetune.gin, eval.gin, infer.gin.
_ROLE_MACROS = ("MODEL_DIR", "EVAL_OUTPUT_DIR", "INFER_OUTPUT_DIR")
_GIN_ARG = re.compile(r"^--gin\.([^=]+)=(.*)$", re.DOTALL)


class GinConfigError(ValueError):
    """A configuration mistake found while parsing the flags (unknown macro, missing file, ...)."""


def config_roots() -> list[str]:
    """iuie's gin folders: the checkout's ``gin/`` and ``t5x_configs/`` (or the installed packages') and the
    folder that holds them (so paths such as ``t5x_configs/demo_cpu.gin`` resolve too)."""
    roots = []
    for base in (_REPO_DIR, _PACKAGE_DIR):  # a checkout first, then an installed wheel's package data
        gin_dir, t5x_dir = os.path.join(base, "gin"), os.path.join(base, "t5x_configs")
        if os.path.isdir(os.path.join(gin_dir, "models")):
            roots += [gin_dir, t5x_dir, base]
    seen: list[str] = []
    for root in roots:
        if os.path.isdir(root) and root not in seen:
            seen.append(root)
    return seen


def rewrite_gin_args(argv: Sequence[str]) -> list[str]:
    """``--gin.X=V`` -> ``--gin_bindings=X = V`` (T5X's rewrite); other arguments unchanged."""
    out = []
    for arg in argv:
        match = _GIN_ARG.match(arg)
        if match:
            out.append(f"--gin_bindings={match.group(1)} = {match.group(2)}")
        elif arg.startswith("--gin.") and "=" not in arg:
            raise GinConfigError(f"{arg}: expected --gin.NAME=VALUE (e.g. --gin.MODEL_DIR=\"'/tmp/run'\")")
        else:
            out.append(arg)
    return out


def add_gin_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--gin_file", action="append", default=[], help="gin file to parse (repeatable, comma-separated lists allowed)"
    )
    parser.add_argument(
        "--gin_bindings", action="append", default=[], help="a gin binding 'X = V' (repeatable); --gin.X=V is the same"
    )
    parser.add_argument(
        "--gin_search_paths",
        action="append",
        default=[],
        help="folders to look gin includes up in (repeatable, comma-separated); iuie's own "
        "config roots are always appended",
    )


def _split(values: Iterable[str]) -> list[str]:
    return [v.strip() for value in values for v in value.split(",") if v.strip()]


def _macro_name(reference: Any) -> str | None:
    selector = getattr(reference, "scoped_selector", None) or getattr(reference, "selector", "")
    if isinstance(selector, str) and selector.endswith("/" + _MACRO_SELECTOR):
        return selector[: -len(_MACRO_SELECTOR) - 1]
    return None


def _walk_references(value: Any, found: set[str]) -> None:
    if isinstance(value, gin.config.ConfigurableReference):
        name = _macro_name(value)
        if name is not None:
            found.add(name)
        return
    if isinstance(value, dict):
        for k, v in value.items():
            _walk_references(k, found)
            _walk_references(v, found)
    elif isinstance(value, (list, tuple, set, frozenset)):
        for v in value:
            _walk_references(v, found)


def defined_and_referenced_macros() -> tuple[set[str], set[str]]:
    """``(macros with a value, macros some binding reads)`` in gin's current config."""
    defined, referenced = set(), set()
    for (scope, selector), params in gin.config._CONFIG.items():  # noqa: SLF001 (gin has no public walker)
        if selector == _MACRO_SELECTOR:
            defined.add(scope)
        for value in params.values():
            _walk_references(value, referenced)
    return defined, referenced


def _binding_macro(binding: str) -> str | None:
    """The macro a command-line binding sets (``TRAIN_STEPS = 10`` -> ``TRAIN_STEPS``), else None."""
    name = binding.split("=", 1)[0].strip()
    if name and "." not in name and "/" not in name and re.match(r"^[A-Za-z_][A-Za-z0-9_]*$", name):
        return name
    return None


def check_macros(bindings: Sequence[str]) -> None:
    """Refuses a command-line macro that no binding reads (a typo such as ``--gin.TRAIN_STEP=10``)."""
    defined, referenced = defined_and_referenced_macros()
    known = sorted(defined | referenced)
    for binding in bindings:
        macro = _binding_macro(binding)
        if macro is None or macro in referenced:
            continue
        close = difflib.get_close_matches(macro, [k for k in known if k != macro], n=1)
        hint = f"; did you mean {close[0]}?" if close else ""
        raise GinConfigError(
            f"unknown gin macro {macro!r} (from the binding {binding.strip()!r}): no configuration reads it"
            f"{hint} Macros these gin files use: {', '.join(k for k in known if k in referenced)}"
        )


class DropMessages(logging.Filter):
    """A logging filter that drops records whose message template contains ``text``."""

    def __init__(self, text: str):
        super().__init__()
        self.text = text

    def filter(self, record: logging.LogRecord) -> bool:
        return self.text not in str(record.msg)


def parse(
    gin_files: Sequence[str],
    bindings: Sequence[str],
    search_paths: Sequence[str] = (),
    *,
    check_unused_macros: bool = True,
) -> None:
    """Clears gin, sets the search path (user folders, then iuie's roots), parses files then bindings."""
    from iuie import t5x_compat

    t5x_compat.install_gin_namespace_packages()  # a namespace-package t5x_configs/ must not crash gin's reader
    files = _split(gin_files)
    if not files:
        raise GinConfigError("no --gin_file given (e.g. --gin_file=t5x_configs/demo_cpu.gin)")
    gin.clear_config(clear_constants=True)
    paths = _split(search_paths) + config_roots()
    for path in paths:
        gin.add_config_file_search_path(path)
    for path in files:
        if not os.path.isfile(path) and not any(os.path.isfile(os.path.join(p, path)) for p in paths):
            raise GinConfigError(
                f"gin file {path!r} not found (looked in the working directory and the gin "
                f"search path: {', '.join(paths)})"
            )
    bindings = [b for b in bindings if b.strip()]
    # gin tries each search path in turn and logs "Path not found" at error level for every miss, even when
    # a later path holds the file; a file found nowhere is reported above, so those lines only mislead.
    quiet = DropMessages("Path not found")
    logging.getLogger().addFilter(quiet)
    try:
        gin.parse_config_files_and_bindings(files, bindings, finalize_config=False)
    finally:
        logging.getLogger().removeFilter(quiet)
    if check_unused_macros:
        check_macros(bindings)
    missing = unset_required_macros()
    if missing:
        defined = defined_and_referenced_macros()[0]
        roles = [macro for macro in _ROLE_MACROS if macro in defined]
        if len(roles) > 1:
            raise GinConfigError(
                f"these gin files mix the run gins of several binaries (they define {' and '.join(roles)}): "
                "pass the experiment's own file for this binary (t5x_configs/<experiment>/finetune.gin, eval.gin "
                "or infer.gin; the demo's: t5x_configs/demo_cpu.gin, t5x_configs/demo_cpu/eval.gin, "
                f"t5x_configs/demo_cpu/infer.gin); unset: {', '.join(missing)}"
            )
        raise GinConfigError(
            f"required gin macro{'s' if len(missing) > 1 else ''} not set: {', '.join(missing)} "
            f"(e.g. --gin.{missing[0]}=\"'...'\"; each gin file's opening comment lists what it requires)"
        )
    # Finalised as T5X does: the hooks refuse any other %gin.REQUIRED left unset and any reference to a macro
    # that nothing defines, before the binary reads a single example. Each experiment has its own finetune,
    # eval and infer file (t5x_configs/), so no binary parses another binary's required macros.
    gin.finalize()


def unset_required_macros() -> list[str]:
    """Macros whose value is still ``%gin.REQUIRED`` after parsing, in name order."""
    missing = []
    for (scope, selector), params in gin.config._CONFIG.items():  # noqa: SLF001 (gin has no public walker)
        if selector != _MACRO_SELECTOR:
            continue
        value = params.get("value")
        if (
            isinstance(value, gin.config.ConfigurableReference)
            and value.configurable.wrapped is gin.config._retrieve_constant  # noqa: SLF001
            and value.scoped_configurable_fn() is gin.REQUIRED
        ):
            missing.append(scope)
    return sorted(missing)


def write_operative_config(model_dir: str, filename: str = "config.gin") -> str | None:
    """Writes gin's operative config (what the run actually used) to ``model_dir/filename`` on process 0."""
    import jax

    if jax.process_index() != 0:
        return None
    os.makedirs(model_dir, exist_ok=True)
    path = os.path.join(model_dir, filename)
    with open(path, "w", encoding="utf-8") as f:
        f.write(gin.operative_config_str())
    return path
