"""Format one dataset split as one task view: JSON lines with the model inputs, targets and gold records.

Reads ``DATA_DIR/<folder>/<dataset>/<split>.json`` (the folder is the one the view reads: NER for NER/ES/ET,
RE for RE/EP/EPR, and EE, EET, EEA for themselves) and writes one JSON object per record, in file order:

    {"task", "dataset", "split", "index", "inputs", "targets", "ground_truth", "instruction", "record"}

``index`` is the record's position in the split file; ``record`` is the validated record (character offsets
checked or re-aligned). Every record is written: the reference's 30% sampling of the auxiliary views belongs
to the training mixtures, not here.

Loading is lenient: bad records are skipped, and the counts (with re-aligned mentions and the records counted
but kept: duplicates, relation mentions not among the entities) are printed on stderr.
``--strict`` stops at the first bad record instead (exit status 2, naming file, record and field).

Instructions come from iuie's own wording unless ``--instructions`` names a file in the paper's
``instruction_config.json`` shape. ``--strategy multiple`` draws one per record from a generator seeded with
``"{seed}:{view}:{dataset}:{split}:{index}"``, so output is reproducible and a record's instruction does not
depend on ``--limit`` or on the records before it.

Example::

    iuie format shared/data/IE_INSTRUCTIONS --task NER --dataset "CoNLL 2003" --split test --limit 2
"""

from __future__ import annotations

import argparse
import difflib
import json
import os
import sys

from iuie.commands import arg_types
from iuie.ie.formats import SOURCE_TASK, format_view
from iuie.ie.instructions import STRATEGIES, InstructionError, canonical_view, example_rng, instruction_set
from iuie.ie.records import SPLITS, DatasetFolder, LoadReport, RecordError, find_datasets

# Exit status for bad input (the same one argparse uses for bad arguments).
EXIT_ERROR = 2


class CommandError(Exception):
    """A problem with the command's input that the user can fix; printed without a traceback."""


def _view(value: str) -> str:
    try:
        return canonical_view(value)
    except InstructionError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "data_dir", metavar="DATA_DIR", help="the IE INSTRUCTIONS root, holding NER/, RE/, EE/, EET/ and EEA/"
    )
    parser.add_argument(
        "--task",
        required=True,
        type=_view,
        metavar="VIEW",
        help="task view: NER, ES, ET, RE, EP, EPR, EE, EET or EEA (any case)",
    )
    parser.add_argument("--dataset", required=True, help="dataset folder name, e.g. 'CoNLL 2003'")
    parser.add_argument("--split", default="test", choices=SPLITS, help="split file to read (default: test)")
    parser.add_argument(
        "--instructions",
        metavar="FILE",
        help="instruction file in the paper's instruction_config.json shape (default: iuie's own instructions)",
    )
    parser.add_argument(
        "--strategy",
        default="single",
        choices=STRATEGIES,
        help="single: the first instruction; multiple: one drawn per record (default: single)",
    )
    parser.add_argument("--seed", type=int, default=0, help="seed for --strategy multiple (default: 0)")
    parser.add_argument("--strict", action="store_true", help="stop at the first bad record instead of skipping it")
    parser.add_argument("--limit", type=arg_types.count, metavar="N", help="read only the first N records of the file")
    parser.add_argument(
        "--reference-quirks",
        action="store_true",
        help="reproduce the reference's ' -> #$%%# replacement in EE/EET targets",
    )
    parser.add_argument("--output", "-o", metavar="FILE", help="write here instead of stdout")


def run(args: argparse.Namespace) -> int:
    try:
        return _run(args)
    except (CommandError, RecordError, InstructionError) as e:
        print(f"iuie format: error: {e}", file=sys.stderr)
        return EXIT_ERROR


def _run(args: argparse.Namespace) -> int:
    view = canonical_view(args.task)
    instructions = instruction_set(args.instructions)
    instructions.get(view)  # Fail on a view the file lacks before reading any data.
    folder = _dataset_folder(args.data_dir, SOURCE_TASK[view], args.dataset)
    if args.split not in folder.splits:
        raise CommandError(
            f"{os.path.join(folder.path, args.split + '.json')} not found; splits in "
            f"{folder.path}: {', '.join(folder.splits) or 'none'}"
        )
    labels = folder.labels()
    records, report = folder.load(args.split, strict=args.strict, limit=args.limit)
    _print_report(report)

    lines = []
    for index, record in zip(report.kept_indices, records):
        rng = example_rng(args.seed, view, args.dataset, args.split, index) if args.strategy == "multiple" else None
        instruction = instructions.choose(view, args.strategy, rng)
        try:
            example = format_view(view, record, labels, instruction, reference_quirks=args.reference_quirks)
        except ValueError as e:
            raise CommandError(f"{report.path}: record {index}: {e}") from None
        lines.append(
            json.dumps(
                {
                    "task": view,
                    "dataset": args.dataset,
                    "split": args.split,
                    "index": index,
                    "inputs": example.inputs,
                    "targets": example.targets,
                    "ground_truth": example.ground_truth,
                    "instruction": example.instruction,
                    "record": record.to_json(),
                },
                ensure_ascii=False,
            )
            + "\n"
        )

    # Everything is formatted before anything is written, so an error never leaves a truncated file.
    if args.output:
        with open(args.output, "w", encoding="utf-8") as f:
            f.writelines(lines)
        print(f"wrote {len(lines)} {view} examples to {args.output}", file=sys.stderr)
    else:
        sys.stdout.writelines(lines)
        sys.stdout.flush()
    return 0


def _dataset_folder(data_dir: str, task: str, name: str) -> DatasetFolder:
    """The dataset's folder, or a CommandError naming the expected path and the datasets that do exist."""
    root = os.path.abspath(data_dir)
    if not os.path.isdir(root):
        raise CommandError(f"data directory not found: {root}")
    folder = DatasetFolder(root, task, name)
    if os.path.isdir(folder.path):
        return folder
    available = [d.name for d in find_datasets(root, tasks=(task,))]
    message = f"dataset folder not found: {folder.path}; "
    if available:
        message += f"{task} datasets in {root}: {', '.join(available)}"
        close = [a for a in available if a.lower() == name.lower()] or difflib.get_close_matches(name, available, n=1)
        if close:
            message += f" (did you mean {close[0]!r}?)"
    else:
        message += f"there are no {task} datasets in {root}"
        nested = os.path.join(root, "IE_INSTRUCTIONS")
        if os.path.isdir(nested):
            message += f" (did you mean {nested}?)"
    raise CommandError(message)


def _print_report(report: LoadReport) -> None:
    print(report.summary(), file=sys.stderr)
    for example in report.examples:
        # Skips, and notes about kept records (duplicates) which say "(kept)" themselves.
        print(f"  {'' if example.endswith('(kept)') else 'skipped: '}{example}", file=sys.stderr)
    if report.num_skipped > report.MAX_EXAMPLES:
        print(f"  ... and {report.num_skipped - report.MAX_EXAMPLES} more", file=sys.stderr)
    if report.num_skipped:
        print("  (use --strict to stop at the first bad record)", file=sys.stderr)
