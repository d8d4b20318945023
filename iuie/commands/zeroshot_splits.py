"""Build unseen-label RE test sets (fewrel_0..4, wiki_0..4) by the protocol of Chia et al. 2022.

SRC is an RE dataset folder of the IE INSTRUCTIONS layout (e.g. ``$IUIE_DATA_DIR/RE/FewRel``); all its
splits are pooled, in train, dev, test order, as RelationPrompt pools the corpus. For each seed a folder
``DST/RE/<name>_<seed>`` is written with ``test.json``, ``labels.json`` (the unseen labels) and ``split.json``.

    iuie zeroshot-splits "$IUIE_DATA_DIR/RE/FewRel" "$IUIE_DATA_DIR" --name fewrel
"""

from __future__ import annotations

import argparse
import os
import sys

from iuie.ie import records as R
from iuie.ie import zeroshot_splits


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("src", help="an RE dataset folder: <root>/RE/<dataset>")
    parser.add_argument("dst", help="the IE INSTRUCTIONS root to write <dst>/RE/<name>_<seed> under")
    parser.add_argument("--name", required=True, help="folder prefix, e.g. fewrel or wiki")
    parser.add_argument("--seeds", default="0,1,2,3,4", help="comma-separated seeds (default 0,1,2,3,4)")
    parser.add_argument("--unseen", type=int, default=5, help="unseen test labels per seed (default 5)")
    parser.add_argument("--dev-labels", type=int, default=5, help="held-out dev labels per seed (default 5)")
    parser.add_argument(
        "--with-train", action="store_true", help="also write <name>_<seed>_train with the train and dev label splits"
    )
    parser.add_argument("--strict", action="store_true", help="refuse bad records instead of skipping them")


def run(args: argparse.Namespace) -> int:
    src = os.path.abspath(args.src)
    task_dir, name = os.path.split(src)
    root, task = os.path.split(task_dir)
    if task != "RE" or not os.path.isdir(src):
        print(f"error: {src} is not an RE dataset folder of the layout (<root>/RE/<dataset>)", file=sys.stderr)
        return 2
    folder = R.DatasetFolder(root, task, name)
    pooled = []
    try:
        for split in folder.splits:
            recs, report = folder.load(split, strict=args.strict)
            print(report.summary(), file=sys.stderr)
            pooled.extend(recs)
        seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
        splits = zeroshot_splits.write_splits(
            pooled,
            args.dst,
            args.name,
            seeds=seeds,
            num_unseen=args.unseen,
            num_dev=args.dev_labels,
            with_train=args.with_train,
        )
    except (R.RecordError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    for split in splits:
        print(
            f"{args.name}_{split.seed}: {len(split.test)} test sentences, unseen labels: {', '.join(split.test_labels)}"
        )
    return 0
