"""CPU training throughput: iuie's jit-compiled train step against a plain transformers PyTorch loop.

Both sides train the same network (T5 v1.1 / Flan-T5 architecture: gated GELU, untied output layer, relative
position buckets), from the same random weights (copied into transformers with the test-only mapping
``tests/model/hf_weights.py``), on the same examples, with AdamW (lr 1e-4, no weight decay), float32, dropout
off on both sides (so neither pays for dropout masks the other does not draw).

Data and the fairness choice (option (i) of issue 5): one batch of ``--rows`` rows is built once from the
synthetic corpus (seqio Mixture ``iuie_synthetic``, ``EncDecFeatureConverter(pack=True)``, inputs 256 /
targets 64). transformers' T5 has no segment ids, so it cannot train on packed rows; each packed row is
therefore unpacked back into its separate examples, each padded to the same lengths (256 / 64). Four sides:

  iuie-unpacked   iuie on the unpacked rows (same work as torch: the engine-to-engine comparison)
  torch-eager     transformers ``T5ForConditionalGeneration`` + ``torch.optim.AdamW`` + ``loss.backward()``
  iuie-packed     iuie on the packed rows (what ``iuie.train`` does)
  torch-compile   torch-eager with the model under ``torch.compile``

All sides see exactly the same examples, hence the same non-padding tokens per step (encoder inputs plus
decoder targets), which is what tokens/s counts; padding is work that does not count. The engine ratio is
iuie-unpacked against torch-eager (the same work); iuie-packed is a separate line (what packing saves), and
torch-compile (``torch.compile`` of the forward pass, inductor) is PyTorch's best effort.

Fairness on a shared CPU (``bench/fair_timing.py``): both engines run in one process confined to the same
cores (``--threads``, default all allowed), torch with that many intra-op threads and one inter-op thread,
XLA's CPU pool on the same cores; after the first call (compilation) and ``--warmup`` untimed steps, the sides
are timed interleaved, one step each per round with the order alternating (A B, B A, ...), ``--steps``
rounds (default 20); min and median per side, and the load average before and after the timed rounds.
Losses are printed per target token on every side (iuie's loss is a token sum, divided here by the loss
weights; transformers' is already a mean), for the first step from the shared initial weights: they must agree.

What the cores allow (``fair_timing.matmul_ceiling``): each side's model FLOPs per second (``iuie.model.flops``
of the rows it trains, padding included, so the same for both unpacked sides) is printed beside the best
float32 GFLOP/s of a 2048 x 2048 matmul on the same cores; that rate over torch-eager's is the largest
speed-up over eager PyTorch any engine could show on this machine (``ceiling x eager``).

Run from the repository root (about 10 minutes on 2 shared CPU cores)::

  PYTHONPATH=. .venv/bin/python bench/train_throughput.py
  PYTHONPATH=. .venv/bin/python bench/train_throughput.py --configs small --threads 2

Prints a table, then one JSON line per run.
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import sys
import time
from collections.abc import Callable

import numpy as np

REPO = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import fair_timing  # noqa: E402  (bench/, beside this script)

INPUT_LEN = 256
TARGET_LEN = 64
LEARNING_RATE = 1e-4
# name -> (T5Config fields, packed rows per batch).
CONFIGS = {
    "tiny": (
        dict(emb_dim=128, num_heads=4, head_dim=32, mlp_dim=256, num_encoder_layers=2, num_decoder_layers=2),
        16,
    ),
    "small": (
        dict(emb_dim=512, num_heads=6, head_dim=64, mlp_dim=1024, num_encoder_layers=8, num_decoder_layers=8),
        4,
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


def loss_weight_sum(batch: dict[str, np.ndarray]) -> float:
    return float(np.sum(batch["decoder_loss_weights"]))


def iuie_side(config, params, batch) -> tuple[Callable[[], None], dict]:
    """iuie's jit-compiled train step (AdamW) on ``batch``: ``(step, info)``; ``step()`` blocks until done;
    ``info`` records the compile time and the losses, per target token (iuie's loss is a token sum)."""
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
    weights = loss_weight_sum(batch)
    info = {"losses": []}
    holder = {"state": state}

    def step():
        holder["state"], metrics = step_fn(holder["state"], device_batch, rng)
        info["losses"].append(float(jax.block_until_ready(metrics["loss"])) / weights)

    start = time.perf_counter()
    step()  # the first call compiles
    info["compile_s"] = time.perf_counter() - start
    return step, info


def torch_side(config, params, batch, compiled: bool) -> tuple[Callable[[], None], dict]:
    """A plain PyTorch loop (transformers T5, AdamW, ``loss.backward()``) on ``batch`` with the same weights;
    with ``compiled`` the forward pass is ``torch.compile``d (inductor). The loss is transformers' mean over
    target tokens."""
    import torch

    from tests.model.hf_weights import build_hf_model

    model = build_hf_model(params, config).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=LEARNING_RATE, weight_decay=0.0)
    forward = torch.compile(model) if compiled else model
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
    info = {"losses": []}

    def step():
        optimizer.zero_grad(set_to_none=True)
        loss = forward(**inputs).loss
        loss.backward()
        optimizer.step()
        info["losses"].append(float(loss.detach()))

    start = time.perf_counter()
    step()  # allocates the AdamW moments; with torch.compile, compiles
    info["compile_s"] = time.perf_counter() - start
    return step, info


def run_config(name: str, rows: int | None, steps: int, warmup: int, threads: int, torch_compile: bool) -> list[dict]:
    import flax.linen as nn
    import jax

    from iuie.model import flops, models
    from iuie.model.network import T5Config

    fields, default_rows = CONFIGS[name]
    rows = rows or default_rows
    config = T5Config(vocab_size=project_vocab_size(), dropout_rate=0.0, dtype="float32", **fields)
    packed = packed_batch(rows)
    unpacked = unpack(packed)
    tokens = non_padding_tokens(packed)
    assert tokens == non_padding_tokens(unpacked), "unpacking lost tokens"

    model = models.EncoderDecoderModel(config=config)
    shapes = {k: (1,) + v.shape[1:] for k, v in packed.items()}
    params = jax.device_get(
        jax.jit(lambda rng: nn.meta.unbox(model.get_initial_variables(rng, shapes)["params"]))(jax.random.key(0))
    )

    sides, infos, batches = {}, {}, {}
    plan = [("iuie-unpacked", unpacked), ("torch-eager", unpacked), ("iuie-packed", packed)]
    if torch_compile:
        plan.append(("torch-compile", unpacked))
    for framework, batch in plan:
        if framework.startswith("iuie"):
            step, info = iuie_side(config, params, batch)
        else:
            step, info = torch_side(config, params, batch, compiled=framework == "torch-compile")
        for _ in range(warmup):
            step()
        sides[framework], infos[framework], batches[framework] = step, info, batch
        print(f"# {name} {framework}: ready (first call {info['compile_s']:.1f} s)", file=sys.stderr, flush=True)

    load_before = fair_timing.load_average()
    times = fair_timing.interleaved(sides, steps)
    load_after = fair_timing.load_average()
    results = []
    for framework, seconds in times.items():
        stats = fair_timing.summary(seconds)
        batch, info = batches[framework], infos[framework]
        results.append(
            dict(
                config=name,
                framework=framework,
                rows=int(batch["encoder_input_tokens"].shape[0]),
                steps=steps,
                min_s_per_step=stats["min_s"],
                median_s_per_step=stats["median_s"],
                tokens_per_step=tokens,
                tokens_per_s_median=tokens / stats["median_s"],
                padding_share=1 - tokens / (batch["encoder_input_tokens"].size + batch["decoder_target_tokens"].size),
                first_call_s=info["compile_s"],
                first_loss_per_token=info["losses"][0],
                last_loss_per_token=info["losses"][-1],
                vocab_size=config.vocab_size,
                threads=threads,
                load_average_before=load_before,
                load_average_after=load_after,
            )
        )
    eager = next(r for r in results if r["framework"] == "torch-eager")
    for result in results:
        result["speedup_vs_torch_eager_median"] = eager["median_s_per_step"] / result["median_s_per_step"]
        result["speedup_vs_torch_eager_min"] = eager["min_s_per_step"] / result["min_s_per_step"]
        work = flops.train_step_flops(config, result["rows"], INPUT_LEN, TARGET_LEN)
        result["model_gflops_per_step"] = work / 1e9
        result["model_gflops_per_s_median"] = work / 1e9 / result["median_s_per_step"]
    return results


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--configs", default="tiny,small", help="comma-separated: tiny, small")
    parser.add_argument("--rows", type=int, default=None, help="packed rows per batch (default per config)")
    parser.add_argument("--steps", type=int, default=20, help="timed steps per side, interleaved (default 20)")
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps per side after the first call")
    parser.add_argument("--threads", type=int, default=None, help="cores for both engines (default: all allowed)")
    parser.add_argument("--no-torch-compile", action="store_true", help="skip the torch.compile side")
    args = parser.parse_args(argv)
    threads = fair_timing.pin_threads(args.threads)  # before jax and torch start their thread pools
    fair_timing.torch_threads(threads)

    results = []
    for name in args.configs.split(","):
        results.extend(run_config(name, args.rows, args.steps, args.warmup, threads, not args.no_torch_compile))
    ceiling = fair_timing.matmul_ceiling()
    for r in results:
        r["matmul_ceiling_gflops"] = ceiling["best_gflops"]
        r["share_of_ceiling"] = r["model_gflops_per_s_median"] / ceiling["best_gflops"]
    print(f"\n{threads} threads for both engines; cpus: {os.cpu_count()}; sides interleaved, {args.steps} steps each")
    header = (
        f"{'config':6} {'framework':14} {'rows':>4} {'min s':>7} {'med s':>7} {'tok/s med':>9} {'padding':>7} "
        f"{'x eager (med)':>13} {'x eager (min)':>13} {'GFLOP/s':>7} {'ceiling':>7} {'loss/tok 1st':>12} "
        f"{'load avg before -> after':>26}"
    )
    print(header)
    print("-" * len(header))
    for r in results:
        load = f"{r['load_average_before'][0]:.1f} -> {r['load_average_after'][0]:.1f}"
        print(
            f"{r['config']:6} {r['framework']:14} {r['rows']:>4} {r['min_s_per_step']:>7.3f} "
            f"{r['median_s_per_step']:>7.3f} {r['tokens_per_s_median']:>9.0f} {r['padding_share']:>7.0%} "
            f"{r['speedup_vs_torch_eager_median']:>13.2f} {r['speedup_vs_torch_eager_min']:>13.2f} "
            f"{r['model_gflops_per_s_median']:>7.1f} {r['share_of_ceiling']:>7.0%} "
            f"{r['first_loss_per_token']:>12.4f} {load:>26}"
        )
    print(
        f"\nfloat32 matmul ceiling of these cores ({ceiling['n']}^2): XLA {ceiling['xla_gflops']:.1f}, torch "
        f"{ceiling['torch_gflops']:.1f} GFLOP/s; 'ceiling' is a side's model GFLOP/s over the better of them"
    )
    for r in results:
        if r["framework"] == "torch-eager":
            bound = ceiling["best_gflops"] / r["model_gflops_per_s_median"]
            print(f"{r['config']}: no engine can beat eager PyTorch by more than {bound:.2f}x on these cores")
    print()
    for r in results:
        print(json.dumps(r))
    return 0


if __name__ == "__main__":
    sys.exit(main())
