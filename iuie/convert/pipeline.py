"""One conversion: find the input splits, read them, rename labels, write and verify the layout folders.

Output: ``<dst>/<TASK>/<dataset>/{train,dev,test}.json`` (a JSON list, one record per line) with
``labels.json`` and ``conversion_report.json``. ``labels.json`` holds the names the records use, over all
splits (so dev and test share train's label set): NER and RE a sorted list, EE ``[event types, roles]``;
``NA`` and ``""`` are left out, as the benchmark does. An EE conversion writes three folders, as IE
INSTRUCTIONS does: ``EE`` and ``EET`` with the same records, ``EEA`` with one record per event (its
``labels.json`` and EET's are ``{event type: [roles]}``). Every record carries its task's list even when
it is empty, because the loader requires it. Each folder written is loaded back with
``DatasetFolder.load(split, strict=True)`` before the conversion reports success.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Sequence
from typing import Any

from iuie.convert import brat, conll, fewrel, jsonl
from iuie.convert.labelmap import LabelMap, apply_label_map
from iuie.convert.report import ConversionError, ConversionReport
from iuie.convert.splits import SPLITS, detect_inputs
from iuie.ie.records import DatasetFolder, Record, counts

FORMATS = ("conll", "brat", "jsonl", "fewrel")
# Tasks each format can give (the first is the default where nothing else decides).
FORMAT_TASKS = {"conll": ("NER",), "brat": ("NER", "RE", "EE"), "jsonl": ("NER", "RE", "EE"), "fewrel": ("RE",)}
OUTPUT_TASKS = {"NER": ("NER",), "RE": ("RE",), "EE": ("EE", "EET", "EEA")}
RECORD_KEY = {"NER": "entities", "RE": "relations", "EE": "events", "EET": "events", "EEA": "events"}
JSON_EXTENSIONS = (".jsonl", ".json", ".ndjson", ".jl")
REPORT_FILE = "conversion_report.json"


@dataclasses.dataclass
class ConvertOptions:
    """Everything a conversion can be told; the format-specific fields are ignored by other formats."""

    task: str | None = None  # None: the format decides (BRAT and JSONL look at the input)
    dataset: str | None = None  # None: the source's base name
    split: str = "train"  # the split of a single input file
    label_map: LabelMap = dataclasses.field(default_factory=LabelMap)
    strict: bool = False  # every drop becomes an error
    drop_empty: bool = False  # leave out sentences with nothing of the task (counted)
    overwrite: bool = False
    # CoNLL
    scheme: str = "auto"
    token_column: int = 0
    tag_column: int = -1
    separator: str = "whitespace"
    # BRAT
    sentence_split: bool = True
    discontinuous: str = "skip"


@dataclasses.dataclass
class ConversionResult:
    folders: list[DatasetFolder]
    report: ConversionReport
    labels: Any


def _inputs(fmt: str, src: str, split: str, report: ConversionReport) -> dict[str, list[str]]:
    if fmt == "brat":
        if os.path.isfile(src):
            if not src.endswith(".ann"):
                raise ConversionError(src, None, "a BRAT source is a folder of .txt/.ann pairs or one .ann file")
            return detect_inputs(src, split, os.path.isfile, report)
        if os.path.isdir(src) and any(n.endswith(".ann") for n in os.listdir(src)):
            # .ann files right here: one split, whatever sub-folders there are (read recursively).
            return {split: [src]}
        return detect_inputs(src, split, brat.has_ann, report, what="folder of .ann files")
    if fmt == "conll":
        accept = os.path.isfile
    elif fmt == "jsonl":

        def accept(p: str) -> bool:
            return os.path.isfile(p) and p.lower().endswith(JSON_EXTENSIONS)
    else:

        def accept(p: str) -> bool:
            return os.path.isfile(p) and p.lower().endswith(".json")

    return detect_inputs(src, split, accept, report)


def _read(fmt: str, paths: Sequence[str], options: ConvertOptions, report: ConversionReport) -> list[Record]:
    if fmt == "conll":
        return conll.read(
            paths,
            report,
            scheme=options.scheme,
            token_column=options.token_column,
            tag_column=options.tag_column,
            separator=options.separator,
        )
    if fmt == "brat":
        return brat.read(paths, report, sentence_split=options.sentence_split, discontinuous=options.discontinuous)
    if fmt == "jsonl":
        return jsonl.read(paths, report)
    return fewrel.read(paths, report)


def _task(fmt: str, src: str, inputs: dict[str, list[str]], task: str | None) -> str:
    paths = [p for ps in inputs.values() for p in ps]
    if task is None and fmt == "brat":
        task = brat.infer_task(paths)
    elif task is None and fmt == "jsonl":
        task = jsonl.infer_task(paths)
    task = (task or FORMAT_TASKS[fmt][0]).upper()
    if task not in FORMAT_TASKS[fmt]:
        raise ConversionError(src, None, f"the {fmt} format gives {', '.join(FORMAT_TASKS[fmt])} records, not {task}")
    return task


def project(record: Record, task: str) -> Record:
    """The part of a record a task writes."""
    if task == "NER":
        return Record(record.sentence, entities=record.entities)
    if task == "RE":
        return Record(record.sentence, relations=record.relations)
    return Record(record.sentence, events=record.events)


def labels_for(task: str, records: Sequence[Record]) -> Any:
    """``labels.json`` content for a layout task (NER, RE, EE, EET, EEA) from the records written."""
    if task == "NER":
        return sorted({e.type for r in records for e in r.entities if counts(e.type)})
    if task == "RE":
        return sorted({x.type for r in records for x in r.relations if counts(x.type)})
    roles: dict[str, set[str]] = {}
    for r in records:
        for ev in r.events:
            if counts(ev.type):
                roles.setdefault(ev.type, set()).update(a.role for a in ev.arguments if counts(a.role))
    if task == "EE":
        return [sorted(roles), sorted(set().union(*roles.values()))]
    return {t: sorted(roles[t]) for t in sorted(roles)}


def _record_json(record: Record, task: str) -> dict[str, Any]:
    out = record.to_json()
    out.setdefault(RECORD_KEY[task], [])
    return out


def _write_json(path: str, value: Any, indent: int | None = None) -> None:
    with open(path, "w", encoding="utf-8") as f:
        json.dump(value, f, ensure_ascii=False, indent=indent)
        f.write("\n")


def _write_split(path: str, records: Sequence[Record], task: str) -> None:
    # One record per line: readable, and diffs of re-conversions stay small.
    with open(path, "w", encoding="utf-8") as f:
        f.write("[\n")
        f.write(",\n".join(json.dumps(_record_json(r, task), ensure_ascii=False) for r in records))
        f.write("\n]\n" if records else "]\n")


def _dataset_name(src: str, name: str | None) -> str:
    if name is None:
        base = os.path.basename(os.path.normpath(src))
        name = os.path.splitext(base)[0] if os.path.isfile(src) else base
    if not name or name in (".", "..") or os.sep in name or (os.altsep and os.altsep in name):
        raise ConversionError(src, None, f"{name!r} cannot be a dataset folder name; pass --dataset")
    return name


def _prepare_folders(paths: Sequence[str], overwrite: bool) -> None:
    """Refuses to mix with an earlier conversion unless told to; then clears only the files one writes."""
    ours = [f"{s}.json" for s in SPLITS] + ["labels.json", REPORT_FILE]
    present = {p: [n for n in ours if os.path.exists(os.path.join(p, n))] for p in paths}
    for path, names in present.items():
        if names and not overwrite:
            raise ConversionError(path, None, f"already holds {', '.join(names)}; pass --overwrite to replace it")
    for path, names in present.items():
        # Every file a conversion writes goes, so that no stale split survives a re-conversion.
        for n in names:
            os.remove(os.path.join(path, n))
        os.makedirs(path, exist_ok=True)


def convert(fmt: str, src: str, dst: str, options: ConvertOptions | None = None) -> ConversionResult:
    """Converts ``src`` (a file or folder in ``fmt``) into the layout under ``dst``; see the module doc."""
    options = options or ConvertOptions()
    if fmt not in FORMATS:
        raise ConversionError(src, None, f"unknown format {fmt!r}; expected one of {', '.join(FORMATS)}")
    report = ConversionReport(strict=options.strict)
    inputs = _inputs(fmt, src, options.split, report)
    task = _task(fmt, src, inputs, options.task)
    report.task = task
    name = _dataset_name(src, options.dataset)

    per_split: dict[str, list[Record]] = {}
    for split, paths in inputs.items():
        records = [project(r, task) for r in _read(fmt, paths, options, report)]
        if options.drop_empty:
            kept = []
            for r in records:
                if getattr(r, RECORD_KEY[task]):
                    kept.append(r)
                else:
                    # Asked for, so counted but never refused by --strict.
                    report.dropped[f"sentence without {RECORD_KEY[task]} (--drop-empty)"] += 1
            records = kept
        per_split[split] = apply_label_map(records, options.label_map, report)
        report.splits[split] = {
            "files": list(paths),
            "records": len(records),
            RECORD_KEY[task]: sum(len(getattr(r, RECORD_KEY[task])) for r in records),
        }

    folders = [DatasetFolder(dst, t, name) for t in OUTPUT_TASKS[task]]
    _prepare_folders([f.path for f in folders], options.overwrite)
    all_records = [r for rs in per_split.values() for r in rs]
    for folder in folders:
        for split, records in per_split.items():
            if folder.task == "EEA":
                records = [Record(r.sentence, events=(ev,)) for r in records for ev in r.events]
                report.splits[split]["EEA records"] = len(records)
            _write_split(os.path.join(folder.path, f"{split}.json"), records, folder.task)
        _write_json(os.path.join(folder.path, "labels.json"), labels_for(folder.task, all_records))
    for folder in folders:
        _write_json(os.path.join(folder.path, REPORT_FILE), report.to_json(), indent=1)
        for split in per_split:
            # The loader is the layout's definition: what it refuses, this converter must not write.
            folder.load(split, strict=True)
    return ConversionResult(folders, report, labels_for(task, all_records))
