"""Resume latency of the training input pipeline: seconds from start to the first resumed batch.

    .venv/bin/python bench/resume_latency.py                     # the shared supervised mixture, 512/50
    .venv/bin/python bench/resume_latency.py --consumed 10,1000,10000 --batch-size 32

For each number of consumed examples N, a first pipeline is run until it has handed out about N examples and
its state (what the checkpoint stores) is taken; then, timed, a fresh process-like start: build the pipeline
over the Mixture (``iuie.pipeline.train_input.build``), restore the state, and produce the first resumed
global batch of rows. The old way (``ds.skip(position)`` over seqio's packed dataset) re-read every consumed
example; here the cost is re-planning one window, so the figure must not grow with N (requirement: at most
1.2x the 10-example figure). The resumed batch is also checked against the uninterrupted pipeline's.
Runs the sides interleaved (N in turn, twice) and prints the load average: figures from a loaded machine
vary. Prints a table, then one JSON line per measurement.
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import sys
import time

REPO = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


def main(argv=None) -> int:
    default_root = os.environ.get("IUIE_TEST_DATA", str(REPO.parent / "shared" / "data"))
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--data-dir", default=os.environ.get("IUIE_DATA_DIR") or os.path.join(default_root, "IE_INSTRUCTIONS")
    )
    parser.add_argument("--mixture", default="iuie_supervised")
    parser.add_argument("--consumed", default="10,1000,10000")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--window", type=int, default=1024)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args(argv)

    import numpy as np

    import seqio_tasks
    from iuie.pipeline import train_input

    seqio_tasks.set_data_dir(args.data_dir)
    name, missing = train_input.present_mixture(args.mixture)
    lengths = {"inputs": 512, "targets": 50}
    config = train_input.InputConfig(window=args.window)
    targets = [int(x) for x in args.consumed.split(",")]

    # The states to resume from (untimed): run a pipeline forward to each point.
    states, expected = {}, {}
    runner = train_input.build(name, lengths, 0, config=config)
    runner.prefetch = False
    for n in sorted(targets):
        while runner.examples_consumed < n:
            runner.next_rows(min(args.batch_size, 256))
        states[n] = runner.get_state()
        expected[n] = train_input.build(name, lengths, 0, config=config, state=states[n]).next_rows(args.batch_size)

    results = []
    for _ in range(args.repeats):
        for n in targets:
            start = time.perf_counter()
            it = train_input.build(name, lengths, 0, config=config, state=states[n])
            rows = it.next_rows(args.batch_size)
            seconds = time.perf_counter() - start
            same = all(np.array_equal(rows[k], expected[n][k]) for k in rows)
            results.append({"consumed": states[n]["examples"], "target": n, "seconds": round(seconds, 2), "same": same})
    load = os.getloadavg()
    print(
        f"\nresume latency, {name} ({len(missing)} Tasks without data left out), lengths {lengths}, "
        f"window {args.window}, batch {args.batch_size}; load average {load[0]:.1f} on {os.cpu_count()} CPUs"
    )
    print(f"{'consumed':>10} | {'seconds (each run)':>22} | {'min':>6} | {'vs 10':>6} | same batch")
    base = min(r["seconds"] for r in results if r["target"] == targets[0])
    for n in targets:
        mine = [r for r in results if r["target"] == n]
        best = min(r["seconds"] for r in mine)
        cells = ", ".join(str(r["seconds"]) for r in mine)
        print(
            f"{mine[0]['consumed']:>10} | {cells:>22} | {best:>6.2f} | {best / base:>5.2f}x | {all(r['same'] for r in mine)}"
        )
    for r in results:
        print(json.dumps({"bench": "resume_latency", **r, "load": round(load[0], 1)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
