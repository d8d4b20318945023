"""Constrained decoding, side by side: free, host-constrained and device-constrained ``Extractor.extract``.

For each model (the tiny and the Flan-T5-small-shaped configs of ``bench/decode_speed.py`` with random weights
over the project's vocabulary, or a trained ``--checkpoint``) and each synthetic test split (NER, RE, EE;
``iuie.ie.synthetic``), the same Extractor settings decode the same sentences three ways:

* ``free``: no constraint (the paper's setting);
* ``host``: ``constrained="host"``, masks computed on the host through ``jax.pure_callback`` at every step
  (:mod:`iuie.extraction.constrained`);
* ``device``: ``constrained=True``, the grammar compiled into tables and run inside the decode loop
  (:mod:`iuie.extraction.compiled`, :mod:`iuie.model.grammar_mask`).

Speed is sentences per second of a whole ``extract`` call (table building included) after a warm-up call per
mode (compilation excluded); the three modes are timed in interleaved rounds with a rotating order, so load
on a shared machine hits them alike, and the median over ``--repeats`` rounds is reported with ratios to
free. A decode runs until the longest row of its batch ends, and a random model's free and constrained
outputs differ in length, so the time per decode step (``ms/step``, wall time over the summed steps of the
batches) is compared too: it is the like-for-like figure there. Also printed: whether host and device outputs are identical, mentions found nowhere in their window
(``unaligned``: hallucinations) per mode, generated tokens, and strict F1 (meaningful for a checkpoint only).
One JSON line per (model, task) at the end.

Run from the repository root::

  .venv/bin/python bench/constrained_decoding.py                       # tiny and small, random weights
  .venv/bin/python bench/constrained_decoding.py --checkpoint /tmp/iuie_demo --configs checkpoint
"""

from __future__ import annotations

import argparse
import json
import pathlib
import statistics
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

MODES = {"free": False, "host": "host", "device": True}
TASKS = (("ner", "NER"), ("re", "RE"), ("ee", "EE"))
# The shapes of bench/decode_speed.py's configs (its vocabulary size replaced by the project's).
SHAPES = {
    "tiny": dict(emb_dim=64, num_heads=4, head_dim=16, mlp_dim=128, num_encoder_layers=2, num_decoder_layers=2),
    "small": dict(emb_dim=512, num_heads=6, head_dim=64, mlp_dim=1024, num_encoder_layers=8, num_decoder_layers=8),
}


def random_model(name: str, seed: int):
    import flax.linen as nn
    import jax

    from iuie.model.models import EncoderDecoderModel
    from iuie.model.network import T5Config
    from iuie.pipeline import vocab

    vocabulary = vocab.get_vocabulary()
    size = -(-vocabulary.tokenizer.get_piece_size() // 128) * 128
    config = T5Config(vocab_size=size, dropout_rate=0.0, dtype="float32", **SHAPES[name])
    model = EncoderDecoderModel(config=config)
    shapes = {"encoder_input_tokens": (1, 8), "decoder_input_tokens": (1, 8)}
    params = nn.meta.unbox(model.get_initial_variables(jax.random.key(seed), shapes)["params"])
    return params, config, vocabulary


def extractors(model: str, args) -> dict[str, Extractor]:
    options = dict(max_input_tokens=256, max_decode_length=args.max_decode_length, batch_size=args.batch_size)
    if model == "checkpoint":
        return {m: Extractor.from_checkpoint(args.checkpoint, constrained=c, **options) for m, c in MODES.items()}
    params, config, vocabulary = random_model(model, args.seed)
    return {m: Extractor(params, config, vocabulary, constrained=c, **options) for m, c in MODES.items()}


def generated(extractor: Extractor, results) -> list[int]:
    """Tokens decoded per output, EOS included (an output cut by the budget counts the budget)."""
    return [
        min(len(extractor.vocabulary.encode(o)) + 1, extractor.max_decode_length) for r in results for o in r.outputs
    ]


def decode_steps(lengths: list[int], batch_size: int) -> int:
    """Decode-loop steps: a batch runs until its longest row ends."""
    return sum(max(lengths[i : i + batch_size]) for i in range(0, len(lengths), batch_size))


def bench_task(exts, task, view, root, args) -> dict:
    records, _ = DatasetFolder(root, view, synthetic.DATASET_NAME).load("test", limit=args.limit)
    labels = load_labels(root / view / synthetic.DATASET_NAME, view)
    options = [list(labels.types), list(labels.all_roles)] if view == "EE" else list(labels.types)
    if view == "EE":  # roles narrowed per event type: the corpus's own type -> roles map
        options = {t: list(synthetic.EVENT_ROLES[t]) for t in labels.types}
    sentences = [r.sentence for r in records]
    golds = [
        Gold(view, r, format_view(view, r, labels, DEFAULT_INSTRUCTIONS.choose(view)).ground_truth) for r in records
    ]
    results, times = {}, {m: [] for m in exts}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for mode, ext in exts.items():  # compile (one batch) before any timing
            ext.extract(sentences[: args.batch_size], task=task, labels=options)
        order = list(exts)
        for round_ in range(args.repeats):
            for mode in order[round_ % len(order) :] + order[: round_ % len(order)]:
                start = time.perf_counter()
                results[mode] = exts[mode].extract(sentences, task=task, labels=options)
                times[mode].append(time.perf_counter() - start)
    row = {"task": view, "sentences": len(sentences), "batch_size": args.batch_size}
    for mode in exts:
        outputs = [r.outputs[0] for r in results[mode]]
        metrics = score(view, golds, outputs, "strict", labels=list(labels.types))
        seconds = statistics.median(times[mode])
        lengths = generated(exts[mode], results[mode])
        steps = decode_steps(lengths, args.batch_size)
        row[mode] = {
            "sentences_per_s": round(len(sentences) / seconds, 2),
            "seconds": round(seconds, 3),
            "decode_steps": steps,
            "ms_per_step": round(1000 * seconds / steps, 3),
            "generated_tokens": sum(lengths),
            "unaligned": sum(r.unaligned for r in results[mode]),
            "f1": round(metrics["f1"], 2),
        }
    for mode in ("host", "device"):
        row[f"{mode}_time_ratio"] = round(row[mode]["seconds"] / row["free"]["seconds"], 3)
        row[f"{mode}_step_ratio"] = round(row[mode]["ms_per_step"] / row["free"]["ms_per_step"], 3)
    row["device_equals_host"] = [r.outputs for r in results["device"]] == [r.outputs for r in results["host"]]
    return row


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--configs", default="tiny,small", help="tiny, small and/or checkpoint")
    parser.add_argument("--checkpoint", default=None)
    parser.add_argument("--data", default=None, help="synthetic corpus root (generated in a temp dir if absent)")
    parser.add_argument("--tasks", default="ner,re,ee")
    parser.add_argument("--limit", type=int, default=128, help="test sentences per task")
    parser.add_argument("--small-limit", type=int, default=64, help="test sentences per task for 'small'")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--max-decode-length", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0, help="random weights of the tiny / small models")
    args = parser.parse_args(argv)

    root = pathlib.Path(args.data) if args.data else pathlib.Path(tempfile.mkdtemp(prefix="iuie_synthetic_"))
    if not (root / "NER").is_dir():
        synthetic.generate(root)
    rows = []
    for model in args.configs.split(","):
        if model == "checkpoint" and not args.checkpoint:
            parser.error("--configs checkpoint needs --checkpoint")
        exts = extractors(model, args)
        limit = args.limit
        if model == "small":
            args.limit = args.small_limit
        for task, view in TASKS:
            if task in args.tasks.split(","):
                rows.append({"model": model, "seed": args.seed, **bench_task(exts, task, view, root, args)})
                print(json.dumps(rows[-1]), flush=True)
        args.limit = limit

    head = (
        f"{'model':<10} {'task':<4} {'mode':<7} {'sent/s':>8} {'x free':>7} {'steps':>6} {'ms/step':>8} {'x free':>7}"
    )
    print(f"\n{head} {'unalig.':>7} {'F1':>6}")
    for row in rows:
        for mode in MODES:
            m = row[mode]
            ratio = "" if mode == "free" else f"{row[f'{mode}_time_ratio']:.2f}"
            step_ratio = "" if mode == "free" else f"{row[f'{mode}_step_ratio']:.2f}"
            print(
                f"{row['model']:<10} {row['task']:<4} {mode:<7} {m['sentences_per_s']:>8.1f} {ratio:>7} "
                f"{m['decode_steps']:>6d} {m['ms_per_step']:>8.2f} {step_ratio:>7} {m['unaligned']:>7d} {m['f1']:>6.2f}"
            )
        print(f"{'':<10} {row['task']:<4} device outputs == host outputs: {row['device_equals_host']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
