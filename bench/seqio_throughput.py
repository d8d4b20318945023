"""Throughput of iuie's seqio input pipeline: raw layout folders -> tokenized, packed (512, 50) batches.

    .venv/bin/python bench/seqio_throughput.py                       # all of ../shared/data, train split
    .venv/bin/python bench/seqio_throughput.py --data-dir /data/IE_INSTRUCTIONS --max-datasets 10

What is timed, once with packing and once without (a fresh count cache each time, so both passes do the same
work): every task view of every dataset folder under the data root (NER -> NER, ES, ET; RE -> RE, EP, EPR;
EE, EET, EEA -> themselves), its split read from the raw JSON, validated, formatted
(``iuie.pipeline.preprocessors.format_view``), tokenized and EOS-terminated by the registered seqio Task, the Tasks
interleaved in proportion to their sizes (a Mixture epoch), converted by seqio's
``EncDecFeatureConverter(pack=True|False)`` to ``{"inputs": 512, "targets": 50}`` and batched. Datasets
the catalog knows use their registered Tasks; other folders are registered with
``seqio_tasks.register_dataset``.

Reported: examples/s from raw folder to batches, batch rows, and the share of padding tokens (positions that
hold no token) in encoder inputs, decoder targets and both together. The vocabulary is the Tasks' own
(``$IUIE_VOCAB`` or the project's small model): a larger vocabulary gives shorter sequences, and so more
padding without packing. Prints a table, then one JSON line per pass.
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

FEATURE_LENGTHS = {"inputs": 512, "targets": 50}
VIEWS_OF_FOLDER = {
    "NER": ("NER", "ES", "ET"),
    "RE": ("RE", "EP", "EPR"),
    "EE": ("EE",),
    "EET": ("EET",),
    "EEA": ("EEA",),
}


def task_names(root: str, split: str, max_datasets: int | None) -> list[str]:
    """Registered Task names for every view of every folder under ``root`` that has ``split``."""
    import seqio

    import seqio_tasks
    from iuie.ie import records

    names = []
    folders = [f for f in records.find_datasets(root) if split in f.splits]
    for folder in folders[:max_datasets]:
        for view in VIEWS_OF_FOLDER[folder.task]:
            name = seqio_tasks.catalog.task_name(view, folder.name)
            if name not in seqio.TaskRegistry.names():
                family = {"EET": "EE", "EEA": "EE"}.get(folder.task, folder.task)
                seqio_tasks.register_dataset(folder.name, family, root=root, views=(view,), overwrite=True)
            names.append(name)
    return names


def run_pass(names: list[str], split: str, pack: bool, batch_size: int) -> dict:
    import numpy as np
    import seqio
    import tensorflow as tf

    from iuie.pipeline import seqio_data

    seqio_data.forget_counts()  # both passes start from the raw files
    start = time.perf_counter()
    tasks = [seqio.get_mixture_or_task(n) for n in names]
    counts = [t.num_input_examples(split) for t in tasks]
    datasets = []
    for task in tasks:
        ds = task.get_dataset(FEATURE_LENGTHS, split=split, shuffle=False, num_epochs=1)
        datasets.append(ds.map(lambda ex: {"inputs": ex["inputs"], "targets": ex["targets"]}))
    total = sum(counts)
    mixed = tf.data.Dataset.sample_from_datasets(
        datasets, weights=[c / total for c in counts], seed=0, stop_on_empty_dataset=False
    )
    converter = seqio.EncDecFeatureConverter(pack=pack)
    batches = converter(mixed, FEATURE_LENGTHS).batch(batch_size).prefetch(tf.data.AUTOTUNE)
    rows = pad_in = pad_tgt = examples = 0
    for batch in batches.as_numpy_iterator():
        rows += batch["encoder_input_tokens"].shape[0]
        pad_in += int(np.sum(batch["encoder_input_tokens"] == 0))
        pad_tgt += int(np.sum(batch["decoder_target_tokens"] == 0))
        if pack:
            # Each packed example has its own segment id; count segments per row.
            seg = batch["encoder_segment_ids"]
            examples += int(sum(len(np.unique(r[r > 0])) for r in seg))
        else:
            examples += batch["encoder_input_tokens"].shape[0]
    seconds = time.perf_counter() - start
    in_cells = rows * FEATURE_LENGTHS["inputs"]
    tgt_cells = rows * FEATURE_LENGTHS["targets"]
    return {
        "pack": pack,
        "tasks": len(names),
        "split": split,
        "examples": examples,
        "source_examples": total,
        "rows": rows,
        "seconds": round(seconds, 2),
        "examples_per_s": round(examples / seconds, 1),
        "padding_inputs": round(pad_in / in_cells, 4) if in_cells else None,
        "padding_targets": round(pad_tgt / tgt_cells, 4) if tgt_cells else None,
        "padding_total": round((pad_in + pad_tgt) / (in_cells + tgt_cells), 4) if rows else None,
        "examples_per_row": round(examples / rows, 2) if rows else None,
        "batch_size": batch_size,
        "feature_lengths": FEATURE_LENGTHS,
    }


def main(argv=None) -> int:
    default_root = os.environ.get("IUIE_TEST_DATA", str(REPO.parent / "shared" / "data"))
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", default=os.path.join(default_root, "IE_INSTRUCTIONS"))
    parser.add_argument("--split", default="train")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--max-datasets", type=int, default=None, help="only the first N dataset folders")
    args = parser.parse_args(argv)

    import seqio_tasks
    from iuie.pipeline import vocab

    seqio_tasks.set_data_dir(args.data_dir)
    names = task_names(args.data_dir, args.split, args.max_datasets)
    # Untimed warm-up on the first Task (tokenizer load, TF kernel set-up), so neither pass pays for it.
    for pack in (True, False):
        run_pass(names[:1], args.split, pack, args.batch_size)
    results = [run_pass(names, args.split, pack, args.batch_size) for pack in (True, False)]

    print(
        f"\nseqio pipeline, {args.data_dir} ({args.split}), {len(names)} Tasks, "
        f"vocabulary {vocab.vocabulary_path()} ({seqio_tasks.VOCABULARY.vocab_size} ids), "
        f"feature lengths {FEATURE_LENGTHS}, batch {args.batch_size}, {os.cpu_count()} CPUs"
    )
    header = (
        "packing",
        "examples",
        "rows",
        "ex/row",
        "seconds",
        "examples/s",
        "pad inputs",
        "pad targets",
        "pad total",
    )
    print(" | ".join(f"{h:>11}" for h in header))
    for r in results:
        cells = (
            "yes" if r["pack"] else "no",
            r["examples"],
            r["rows"],
            r["examples_per_row"],
            r["seconds"],
            r["examples_per_s"],
            f"{r['padding_inputs']:.1%}",
            f"{r['padding_targets']:.1%}",
            f"{r['padding_total']:.1%}",
        )
        print(" | ".join(f"{c:>11}" for c in cells))
    for r in results:
        print(json.dumps({"bench": "seqio_throughput", **r}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
