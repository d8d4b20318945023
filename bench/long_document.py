"""One long document through the Extractor: windows of 512 tokens without overlap (the old defaults) side by
side with windows of the trained input length, without and with overlap.

The document is the synthetic NER test split (``iuie.ie.synthetic``, the demo's data: names the training
never showed) joined into one text of about ``--kilobytes`` KB, one sentence after another, so its gold
entities have document offsets. Per setting: windows, seconds of ``Extractor.extract`` (compilation
included: a user pays it once per run), predicted mentions, how many align to the text, how many are correct
(strict: same type and offsets as a gold entity), recall and precision, and mentions merged across windows.

Run from the repository root, on a checkpoint of ``python -m iuie.train --gin_file=t5x_configs/demo_cpu.gin``::

  .venv/bin/python bench/long_document.py --checkpoint /tmp/iuie_demo --kilobytes 100
"""

from __future__ import annotations

import argparse
import json
import pathlib
import sys
import tempfile
import time
import warnings

REPO = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from iuie.extraction.extractor import Extractor  # noqa: E402
from iuie.ie import synthetic  # noqa: E402
from iuie.ie.records import DatasetFolder, load_labels  # noqa: E402


def long_document(kilobytes: int) -> tuple[str, list[tuple[str, int, int]], list[str]]:
    """``(text, gold (type, start, end), labels)``: test sentences joined by one space (sentences without
    entities included), repeated in order if the split is shorter than asked."""
    with tempfile.TemporaryDirectory() as root:
        synthetic.generate(root)
        records, _ = DatasetFolder(root, "NER", synthetic.DATASET_NAME).load("test")
        labels = list(load_labels(pathlib.Path(root) / "NER" / synthetic.DATASET_NAME, "NER").types)
    parts, gold, length = [], [], 0
    while length < kilobytes * 1000:
        for record in records:
            for e in record.entities:
                gold.append((e.type, length + e.start, length + e.end))
            parts.append(record.sentence)
            length += len(record.sentence) + 1
            if length >= kilobytes * 1000:
                break
    return " ".join(parts), gold, labels


def run(extractor, text, gold, labels) -> dict:
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        [result] = extractor.extract([text], task="ner", labels=labels)
    seconds = time.perf_counter() - start
    predicted = [(e.type, e.start, e.end) for e in result.entities]
    aligned = [p for p in predicted if p[1] is not None]
    correct = len(set(aligned) & set(gold))
    return {
        "max_input_tokens": extractor.max_input_tokens,
        "overlap_tokens": extractor.last_stats["overlap_tokens"],
        "windows": len(result.windows),
        "seconds": round(seconds, 1),
        "predicted": len(predicted),
        "aligned": len(aligned),
        "correct": correct,
        "recall": round(100 * correct / max(len(gold), 1), 2),
        "precision": round(100 * correct / max(len(predicted), 1), 2),
        "merged": result.merged,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", required=True)
    parser.add_argument("--kilobytes", type=int, default=100)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--max-decode-length", type=int, default=64)
    parser.add_argument(
        "--tokens", type=int, nargs="*", default=[], help="more window lengths to try (default overlap each)"
    )
    args = parser.parse_args()
    text, gold, labels = long_document(args.kilobytes)
    print(f"document: {len(text)} characters, {len(gold)} gold entities, labels {labels}")
    settings = [
        ("512 tokens, no overlap (old defaults)", {"max_input_tokens": 512, "window_overlap": 0}),
        ("trained length, no overlap", {"window_overlap": 0}),
        ("trained length, default overlap", {}),
        *((f"{n} tokens, default overlap", {"max_input_tokens": n}) for n in args.tokens),
    ]
    rows = []
    for name, options in settings:
        extractor = Extractor.from_checkpoint(
            args.checkpoint, batch_size=args.batch_size, max_decode_length=args.max_decode_length, **options
        )
        row = {"setting": name, "window_source": extractor.window_source, **run(extractor, text, gold, labels)}
        rows.append(row)
        print(json.dumps(row))
    keys = ["windows", "seconds", "predicted", "aligned", "correct", "recall", "precision", "merged"]
    print("| setting | tokens | overlap | " + " | ".join(keys) + " |")
    print("|---" * (len(keys) + 3) + "|")
    for row in rows:
        cells = [str(row[k]) for k in keys]
        print(f"| {row['setting']} | {row['max_input_tokens']} | {row['overlap_tokens']} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
