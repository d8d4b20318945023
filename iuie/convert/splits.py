"""Which input files hold which split (train, dev, test).

A file (or, for BRAT, a folder) belongs to a split when one *word* of its name, split on anything that is
not a letter or a digit, is a split word: ``train``/``training``; ``dev``/``devel``/``development``/
``val``/``valid``/``validation``/``testa`` (CoNLL-2003's development set); ``test``/``testing``/``testb``.
So ``train.txt``, ``btc.dev``, ``eng.testa``, ``val_wiki.json`` and ``train.ADE0.json`` are recognised;
``wnut17train.conll`` is not (pass it alone, with ``--split train``). A name with words of two splits is
ambiguous and is not used. Several files of one split are read in name order and concatenated.

A single input file, or a folder with no split-named entries but exactly one input, is the split that the
caller names (``--split``, default ``train``).
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable

from iuie.convert.report import ConversionError, ConversionReport

SPLITS = ("train", "dev", "test")
SPLIT_WORDS = {
    "train": "train",
    "training": "train",
    "dev": "dev",
    "devel": "dev",
    "development": "dev",
    "val": "dev",
    "valid": "dev",
    "validation": "dev",
    "testa": "dev",
    "test": "test",
    "testing": "test",
    "testb": "test",
}


def split_of(name: str) -> str | None:
    """The split a file or folder name stands for, or None (no split word, or words of two splits)."""
    found = {SPLIT_WORDS[w] for w in re.split(r"[^a-z0-9]+", name.lower()) if w in SPLIT_WORDS}
    return found.pop() if len(found) == 1 else None


def detect_inputs(
    src: str, default_split: str, accept: Callable[[str], bool], report: ConversionReport, what: str = "input file"
) -> dict[str, list[str]]:
    """Split name -> input paths, in SPLITS order. ``accept(path)`` picks the candidate entries of a folder."""
    if default_split not in SPLITS:
        raise ConversionError(src, None, f"--split must be one of {', '.join(SPLITS)}, got {default_split!r}")
    if not os.path.exists(src):
        raise ConversionError(src, None, "not found")
    if not os.path.isdir(src):
        return {default_split: [src]}
    candidates = sorted(
        os.path.join(src, n) for n in os.listdir(src) if not n.startswith(".") and accept(os.path.join(src, n))
    )
    found: dict[str, list[str]] = {}
    unnamed = []
    for path in candidates:
        split = split_of(os.path.basename(path))
        if split is None:
            unnamed.append(path)
        else:
            found.setdefault(split, []).append(path)
    if not found:
        if len(unnamed) == 1:
            return {default_split: unnamed}
        if not unnamed:
            raise ConversionError(src, None, f"no {what} found in this folder")
        raise ConversionError(
            src, None, f"no {what} here is named for a split (train, dev, test); convert one at a time with --split"
        )
    for path in unnamed:
        report.ignore(f"{what} not named for a split", path)
    return {s: found[s] for s in SPLITS if s in found}
