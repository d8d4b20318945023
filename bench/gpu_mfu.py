"""One-GPU speed of iuie: train-step MFU of Flan-T5 base / large / xl and greedy decode throughput.

Written for a lent H100 (driven by ``bench/gpu.sh``, which runs each part in its own process under ``timeout``
so that one slow or failing size cannot eat the others' time). Each part prints one JSON line starting with
``RESULT `` as soon as it is done; ``table`` turns the collected lines into a table.

What is measured, and why so:

* ``train --size base|large|xl``: random weights (speed does not depend on the values), Flan-T5 dims with
  its 32128-row vocabulary, bfloat16 activations and float32 parameters (``T5Config`` defaults, as Flan-T5
  fine-tuning runs), dropout 0.1, Adafactor (``OptimizerConfig()`` defaults: T5X's Flan setup), one device,
  preset ``data_parallel``. Batches are packed rows of (512 inputs, 128 targets), every position filled with
  four examples per row (segment ids and positions as seqio's packing makes them): the FLOP count
  (``iuie.model.flops.train_step_flops``) then equals the useful work, and tokens/s counts every position. Real
  data leaves some padding in packed rows, so real tokens/s is lower by that share at the same step time.
  Batch sizes fit 80 GB: base 64 and large 32 without rematerialisation, xl 16 with ``remat_policy='full'``
  (2.85 B float32 parameters + gradients alone are 23 GB); on an out-of-memory error the part retries at
  half the batch and says so. The step count is capped by a per-part time budget (``--budget-s``).
  MFU = FLOPs per step / step time / the device's dense bf16 peak (``iuie.model.flops.PEAK_FLOPS_PER_DEVICE``:
  989 TFLOP/s for an SXM H100); it is ``null`` on a CPU.
* ``decode --size base``: greedy decoding (``EncoderDecoderModel.predict_batch``, KV cache) of a batch of 64
  random 512-token inputs, 64 new tokens; sentences/s and generated tokens/s (tokens up to and including
  EOS, which random weights rarely emit before the end).

``--smoke`` swaps in tiny dims (and a small batch and 2 steps), so the script can be checked on a CPU.

  python bench/gpu_mfu.py train --size base [--batch 64] [--remat none] [--steps 20] [--budget-s 40]
  python bench/gpu_mfu.py decode --size base [--batch 64]
  python bench/gpu_mfu.py table results.jsonl
"""

from __future__ import annotations

import argparse
import gc
import json
import pathlib
import statistics
import sys
import time

import numpy as np

REPO = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

INPUT_LEN = 512
TARGET_LEN = 128
DECODE_NEW = 64
SEGMENTS_PER_ROW = 4
# Flan-T5 dims (the published configs); vocabulary 32128 for all.
SIZES = {
    "base": dict(emb_dim=768, num_heads=12, head_dim=64, mlp_dim=2048, num_encoder_layers=12, num_decoder_layers=12),
    "large": dict(emb_dim=1024, num_heads=16, head_dim=64, mlp_dim=2816, num_encoder_layers=24, num_decoder_layers=24),
    "xl": dict(emb_dim=2048, num_heads=32, head_dim=64, mlp_dim=5120, num_encoder_layers=24, num_decoder_layers=24),
    "tiny": dict(emb_dim=64, num_heads=4, head_dim=16, mlp_dim=128, num_encoder_layers=2, num_decoder_layers=2),
}
# Per size: (batch rows, remat policy) chosen to fit an 80 GB H100 (see the module docstring).
TRAIN_DEFAULTS = {"base": (64, "none"), "large": (32, "none"), "xl": (16, "full"), "tiny": (2, "none")}


def log(message: str) -> None:
    print(f"# {message}", file=sys.stderr, flush=True)


def make_config(size: str, remat: str = "none", dropout: float = 0.1):
    from iuie.model.network import T5Config

    vocab = 256 if size == "tiny" else 32128
    return T5Config(
        vocab_size=vocab,
        dropout_rate=dropout,
        dtype="bfloat16",
        param_dtype="float32",
        remat_policy=remat,
        **SIZES[size],
    )


def packed_batch(rows: int, vocab: int, seed: int = 0) -> dict[str, np.ndarray]:
    """Fully packed rows: ``SEGMENTS_PER_ROW`` examples per row, every position a token."""
    rng = np.random.default_rng(seed)
    out = {}
    for side, length in (("encoder", INPUT_LEN), ("decoder", TARGET_LEN)):
        seg = np.zeros((rows, length), np.int32)
        pos = np.zeros((rows, length), np.int32)
        for r in range(rows):
            cuts = np.sort(rng.choice(np.arange(1, length), SEGMENTS_PER_ROW - 1, replace=False))
            for s, (a, b) in enumerate(zip(np.r_[0, cuts], np.r_[cuts, length]), start=1):
                seg[r, a:b] = s
                pos[r, a:b] = np.arange(b - a)
        out[f"{side}_segment_ids"], out[f"{side}_positions"] = seg, pos
    out["encoder_input_tokens"] = rng.integers(2, vocab, (rows, INPUT_LEN)).astype(np.int32)
    targets = rng.integers(2, vocab, (rows, TARGET_LEN)).astype(np.int32)
    out["decoder_target_tokens"] = targets
    # Each example's decoder input is its targets shifted right, starting from 0 at position 0.
    shifted = np.concatenate([np.zeros((rows, 1), np.int32), targets[:, :-1]], axis=1)
    out["decoder_input_tokens"] = np.where(out["decoder_positions"] == 0, 0, shifted).astype(np.int32)
    out["decoder_loss_weights"] = np.ones((rows, TARGET_LEN), np.int32)
    return out


def is_oom(error: BaseException) -> bool:
    text = str(error)
    return "RESOURCE_EXHAUSTED" in text or "Out of memory" in text or "out of memory" in text


def train_once(size: str, batch_size: int, remat: str, steps: int, budget_s: float) -> dict:
    import jax

    from iuie.model import flops, models
    from iuie.training import configs, optimizers, partitioning, trainer

    config = make_config(size, remat)
    model = models.EncoderDecoderModel(config=config)
    tx, schedule = optimizers.make_optimizer(configs.OptimizerConfig())  # Adafactor, T5X Flan defaults
    part = partitioning.Partitioner.create("data_parallel")
    batch = packed_batch(batch_size, config.vocab_size)
    shapes = {k: (1,) + v.shape[1:] for k, v in batch.items()}

    def init_params_fn(rng):
        return model.get_initial_variables(rng, shapes)["params"]

    start = time.perf_counter()
    layout = trainer.abstract_state(init_params_fn, tx, part)
    state = trainer.init_state(init_params_fn, tx, layout, jax.random.key(0))
    jax.block_until_ready(state)
    init_s = time.perf_counter() - start
    step_fn = trainer.make_train_step(
        part, layout, batch, loss_fn=model.loss_fn, optimizer=tx, learning_rate_fn=schedule
    )
    device_batch = part.global_batch(batch)
    rng = jax.random.key(1)

    start = time.perf_counter()
    state, metrics = step_fn(state, device_batch, rng)  # compiles
    jax.block_until_ready(metrics["loss"])
    compile_s = time.perf_counter() - start
    log(f"{size}: batch {batch_size}, remat {remat}: init {init_s:.1f} s, compile + first step {compile_s:.1f} s")

    start = time.perf_counter()
    state, metrics = step_fn(state, device_batch, rng)  # warm-up, and a first step-time estimate
    jax.block_until_ready(metrics["loss"])
    estimate = time.perf_counter() - start
    n = int(max(2, min(steps, budget_s // max(estimate, 1e-6))))
    start = time.perf_counter()
    for _ in range(n):  # dispatched back to back; one sync at the end
        state, metrics = step_fn(state, device_batch, rng)
    loss = float(jax.block_until_ready(metrics["loss"]))
    seconds = (time.perf_counter() - start) / n

    flops_per_step = flops.train_step_flops(config, batch_size, INPUT_LEN, TARGET_LEN)
    device = jax.devices()[0]
    mfu = flops.mfu(flops_per_step, seconds, [device])
    params = sum(x.size for x in jax.tree.leaves(state.params))
    memory = None
    try:
        stats = device.memory_stats() or {}
        memory = stats.get("peak_bytes_in_use")
    except Exception:  # CPUs have no memory stats
        pass
    tokens = batch_size * (INPUT_LEN + TARGET_LEN)
    return dict(
        part="train",
        size=size,
        batch=batch_size,
        remat=remat,
        steps=n,
        s_per_step=seconds,
        tokens_per_s=tokens / seconds,
        tflops_per_s=flops_per_step / seconds / 1e12,
        mfu=mfu,
        peak_tflops=(flops.peak_flops(device) or 0) / 1e12 or None,
        compile_s=compile_s,
        init_s=init_s,
        params=int(params),
        loss=loss,
        peak_bytes=memory,
        device=str(device.device_kind),
    )


def train(args) -> dict:
    batch, remat = TRAIN_DEFAULTS[args.size]
    batch = args.batch or batch
    remat = args.remat or remat
    while True:
        try:
            result = train_once(args.size, batch, remat, args.steps, args.budget_s)
            result["requested_batch"] = args.batch or TRAIN_DEFAULTS[args.size][0]
            return result
        except Exception as e:  # noqa: BLE001 (XLA raises its own error types)
            if not is_oom(e) or batch <= 1:
                raise
            log(f"{args.size}: out of memory at batch {batch}, retrying at {batch // 2}")
            batch //= 2
            gc.collect()


def decode(args) -> dict:
    import functools

    import flax.linen as nn
    import jax
    import jax.numpy as jnp

    from iuie.model import models

    config = make_config(args.size, dropout=0.0)
    model = models.EncoderDecoderModel(config=config)
    batch_size = args.batch or 64
    rng = np.random.default_rng(0)
    batch = {
        "encoder_input_tokens": jnp.asarray(rng.integers(2, config.vocab_size, (batch_size, INPUT_LEN)), jnp.int32),
        "decoder_input_tokens": jnp.zeros((batch_size, DECODE_NEW), jnp.int32),
        "decoder_target_tokens": jnp.ones((batch_size, DECODE_NEW), jnp.int32),
    }
    shapes = {k: (1,) + tuple(v.shape[1:]) for k, v in batch.items()}
    params = jax.jit(lambda r: nn.meta.unbox(model.get_initial_variables(r, shapes)["params"]))(jax.random.key(0))
    predict = jax.jit(functools.partial(model.predict_batch, method="greedy"))
    start = time.perf_counter()
    compiled = predict.lower(params, batch).compile()
    compile_s = time.perf_counter() - start
    out = np.asarray(compiled(params, batch))  # warm-up
    times = []
    for _ in range(args.repeats):
        start = time.perf_counter()
        jax.block_until_ready(compiled(params, batch))
        times.append(time.perf_counter() - start)
    seconds = statistics.median(times)
    eos = out == 1
    ended_before = np.cumsum(eos, axis=1) - eos > 0
    generated = int(np.sum((out != 0) & ~ended_before))
    return dict(
        part="decode",
        size=args.size,
        batch=batch_size,
        input_len=INPUT_LEN,
        new_tokens=DECODE_NEW,
        s_per_batch=seconds,
        sentences_per_s=batch_size / seconds,
        tokens_per_s=generated / seconds,
        generated_tokens=generated,
        compile_s=compile_s,
        repeats=args.repeats,
        device=str(jax.devices()[0].device_kind),
    )


def fmt(value, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def table(path: str) -> None:
    rows = []
    for line in open(path, encoding="utf-8"):
        if line.startswith("RESULT "):
            rows.append(json.loads(line[len("RESULT ") :]))
        elif line.startswith("FAILED "):
            rows.append({"part": "failed", "what": line[len("FAILED ") :].strip()})
    print(
        f"{'part':6} {'size':5} {'batch':>5} {'remat':5} {'steps':>5} {'s/step':>8} {'tokens/s':>10} "
        f"{'TFLOP/s':>8} {'MFU':>6} {'compile s':>9}  device"
    )
    for r in rows:
        if r["part"] == "train":
            print(
                f"train  {r['size']:5} {r['batch']:>5} {r['remat']:5} {r['steps']:>5} {r['s_per_step']:>8.4f} "
                f"{r['tokens_per_s']:>10.0f} {r['tflops_per_s']:>8.2f} {fmt(r['mfu'], '6.1%')} "
                f"{r['compile_s']:>9.1f}  {r['device']}"
            )
        elif r["part"] == "decode":
            print(
                f"decode {r['size']:5} {r['batch']:>5} {'':5} {r['repeats']:>5} {r['s_per_batch']:>8.4f} "
                f"{r['tokens_per_s']:>10.0f} {'':>8} {'':>6} {r['compile_s']:>9.1f}  {r['device']}  "
                f"({r['sentences_per_s']:.1f} sentences/s, {r['new_tokens']} new tokens, "
                f"{r['input_len']} input)"
            )
        else:
            print(f"FAILED {r['what']}")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("part", choices=("train", "decode", "table"))
    parser.add_argument("path", nargs="?", help="for table: the collected output")
    parser.add_argument("--size", default="base", choices=tuple(SIZES))
    parser.add_argument("--batch", type=int, default=None)
    parser.add_argument("--remat", default=None, choices=("none", "full", "dots", "dots_with_no_batch_dims"))
    parser.add_argument("--steps", type=int, default=20, help="most timed train steps")
    parser.add_argument("--budget-s", type=float, default=40.0, help="time budget of the timed train steps")
    parser.add_argument("--repeats", type=int, default=3, help="timed decode batches")
    args = parser.parse_args(argv)
    if args.part == "table":
        table(args.path)
        return 0
    result = train(args) if args.part == "train" else decode(args)
    print("RESULT " + json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
