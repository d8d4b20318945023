"""Convert a raw IE corpus (CoNLL columns, BRAT standoff, JSONL spans, FewRel JSON) into the layout.

Writes ``DST/<TASK>/<dataset>/{train,dev,test}.json`` with ``labels.json`` and ``conversion_report.json``
(EE also writes the EET and EEA folders). SRC is a file (written as the ``--split`` split) or a folder
whose entries are named for their split (``train``, ``dev``/``valid``/``val``, ``test``). Labels are renamed
by ``--labels-map`` (JSON ``{code: name}``, or FewRel's ``pid2name.json``); see docs/converters.md.

    iuie convert-data conll data/conll2003 out --labels-map conll_labels.json --dataset "CoNLL 2003"
    iuie convert-data brat corpus/ out --task RE --split test
    iuie convert-data fewrel FewRel/train_wiki.json out --labels-map FewRel/pid2name.json --dataset FewRel
"""

from __future__ import annotations

import argparse
import sys


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from iuie.convert import brat, conll, labelmap, pipeline, splits

    parser.add_argument("format", choices=pipeline.FORMATS, help="the input format")
    parser.add_argument("src", help="an input file, or a folder of split-named files (BRAT: of .ann files)")
    parser.add_argument("dst", help="the IE INSTRUCTIONS root to write <dst>/<TASK>/<dataset> under")
    parser.add_argument(
        "--labels-map", metavar="FILE", help="JSON {code: name} (or {code: [name, description]}) naming the labels"
    )
    parser.add_argument(
        "--unknown-labels",
        choices=labelmap.UNKNOWN_POLICIES,
        default="normalize",
        help="codes not in the map: 'normalize' (Live_In -> live in, the default) or 'keep'",
    )
    parser.add_argument(
        "--task",
        choices=("NER", "RE", "EE"),
        type=str.upper,
        help="what to write (default: conll NER, fewrel RE; brat and jsonl: EE if the input "
        "has events, else RE if it has relations, else NER)",
    )
    parser.add_argument("--dataset", metavar="NAME", help="the dataset folder name (default: SRC's base name)")
    parser.add_argument(
        "--split", choices=splits.SPLITS, default="train", help="the split of a single input file (default train)"
    )
    parser.add_argument(
        "--drop-empty", action="store_true", help="leave out sentences with nothing of the task (counted in the report)"
    )
    parser.add_argument("--strict", action="store_true", help="refuse any drop instead of counting it")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing dataset folder's files")
    group = parser.add_argument_group("conll")
    group.add_argument(
        "--scheme",
        choices=conll.SCHEMES,
        default="auto",
        help="tag scheme (default auto: BIOES if E-/S-/L-/U- tags occur, else BIO)",
    )
    group.add_argument("--token-column", type=int, default=0, help="token column (default 0)")
    group.add_argument("--tag-column", type=int, default=-1, help="tag column (default -1, the last)")
    group.add_argument(
        "--separator",
        choices=conll.SEPARATORS,
        default="whitespace",
        help="column separator (default whitespace; tab allows spaces inside tokens)",
    )
    group = parser.add_argument_group("brat")
    group.add_argument(
        "--no-sentence-split",
        dest="sentence_split",
        action="store_false",
        help="one record per document instead of one per sentence",
    )
    group.add_argument(
        "--discontinuous",
        choices=brat.DISCONTINUOUS,
        default="skip",
        help="discontinuous T spans: skip them (default) or merge into one covering span",
    )


def run(args: argparse.Namespace) -> int:
    from iuie.convert import labelmap, pipeline
    from iuie.convert.report import ConversionError
    from iuie.ie.records import RecordError

    try:
        options = pipeline.ConvertOptions(
            task=args.task,
            dataset=args.dataset,
            split=args.split,
            label_map=labelmap.load_label_map(args.labels_map, args.unknown_labels),
            strict=args.strict,
            drop_empty=args.drop_empty,
            overwrite=args.overwrite,
            scheme=args.scheme,
            token_column=args.token_column,
            tag_column=args.tag_column,
            separator=args.separator,
            sentence_split=args.sentence_split,
            discontinuous=args.discontinuous,
        )
        result = pipeline.convert(args.format, args.src, args.dst, options)
    except (ConversionError, RecordError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(result.report.summary())
    for folder in result.folders:
        print(f"wrote {folder.path} ({', '.join(folder.splits)}; labels.json, {pipeline.REPORT_FILE})")
    return 0
