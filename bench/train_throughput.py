"""CPU training throughput: iuie's jit-compiled train step against a plain transformers PyTorch loop.

Both sides train the same network (T5 v1.1 / Flan-T5 architecture: gated GELU, untied output layer, relative
position buckets), from the same random weights (copied into transformers with the test-only mapping
``tests/model/hf_weights.py``), on the same examples, with AdamW (lr 1e-4, no weight decay), float32, dropout
off on both sides (so neither pays for dropout masks the other does not draw).

Data and the fairness choice (option (i) of issue 5): one batch of ``--rows`` rows is built once from the
synthetic corpus (seqio Mixture ``iuie_synthetic``, ``EncDecFeatureConverter(pack=True)``, inputs 256 /
targets 64). transformers' T5 has no segment ids, so it cannot train on packed rows; each packed row is
therefore unpacked back into its separate examples, each padded to the same lengths (256 / 64). Three runs:

  iuie-packed     iuie on the packed rows (what ``iuie.train`` does)
  iuie-unpacked   iuie on the unpacked rows (same work as torch: the engine-to-engine comparison)
  torch-unpacked  transformers ``T5ForConditionalGeneration`` + ``torch.optim.AdamW`` + ``loss.backward()``

All three see exactly the same examples, hence the same non-padding tokens per step (encoder inputs plus
decoder targets), which is what tokens/s counts; padding is work that does not count. ``ratio`` is the
iuie run's tokens/s over torch's. Timings exclude compilation and warm-up steps.

Configs: ``tiny`` (emb 128, 4 heads x 32, mlp 256, 2+2 layers) and ``small`` (Flan-T5-small dims: emb 512,
6 heads x 64, mlp 1024, 8+8 layers), both with the project's own vocabulary (889 pieces rounded up to 896)
instead of Flan-T5's 32128, to keep a CPU run short: the output layer of a 32k vocabulary would dominate the
small config. ``small`` uses fewer rows and steps by default for the same reason.

Run from the repository root (5-8 minutes on 2 shared CPU cores; shared cores make timings noisy)::

  PYTHONPATH=. .venv/bin/python bench/train_throughput.py
  PYTHONPATH=. .venv/bin/python bench/train_throughput.py --configs tiny --steps 5

Prints a table, then one JSON line per run.
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import statistics
import sys
import time

import numpy as np

REPO = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

INPUT_LEN = 256
TARGET_LEN = 64
LEARNING_RATE = 1e-4
# name -> (T5Config fields, packed rows per batch, timed steps). Rows/steps keep the whole run ~5 min on 2 cores.
CONFIGS = {
    "tiny": (
        dict(emb_dim=128, num_heads=4, head_dim=32, mlp_dim=256, num_encoder_layers=2, num_decoder_layers=2),
        16,
        5,
    ),
    "small": (
        dict(emb_dim=512, num_heads=6, head_dim=64, mlp_dim=1024, num_encoder_layers=8, num_decoder_layers=8),
        4,
        3,
    ),
}


def project_vocab_size() -> int:
    from iuie.pipeline import vocab

    return vocab.vocabulary_size()


def packed_batch(rows: int, seed: int = 0) -> dict[str, np.ndarray]:
    """``rows`` packed rows of the synthetic Mixture, as ``iuie.train`` builds them (seqio's converter)."""
    import seqio

    import seqio_tasks  # noqa: F401  (registers the Tasks and Mixtures)

    ds = seqio.get_dataset(
        "iuie_synthetic",
        {"inputs": INPUT_LEN, "targets": TARGET_LEN},
        dataset_split="train",
        shuffle=True,
        seed=seed,
        num_epochs=1,
        feature_converter=seqio.EncDecFeatureConverter(pack=True),
    )
    batch = next(ds.batch(rows, drop_remainder=True).as_numpy_iterator())
    return {k: np.asarray(v) for k, v in batch.items()}


def unpack(batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Every example of the packed rows in a row of its own, padded to the same lengths (seqio's unpacked
    layout: no segment ids or positions)."""
    examples = []
    for row in range(batch["encoder_input_tokens"].shape[0]):
        for segment in np.unique(batch["encoder_segment_ids"][row]):
            if segment == 0:
                continue
            enc = batch["encoder_segment_ids"][row] == segment
            dec = batch["decoder_segment_ids"][row] == segment
            examples.append(
                (
                    batch["encoder_input_tokens"][row][enc],
                    batch["decoder_target_tokens"][row][dec],
                    batch["decoder_input_tokens"][row][dec],
                    batch["decoder_loss_weights"][row][dec],
                )
            )
    n = len(examples)
    out = {
        "encoder_input_tokens": np.zeros((n, INPUT_LEN), np.int32),
        "decoder_target_tokens": np.zeros((n, TARGET_LEN), np.int32),
        "decoder_input_tokens": np.zeros((n, TARGET_LEN), np.int32),
        "decoder_loss_weights": np.zeros((n, TARGET_LEN), np.int32),
    }
    for i, (enc, tgt, dec_in, weights) in enumerate(examples):
        out["encoder_input_tokens"][i, : len(enc)] = enc
        out["decoder_target_tokens"][i, : len(tgt)] = tgt
        out["decoder_input_tokens"][i, : len(dec_in)] = dec_in
        out["decoder_loss_weights"][i, : len(weights)] = weights
    return out


def non_padding_tokens(batch: dict[str, np.ndarray]) -> int:
    return int(np.sum(batch["encoder_input_tokens"] != 0) + np.sum(batch["decoder_target_tokens"] != 0))


def timed(step, warmup: int, steps: int) -> list[float]:
    """Seconds of each of ``steps`` calls of ``step()`` after ``warmup`` untimed ones (``step`` blocks)."""
    for _ in range(warmup):
        step()
    seconds = []
    for _ in range(steps):
        start = time.perf_counter()
        step()
        seconds.append(time.perf_counter() - start)
    return seconds


def iuie_run(config, params, batch, warmup: int, steps: int) -> tuple[list[float], float, float]:
    """(step seconds, compile seconds, last loss) of iuie's train step (AdamW) on ``batch``."""
    import jax

    from iuie.model import models
    from iuie.training import configs, optimizers, partitioning, trainer

    model = models.EncoderDecoderModel(config=config)
    tx, schedule = optimizers.make_optimizer(
        configs.OptimizerConfig(name="adamw", schedule=configs.ScheduleConfig(learning_rate=LEARNING_RATE))
    )
    part = partitioning.Partitioner.create("data_parallel")
    shapes = {k: (1,) + v.shape[1:] for k, v in batch.items()}
    layout = trainer.abstract_state(lambda rng: model.get_initial_variables(rng, shapes)["params"], tx, part)
    state = trainer.state_from_params(params, tx, layout)
    step_fn = trainer.make_train_step(
        part, layout, batch, loss_fn=model.loss_fn, optimizer=tx, learning_rate_fn=schedule
    )
    device_batch = part.global_batch(batch)
    rng = jax.random.key(1)
    holder = {"state": state, "loss": None}

    def step():
        holder["state"], metrics = step_fn(holder["state"], device_batch, rng)
        holder["loss"] = float(jax.block_until_ready(metrics["loss"]))

    start = time.perf_counter()
    step()  # the first call compiles
    compile_s = time.perf_counter() - start
    seconds = timed(step, warmup, steps)
    return seconds, compile_s, holder["loss"]


def torch_run(config, params, batch, warmup: int, steps: int) -> tuple[list[float], float]:
    """(step seconds, last loss) of a plain PyTorch loop on ``batch`` with the same weights."""
    import torch

    from tests.model.hf_weights import build_hf_model

    model = build_hf_model(params, config).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=LEARNING_RATE, weight_decay=0.0)
    enc = torch.from_numpy(batch["encoder_input_tokens"].astype(np.int64))
    dec_in = torch.from_numpy(batch["decoder_input_tokens"].astype(np.int64))
    targets = torch.from_numpy(batch["decoder_target_tokens"].astype(np.int64))
    labels = targets.masked_fill(torch.from_numpy(batch["decoder_loss_weights"]) == 0, -100)
    inputs = dict(
        input_ids=enc,
        attention_mask=(enc != 0).long(),
        decoder_input_ids=dec_in,
        decoder_attention_mask=(targets != 0).long(),
        labels=labels,
    )
    holder = {"loss": None}

    def step():
        optimizer.zero_grad(set_to_none=True)
        loss = model(**inputs).loss
        loss.backward()
        optimizer.step()
        holder["loss"] = float(loss.detach())

    seconds = timed(step, warmup + 1, steps)  # +1: the first call allocates the AdamW moments
    return seconds, holder["loss"]


def run_config(name: str, rows: int | None, steps: int | None, warmup: int, threads: int) -> list[dict]:
    import flax.linen as nn
    import jax
    import torch

    from iuie.model.network import T5Config

    fields, default_rows, default_steps = CONFIGS[name]
    rows, steps = rows or default_rows, steps or default_steps
    config = T5Config(vocab_size=project_vocab_size(), dropout_rate=0.0, dtype="float32", **fields)
    packed = packed_batch(rows)
    unpacked = unpack(packed)
    tokens = non_padding_tokens(packed)
    assert tokens == non_padding_tokens(unpacked), "unpacking lost tokens"

    from iuie.model import models

    model = models.EncoderDecoderModel(config=config)
    shapes = {k: (1,) + v.shape[1:] for k, v in packed.items()}
    params = jax.device_get(
        jax.jit(lambda rng: nn.meta.unbox(model.get_initial_variables(rng, shapes)["params"]))(jax.random.key(0))
    )
    torch.set_num_threads(threads)

    results = []
    for framework, batch in (("iuie-packed", packed), ("iuie-unpacked", unpacked), ("torch-unpacked", unpacked)):
        compile_s = None
        if framework.startswith("iuie"):
            seconds, compile_s, loss = iuie_run(config, params, batch, warmup, steps)
        else:
            seconds, loss = torch_run(config, params, batch, warmup, steps)
        s_step = statistics.median(seconds)
        result = dict(
            config=name,
            framework=framework,
            rows=int(batch["encoder_input_tokens"].shape[0]),
            steps=steps,
            s_per_step=s_step,
            tokens_per_step=tokens,
            tokens_per_s=tokens / s_step,
            padding_share=1 - tokens / (batch["encoder_input_tokens"].size + batch["decoder_target_tokens"].size),
            compile_s=compile_s,
            last_loss=loss,
            vocab_size=config.vocab_size,
            threads=threads,
        )
        results.append(result)
        print(f"# {name} {framework}: {s_step:.3f} s/step", file=sys.stderr, flush=True)
    torch_tps = results[-1]["tokens_per_s"]
    for result in results:
        result["ratio_vs_torch"] = result["tokens_per_s"] / torch_tps
    return results


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--configs", default="tiny,small", help="comma-separated: tiny, small")
    parser.add_argument("--rows", type=int, default=None, help="packed rows per batch (default per config)")
    parser.add_argument("--steps", type=int, default=None, help="timed steps (default per config)")
    parser.add_argument("--warmup", type=int, default=1, help="untimed steps after compilation")
    parser.add_argument("--threads", type=int, default=os.cpu_count(), help="torch.set_num_threads")
    args = parser.parse_args(argv)

    load = os.getloadavg()
    results = []
    for name in args.configs.split(","):
        results.extend(run_config(name, args.rows, args.steps, args.warmup, args.threads))
    print(
        f"\nload average at start: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}; now: "
        + " ".join(f"{x:.2f}" for x in os.getloadavg())
        + f"; cpus: {os.cpu_count()}"
    )
    header = (
        f"{'config':6} {'framework':15} {'rows':>4} {'steps':>5} {'s/step':>8} {'tokens/s':>9} "
        f"{'padding':>7} {'ratio iuie/torch':>16}"
    )
    print(header)
    print("-" * len(header))
    for r in results:
        ratio = "" if r["framework"].startswith("torch") else f"{r['ratio_vs_torch']:.2f}"
        print(
            f"{r['config']:6} {r['framework']:15} {r['rows']:>4} {r['steps']:>5} {r['s_per_step']:>8.3f} "
            f"{r['tokens_per_s']:>9.0f} {r['padding_share']:>7.0%} {ratio:>16}"
        )
    print()
    for r in results:
        print(json.dumps({**r, "load_average": load}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
