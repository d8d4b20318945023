"""Greedy decoding speed: iuie (jit-compiled JAX) against transformers' PyTorch ``generate`` on the same weights.

For a tiny and a Flan-T5-small-shaped network (random weights, a 2048-token vocabulary to stay CPU-friendly,
float32 on both sides), batch sizes 1 and 32, inputs of 32 tokens and up to 32 new tokens, it prints a table and
one JSON line per setting: sentences/s and generated tokens/s for each side, their ratio (iuie / HF), and iuie's
compile time, which the figures exclude. Batch 1 is reported as per-call overhead (milliseconds per decode
call: what a single short request waits), batch 32 as throughput. The two sides decode the same tokens (greedy
parity is a test in ``tests/model/test_models.py``); the script checks that too.

Fairness on a shared CPU (``bench/fair_timing.py``): both engines in one process on the same cores
(``--threads``), torch with that many intra-op threads; after a warm-up call per side, ``--repeats`` calls per
side (default 20) interleaved with alternating order; median and min, and the load average around them.

What the cores allow: at batch 32 each side's model FLOPs per second (``iuie.model.flops`` of the encoder over
the inputs and the decoder over the new tokens: what a KV-cached decode computes) is printed beside the best
float32 GFLOP/s of a 2048 x 2048 matmul on the same cores (``fair_timing.matmul_ceiling``); that rate over
transformers' is the largest speed-up any engine could show over ``generate`` on this machine.

Run from the repository root::

  .venv/bin/python bench/decode_speed.py            # ~5-10 minutes on 2 shared CPU cores
  .venv/bin/python bench/decode_speed.py --quick    # tiny config only
"""

from __future__ import annotations

import argparse
import functools
import json
import pathlib
import sys
import time

import numpy as np

REPO = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import fair_timing  # noqa: E402  (bench/, beside this script)

# Both engines on the same cores: the affinity must be set before jax and torch start their thread pools.
if "--threads" in sys.argv:
    fair_timing.pin_threads(int(sys.argv[sys.argv.index("--threads") + 1]))

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import torch  # noqa: E402

from iuie.model import flops  # noqa: E402
from iuie.model.models import EncoderDecoderModel  # noqa: E402
from iuie.model.network import T5Config  # noqa: E402

# The test-only HF weight mapping of the parity tests; replace with iuie.interop's converter when convenient.
from tests.model.conftest import random_params  # noqa: E402
from tests.model.hf_weights import build_hf_model  # noqa: E402

VOCAB = 2048
INPUT_LEN = 32
MAX_NEW = 32
CONFIGS = {
    "tiny": T5Config(
        vocab_size=VOCAB,
        emb_dim=64,
        num_heads=4,
        head_dim=16,
        mlp_dim=128,
        num_encoder_layers=2,
        num_decoder_layers=2,
        dropout_rate=0.0,
        dtype="float32",
    ),
    "small": T5Config(
        vocab_size=VOCAB,
        emb_dim=512,
        num_heads=6,
        head_dim=64,
        mlp_dim=1024,
        num_encoder_layers=8,
        num_decoder_layers=8,
        dropout_rate=0.0,
        dtype="float32",
    ),
}
# Batch 1 measures the per-call overhead (the latency of one short decode), batch 32 the throughput.
SETTINGS = (("tiny", 1), ("tiny", 32), ("small", 1), ("small", 32))


def generated_tokens(seqs: np.ndarray) -> int:
    """Tokens produced per row up to and including EOS (the rest is padding)."""
    seqs = np.asarray(seqs)
    eos = seqs == 1
    ended_before = np.cumsum(eos, axis=1) - eos > 0
    return int(np.sum((seqs != 0) & ~ended_before))


def bench_setting(name: str, batch_size: int, repeats: int) -> dict:
    cfg = CONFIGS[name]
    rng = np.random.default_rng(0)
    inputs = rng.integers(2, VOCAB, (batch_size, INPUT_LEN)).astype(np.int32)
    batch = {
        "encoder_input_tokens": inputs,
        "decoder_input_tokens": np.zeros((batch_size, MAX_NEW), np.int32),
        "decoder_target_tokens": np.ones((batch_size, MAX_NEW), np.int32),
    }
    model = EncoderDecoderModel(config=cfg)
    params = random_params(model.module, batch)
    jax_batch = {k: jnp.asarray(v) for k, v in batch.items()}

    # iuie: compile ahead of time, then call the compiled executable alone.
    predict = jax.jit(functools.partial(model.predict_batch, method="greedy"))
    start = time.perf_counter()
    compiled = predict.lower(params, jax_batch).compile()
    compile_s = time.perf_counter() - start
    ours = np.asarray(compiled(params, jax_batch))  # warm-up

    # transformers: same weights, eager PyTorch generate with its KV cache.
    hf = build_hf_model(params, cfg)
    input_ids = torch.tensor(inputs, dtype=torch.long)
    mask = torch.ones_like(input_ids)

    def generate():
        with torch.no_grad():
            return hf.generate(
                input_ids=input_ids,
                attention_mask=mask,
                do_sample=False,
                num_beams=1,
                max_new_tokens=MAX_NEW,
                decoder_start_token_id=0,
            )

    theirs = generate().numpy()[:, 1:]  # warm-up
    load_before = fair_timing.load_average()
    times = fair_timing.interleaved(
        {"iuie": lambda: jax.block_until_ready(compiled(params, jax_batch)), "hf": generate}, repeats
    )
    load_after = fair_timing.load_average()
    iuie, hf_stats = fair_timing.summary(times["iuie"]), fair_timing.summary(times["hf"])
    iuie_s, hf_s = iuie["median_s"], hf_stats["median_s"]

    theirs = np.pad(theirs, ((0, 0), (0, MAX_NEW - theirs.shape[1])))
    tokens = generated_tokens(ours)
    work = flops.count_flops(cfg, batch_size, INPUT_LEN, MAX_NEW)
    gflop = (work.encoder + work.decoder + work.logits) / 1e9
    return {
        "config": name,
        "batch": batch_size,
        "input_len": INPUT_LEN,
        "max_new_tokens": MAX_NEW,
        "vocab": VOCAB,
        "generated_tokens": tokens,
        "same_tokens": bool(np.array_equal(ours, np.where(np.cumsum(np.cumsum(theirs == 1, 1), 1) > 1, 0, theirs))),
        "measure": "per-call overhead" if batch_size == 1 else "throughput",
        "iuie_compile_s": round(compile_s, 3),
        "iuie_s": round(iuie_s, 5),
        "hf_s": round(hf_s, 5),
        "iuie_min_s": round(iuie["min_s"], 5),
        "hf_min_s": round(hf_stats["min_s"], 5),
        "iuie_ms_per_call": round(1000 * iuie_s, 2),
        "hf_ms_per_call": round(1000 * hf_s, 2),
        "speedup_iuie_over_hf_min": round(hf_stats["min_s"] / iuie["min_s"], 2),
        "load_average_before": load_before,
        "load_average_after": load_after,
        "iuie_sentences_per_s": round(batch_size / iuie_s, 2),
        "hf_sentences_per_s": round(batch_size / hf_s, 2),
        "iuie_tokens_per_s": round(tokens / iuie_s, 1),
        "hf_tokens_per_s": round(generated_tokens(theirs) / hf_s, 1),
        "speedup_iuie_over_hf": round(hf_s / iuie_s, 2),
        "model_gflops_per_call": round(gflop, 3),
        "iuie_gflops_per_s": round(gflop / iuie_s, 1),
        "hf_gflops_per_s": round(gflop / hf_s, 1),
        "repeats": repeats,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny config only")
    parser.add_argument("--repeats", type=int, default=20, help="timed calls per side, interleaved (default 20)")
    parser.add_argument("--threads", type=int, default=None, help="cores for both engines (default: all allowed)")
    args = parser.parse_args()
    threads = fair_timing.pin_threads(args.threads)
    fair_timing.torch_threads(threads)
    settings = [k for k in SETTINGS if not args.quick or k[0] == "tiny"]
    print(
        f"# jax {jax.__version__} on {jax.devices()[0].platform}, torch {torch.__version__} "
        f"({torch.get_num_threads()} threads, {threads} cores for both); greedy, float32, inputs {INPUT_LEN}, "
        f"up to {MAX_NEW} new tokens; {args.repeats} interleaved calls per side"
    )
    results = []
    for name, batch_size in settings:
        results.append(bench_setting(name, batch_size, args.repeats))
        print(json.dumps(results[-1]), flush=True)

    print("\nbatch 1: per-call overhead (ms per decode call, median / min)")
    header = (
        f"{'config':<7}{'iuie ms':>10}{'HF ms':>10}{'iuie min':>10}{'HF min':>10}{'HF/iuie':>9}{'same':>6}  load avg"
    )
    print(header)
    print("-" * len(header))
    for r in (r for r in results if r["batch"] == 1):
        print(
            f"{r['config']:<7}{r['iuie_ms_per_call']:>10.1f}{r['hf_ms_per_call']:>10.1f}"
            f"{1000 * r['iuie_min_s']:>10.1f}{1000 * r['hf_min_s']:>10.1f}{r['speedup_iuie_over_hf']:>8.2f}x"
            f"{str(r['same_tokens']):>6}  {r['load_average_before'][0]:.1f} -> {r['load_average_after'][0]:.1f}"
        )
    print("\nbatch 32: throughput (median; x from medians, and from minima)")
    header = (
        f"{'config':<7}{'tokens':>8}{'iuie sent/s':>13}{'HF sent/s':>11}{'iuie tok/s':>12}{'HF tok/s':>10}"
        f"{'iuie/HF':>9}{'(min)':>7}{'compile s':>11}{'same':>6}  load avg"
    )
    print(header)
    print("-" * len(header))
    for r in (r for r in results if r["batch"] > 1):
        print(
            f"{r['config']:<7}{r['generated_tokens']:>8}{r['iuie_sentences_per_s']:>13.2f}"
            f"{r['hf_sentences_per_s']:>11.2f}{r['iuie_tokens_per_s']:>12.1f}{r['hf_tokens_per_s']:>10.1f}"
            f"{r['speedup_iuie_over_hf']:>8.2f}x{r['speedup_iuie_over_hf_min']:>6.2f}x{r['iuie_compile_s']:>11.2f}"
            f"{str(r['same_tokens']):>6}  {r['load_average_before'][0]:.1f} -> {r['load_average_after'][0]:.1f}"
        )
    ceiling = fair_timing.matmul_ceiling()
    print(
        f"\nwhat the cores allow: float32 matmul ceiling ({ceiling['n']}^2) XLA {ceiling['xla_gflops']:.1f}, "
        f"torch {ceiling['torch_gflops']:.1f} GFLOP/s"
    )
    for r in (r for r in results if r["batch"] > 1):
        print(
            f"{r['config']} batch {r['batch']}: model GFLOP/s iuie {r['iuie_gflops_per_s']:.1f} "
            f"({r['iuie_gflops_per_s'] / ceiling['best_gflops']:.0%} of the ceiling), HF {r['hf_gflops_per_s']:.1f}; "
            f"no engine can beat HF by more than {ceiling['best_gflops'] / r['hf_gflops_per_s']:.2f}x here"
        )
    # One line for the ceiling: the settings' own JSON lines were printed as they finished.
    print(json.dumps({"measure": "matmul ceiling", **ceiling}))


if __name__ == "__main__":
    main()
