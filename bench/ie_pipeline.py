"""Records/s of the data side over every shared dataset: load, format, parse, score (issue 2's benchmark).

For each dataset of the IE INSTRUCTIONS root and each of its views (NER -> NER, ES, ET; RE -> RE, EP,
EPR; EE -> EE; EET -> EET; EEA -> EEA), every split is loaded (validation and offset checks included),
formatted with the default instructions, its gold target parsed back (standing in for model output), and
scored in both modes. Each stage is timed on its own; the table gives records per second per stage and for
the whole pipeline, and one JSON line per stage follows it.

    python bench/ie_pipeline.py [--data ../shared/data/IE_INSTRUCTIONS] [--repeats 3]

Times are the best of ``--repeats`` runs (the least disturbed by other processes on the machine).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

from iuie.ie import formats, instructions, metrics, parsing  # noqa: E402
from iuie.ie import records as R  # noqa: E402

VIEWS_OF = {"NER": ("NER", "ES", "ET"), "RE": ("RE", "EP", "EPR"), "EE": ("EE",), "EET": ("EET",), "EEA": ("EEA",)}


def run_once(root: str) -> dict[str, float | int]:
    timings = {"load": 0.0, "format": 0.0, "parse": 0.0, "score": 0.0}
    n_records = n_examples = 0
    for folder in R.find_datasets(root):
        labels = folder.labels()
        for split in folder.splits:
            t = time.perf_counter()
            recs, _ = folder.load(split)
            timings["load"] += time.perf_counter() - t
            n_records += len(recs)
            for view in VIEWS_OF[folder.task]:
                instruction = instructions.DEFAULT_INSTRUCTIONS.choose(view)
                t = time.perf_counter()
                examples = [formats.format_view(view, r, labels, instruction) for r in recs]
                timings["format"] += time.perf_counter() - t
                t = time.perf_counter()
                parsed = [
                    parsing.parse(view, e.targets, labels.raw, sentence=r.sentence) for e, r in zip(examples, recs)
                ]
                timings["parse"] += time.perf_counter() - t
                golds = [metrics.Gold(view, r, e.ground_truth) for e, r in zip(examples, recs)]
                t = time.perf_counter()
                for mode in ("strict", "reference"):
                    metrics.score(view, golds, parsed, mode, labels=labels.raw)
                timings["score"] += time.perf_counter() - t
                n_examples += len(recs)
    return {**timings, "records": n_records, "examples": n_examples}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default = os.path.join(os.path.dirname(HERE), "..", "shared", "data", "IE_INSTRUCTIONS")
    parser.add_argument("--data", default=os.environ.get("IUIE_DATA_DIR", default))
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    if not R.find_datasets(args.data):
        print(f"no datasets under {args.data}", file=sys.stderr)
        return 2
    runs = [run_once(args.data) for _ in range(args.repeats)]
    best = {k: min(r[k] for r in runs) for k in ("load", "format", "parse", "score")}
    records, examples = runs[0]["records"], runs[0]["examples"]
    total = sum(best.values())
    rows = [
        ("load (records)", best["load"], records),
        ("format (view examples)", best["format"], examples),
        ("parse (view examples)", best["parse"], examples),
        ("score, both modes (view examples)", best["score"], examples),
        ("pipeline (records, all views)", total, records),
    ]
    print(
        f"{len(R.find_datasets(args.data))} datasets, {records} records, {examples} view examples; "
        f"best of {args.repeats}"
    )
    print(f"{'stage':<36} {'seconds':>9} {'items':>8} {'items/s':>10}")
    for name, seconds, items in rows:
        print(f"{name:<36} {seconds:9.2f} {items:8d} {items / seconds:10.0f}")
    for name, seconds, items in rows:
        print(
            json.dumps(
                {
                    "bench": "ie_pipeline",
                    "stage": name,
                    "seconds": round(seconds, 4),
                    "items": items,
                    "items_per_s": round(items / seconds, 1),
                }
            )
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
