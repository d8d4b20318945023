"""seqio's packing versus iuie's best-fit packer, side by side, on the shared supervised training mixture.

    .venv/bin/python bench/packing.py                                  # 512/50 and 256/64, tiny and small
    .venv/bin/python bench/packing.py --lengths 512/50 --models tiny --windows 2

Both packers run inside the same input pipeline (``iuie.pipeline.train_input``, packer ``seqio`` =
``seqio.EncDecFeatureConverter(pack=True)`` over each window, ``best_fit`` = iuie's), over the same windows of
the same example sequence, so only the packing differs. Reported per packer and feature lengths: the share of
padding cells (inputs, targets, both), examples per row, input-pipeline examples/s (tokenization included,
the same work on both sides), and the lower bound of padding that any packer must leave on this data (rows
needed >= max(input tokens / input length, target tokens / target length)). Then training examples/s of the
tiny and small FlanT5 (iuie's train step, AdamW, batches of the same number of rows from each packer): a row
costs the same compute either way, so examples/s follows examples per row. Sides are interleaved (A B A B) and
the load average is printed: figures from a loaded machine vary. One JSON line per measurement at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import statistics
import sys
import time

REPO = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

PACKERS = ("seqio", "best_fit")
MODELS = {
    "tiny": dict(emb_dim=128, num_heads=4, head_dim=32, mlp_dim=256, num_encoder_layers=2, num_decoder_layers=2),
    "small": dict(emb_dim=512, num_heads=6, head_dim=64, mlp_dim=1024, num_encoder_layers=8, num_decoder_layers=8),
}


def pipeline_pass(name, lengths, packer, windows, window):
    import numpy as np

    from iuie.pipeline import train_input

    it = train_input.build(name, lengths, 0, config=train_input.InputConfig(packer=packer, window=window))
    it.prefetch = False
    start = time.perf_counter()
    wins = [it.window(k) for k in range(windows)]
    seconds = time.perf_counter() - start
    rows = sum(len(w.rows) for w in wins)
    examples = sum(len(w.tokens) for w in wins)
    t_in = sum(len(a) for w in wins for a, _ in w.tokens)
    t_tg = sum(len(b) for w in wins for _, b in w.tokens)
    c_in, c_tg = rows * lengths["inputs"], rows * lengths["targets"]
    bound_rows = max(t_in / lengths["inputs"], t_tg / lengths["targets"])
    cells = bound_rows * (lengths["inputs"] + lengths["targets"])
    batch = it.next_rows(min(rows, 64))
    return {
        "packer": packer,
        "lengths": f"{lengths['inputs']}/{lengths['targets']}",
        "examples": examples,
        "rows": rows,
        "examples_per_row": round(examples / rows, 3),
        "padding_inputs": round(1 - t_in / c_in, 4),
        "padding_targets": round(1 - t_tg / c_tg, 4),
        "padding_total": round(1 - (t_in + t_tg) / (c_in + c_tg), 4),
        "padding_lower_bound": round(1 - (t_in + t_tg) / cells, 4),
        "pipeline_examples_per_s": round(examples / seconds, 1),
        "_batch": {k: np.asarray(v) for k, v in batch.items()},
        "_segments": int(np.sum(batch["encoder_segment_ids"].max(axis=1))),
    }


def train_speed(model_name, batches, rows, steps):
    """Examples/s of iuie's train step per packer, interleaved; ``batches[packer]`` = (features, examples)."""
    import flax.linen as nn
    import jax

    from iuie.model import models
    from iuie.model.network import T5Config
    from iuie.pipeline import vocab
    from iuie.training import configs, optimizers, partitioning, trainer

    config = T5Config(vocab_size=vocab.vocabulary_size(), dropout_rate=0.0, dtype="float32", **MODELS[model_name])
    model = models.EncoderDecoderModel(config=config)
    tx, schedule = optimizers.make_optimizer(configs.OptimizerConfig(name="adamw"))
    part = partitioning.Partitioner.create("data_parallel")
    any_batch = {k: v[:rows] for k, v in next(iter(batches.values()))[0].items()}
    shapes = {k: (1,) + v.shape[1:] for k, v in any_batch.items()}
    init = lambda rng: model.get_initial_variables(rng, shapes)["params"]  # noqa: E731
    layout = trainer.abstract_state(init, tx, part)
    params = jax.device_get(jax.jit(lambda r: nn.meta.unbox(init(r)))(jax.random.key(0)))
    step_fn = trainer.make_train_step(
        part, layout, any_batch, loss_fn=model.loss_fn, optimizer=tx, learning_rate_fn=schedule
    )
    states = {p: trainer.state_from_params(params, tx, layout) for p in batches}
    device = {p: part.global_batch({k: v[:rows] for k, v in b.items()}) for p, (b, _) in batches.items()}
    times = {p: [] for p in batches}
    for p in batches:  # compile (same shapes: once) and warm up both
        states[p], m = step_fn(states[p], device[p], jax.random.key(1))
        jax.block_until_ready(m["loss"])
    for _ in range(steps):
        for p in batches:  # A B A B
            start = time.perf_counter()
            states[p], m = step_fn(states[p], device[p], jax.random.key(1))
            jax.block_until_ready(m["loss"])
            times[p].append(time.perf_counter() - start)
    out = []
    for p, (_, examples) in batches.items():
        med = statistics.median(times[p])
        out.append(
            {
                "model": model_name,
                "packer": p,
                "rows": rows,
                "examples_per_batch": examples,
                "step_s_median": round(med, 4),
                "step_s_min": round(min(times[p]), 4),
                "train_examples_per_s": round(examples / med, 2),
            }
        )
    return out


def main(argv=None) -> int:
    default_root = os.environ.get("IUIE_TEST_DATA", str(REPO.parent / "shared" / "data"))
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--data-dir", default=os.environ.get("IUIE_DATA_DIR") or os.path.join(default_root, "IE_INSTRUCTIONS")
    )
    parser.add_argument("--mixture", default="iuie_supervised")
    parser.add_argument("--lengths", default="512/50,256/64")
    parser.add_argument("--windows", type=int, default=2, help="packing windows per side")
    parser.add_argument("--window", type=int, default=1024)
    parser.add_argument("--models", default="tiny,small")
    parser.add_argument("--rows", type=int, default=8, help="rows per training batch")
    parser.add_argument("--steps", type=int, default=20, help="timed steps per side")
    args = parser.parse_args(argv)

    import seqio_tasks
    from iuie.pipeline import train_input

    seqio_tasks.set_data_dir(args.data_dir)
    name, missing = train_input.present_mixture(args.mixture)
    results, trains = [], []
    for spec in args.lengths.split(","):
        li, lt = (int(x) for x in spec.split("/"))
        lengths = {"inputs": li, "targets": lt}
        passes = {p: pipeline_pass(name, lengths, p, args.windows, args.window) for p in PACKERS}
        results += passes.values()
        batches = {}
        for p, r in passes.items():
            b = r["_batch"]
            seg = b["encoder_segment_ids"][: args.rows]
            batches[p] = (b, int(seg.max(axis=1).sum()))
        for model_name in [m for m in args.models.split(",") if m]:
            trains += [dict(t, lengths=spec) for t in train_speed(model_name, batches, args.rows, args.steps)]
    load = os.getloadavg()
    print(
        f"\npacking, {name} ({len(missing)} Tasks without data left out), {args.windows} x {args.window} examples per "
        f"side; load average {load[0]:.1f} on {os.cpu_count()} CPUs (a loaded machine: timings vary)"
    )
    head = ("lengths", "packer", "ex/row", "pad in", "pad tgt", "pad total", "bound", "pipeline ex/s")
    print(" | ".join(f"{h:>13}" for h in head))
    for r in results:
        cells = (
            r["lengths"],
            r["packer"],
            r["examples_per_row"],
            f"{r['padding_inputs']:.1%}",
            f"{r['padding_targets']:.1%}",
            f"{r['padding_total']:.1%}",
            f"{r['padding_lower_bound']:.1%}",
            r["pipeline_examples_per_s"],
        )
        print(" | ".join(f"{c!s:>13}" for c in cells))
    if trains:
        print(
            " | ".join(
                f"{h:>13}" for h in ("lengths", "model", "packer", "ex/batch", "step s (med)", "train ex/s", "gain")
            )
        )
        for t in trains:
            base = next(
                x
                for x in trains
                if x["lengths"] == t["lengths"] and x["model"] == t["model"] and x["packer"] == "seqio"
            )
            gain = t["train_examples_per_s"] / base["train_examples_per_s"]
            cells = (
                t["lengths"],
                t["model"],
                t["packer"],
                t["examples_per_batch"],
                t["step_s_median"],
                t["train_examples_per_s"],
                f"{gain:.2f}x",
            )
            print(" | ".join(f"{c!s:>13}" for c in cells))
    for r in results:
        print(
            json.dumps(
                {"bench": "packing", **{k: v for k, v in r.items() if not k.startswith("_")}, "load": round(load[0], 1)}
            )
        )
    for t in trains:
        print(json.dumps({"bench": "packing_train", **t, "load": round(load[0], 1)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
