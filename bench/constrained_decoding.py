"""Constrained decoding on a demo-trained model: strict F1, hallucinated mentions and decode speed.

On the synthetic NER and RE test splits (``iuie.ie.synthetic``, the demo's data), the same Extractor settings
decode each sentence twice, free (the paper's setting) and constrained (:mod:`iuie.extraction.constrained`), and the
strict metric (:func:`iuie.ie.metrics.score`, span F1 against the gold offsets; ``hallucinated`` = predicted
mentions found nowhere in the sentence) scores both. Speed is sentences per second of ``Extractor.extract``
after one warm-up call (compilation excluded), best of ``--repeats`` timed passes per mode; the ratio is
constrained / free. Prints a table and one JSON line per task.

Run from the repository root (needs a checkpoint of ``python -m iuie.train --gin_file=t5x_configs/demo_cpu.gin``
or ``iuie demo``)::

  .venv/bin/python bench/constrained_decoding.py --checkpoint /tmp/iuie_demo --limit 300
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
from iuie.ie.formats import format_view  # noqa: E402
from iuie.ie.instructions import DEFAULT_INSTRUCTIONS  # noqa: E402
from iuie.ie.metrics import Gold, score  # noqa: E402
from iuie.ie.records import DatasetFolder, load_labels  # noqa: E402


def run_mode(extractor, task, sentences, labels, repeats):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        extractor.extract(sentences[: extractor.batch_size], task=task, labels=labels)  # compile
        best, results = None, None
        for _ in range(repeats):
            start = time.perf_counter()
            results = extractor.extract(sentences, task=task, labels=labels)
            elapsed = time.perf_counter() - start
            best = elapsed if best is None else min(best, elapsed)
    return results, len(sentences) / best


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", required=True)
    parser.add_argument("--data", default=None, help="synthetic corpus root (generated in a temp dir if absent)")
    parser.add_argument("--limit", type=int, default=300, help="test sentences per task")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--max-decode-length", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=1)
    args = parser.parse_args(argv)

    root = pathlib.Path(args.data) if args.data else pathlib.Path(tempfile.mkdtemp(prefix="iuie_synthetic_"))
    if not (root / "NER").is_dir():
        synthetic.generate(root)
    extractors = {
        mode: Extractor.from_checkpoint(
            args.checkpoint,
            max_input_tokens=256,
            max_decode_length=args.max_decode_length,
            batch_size=args.batch_size,
            constrained=(mode == "constrained"),
        )
        for mode in ("free", "constrained")
    }
    rows = []
    for task, view in (("ner", "NER"), ("re", "RE")):
        records, _ = DatasetFolder(root, view, synthetic.DATASET_NAME).load("test", limit=args.limit)
        labels = load_labels(root / view / synthetic.DATASET_NAME, view)
        golds = [
            Gold(view, r, format_view(view, r, labels, DEFAULT_INSTRUCTIONS.choose(view)).ground_truth) for r in records
        ]
        sentences = [r.sentence for r in records]
        row = {"task": view, "sentences": len(sentences)}
        for mode, extractor in extractors.items():
            results, speed = run_mode(extractor, task, sentences, list(labels.types), args.repeats)
            outputs = [r.outputs[0] for r in results]
            metrics = score(view, golds, outputs, "strict", labels=list(labels.types))
            row[mode] = {
                "f1": round(metrics["f1"], 2),
                "precision": round(metrics["precision"], 2),
                "recall": round(metrics["recall"], 2),
                "hallucinated": int(metrics.get("hallucinated", 0)),
                "sentences_per_s": round(speed, 2),
            }
        row["f1_delta"] = round(row["constrained"]["f1"] - row["free"]["f1"], 2)
        row["speed_ratio"] = round(row["constrained"]["sentences_per_s"] / row["free"]["sentences_per_s"], 3)
        rows.append(row)

    print(f"checkpoint: {args.checkpoint}")
    print(f"{'task':<5} {'mode':<12} {'F1':>7} {'P':>7} {'R':>7} {'halluc.':>8} {'sent/s':>8}")
    for row in rows:
        for mode in ("free", "constrained"):
            m = row[mode]
            print(
                f"{row['task']:<5} {mode:<12} {m['f1']:>7.2f} {m['precision']:>7.2f} {m['recall']:>7.2f} "
                f"{m['hallucinated']:>8d} {m['sentences_per_s']:>8.2f}"
            )
        print(f"{row['task']:<5} {'ratio':<12} F1 {row['f1_delta']:+.2f}, speed x{row['speed_ratio']:.3f}")
    for row in rows:
        print(json.dumps({"bench": "constrained_decoding", "checkpoint": str(args.checkpoint), **row}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
