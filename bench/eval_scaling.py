"""Sharded evaluation decoding: examples decoded per device and wall time for 1, 2 and 4 devices.

Each device count runs in its own process (``XLA_FLAGS=--xla_force_host_platform_device_count=N``) and
decodes the same evaluation-like rows (varied lengths, a last partial batch) with
``iuie.evaluation.predict.Predictor`` on a tiny FlanT5, sorted into length buckets, batch split over the data
axis. The figure that matters is the work per device: the most examples any one device decoded must fall as
1/N of the examples (each example decoded exactly once over all devices). Fake CPU devices share this
machine's cores, so the wall time is printed but is not a scaling figure here. The decode padding share is
given with and without length buckets.

    python bench/eval_scaling.py [--examples 96] [--batch 16]

Prints a table and one JSON line per device count.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def worker(examples: int, batch: int) -> dict:
    import flax.linen as nn
    import jax
    import numpy as np

    from iuie.evaluation import predict
    from iuie.model import batch_decode
    from iuie.model.models import EncoderDecoderModel
    from iuie.model.network import T5Config
    from iuie.training import partitioning

    config = T5Config(
        vocab_size=128, emb_dim=32, num_heads=4, head_dim=8, mlp_dim=64, num_encoder_layers=1,
        num_decoder_layers=1, relative_attention_num_buckets=8, relative_attention_max_distance=16,
        dtype="float32", dropout_rate=0.0,
    )  # fmt: skip
    model = EncoderDecoderModel(config=config)
    rng = np.random.default_rng(0)
    rows = [rng.integers(2, 128, size=int(rng.integers(4, 120))).tolist() + [1] for _ in range(examples)]
    part = partitioning.Partitioner.create("data_parallel")
    abstract = predict.abstract_params(model, part, {"inputs": 128, "targets": 16})
    shapes = {"encoder_input_tokens": (1, 128), "decoder_input_tokens": (1, 16)}
    host = jax.device_get(nn.meta.unbox(model.get_initial_variables(jax.random.key(0), shapes)["params"]))
    params = jax.tree.map(lambda x, a: jax.device_put(x, a.sharding), host, abstract)
    predictor = predict.Predictor(model, part, batch)
    predictor.decode(params, rows, max_input_length=128, max_decode_length=16)  # compile every bucket
    start = time.perf_counter()
    predictor.decode(params, rows, max_input_length=128, max_decode_length=16)
    seconds = time.perf_counter() - start
    stats = predictor.last_stats
    lengths = [len(r) for r in rows]
    return {
        "devices": jax.device_count(),
        "examples": examples,
        "batch": batch,
        "decoded_total": sum(stats.rows_per_device.values()),
        "per_device_max": max(stats.rows_per_device.values()),
        "per_device_min": min(stats.rows_per_device.values()),
        "wall_s": round(seconds, 3),
        "padding_share_buckets": round(stats.padding_share, 4),
        "padding_share_input_order": round(
            batch_decode.padding_share(lengths, batch, lambda n: max(n, 128), sort=False), 4
        ),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=96)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--devices", default="1,2,4")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(args.examples, args.batch)))
        return 0
    print(f"load average: {' '.join(f'{x:.2f}' for x in os.getloadavg())} (fake devices share the cores)")
    results = []
    for n in (int(x) for x in args.devices.split(",")):
        env = dict(
            os.environ,
            XLA_FLAGS=f"--xla_force_host_platform_device_count={n}",
            JAX_PLATFORMS="cpu",
            TF_CPP_MIN_LOG_LEVEL="2",
            PYTHONPATH=os.pathsep.join([REPO, os.environ.get("PYTHONPATH", "")]),
        )
        cmd = [sys.executable, __file__, "--worker", f"--examples={args.examples}", f"--batch={args.batch}"]
        done = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True)
        results.append(json.loads(done.stdout.strip().splitlines()[-1]))
    base = results[0]["per_device_max"]
    print(
        f"{'devices':>7} {'examples':>8} {'decoded':>7} {'max/device':>10} {'ideal':>6} {'vs 1 dev':>8} {'wall s':>7}"
    )
    for r in results:
        ideal = -(-r["examples"] // r["devices"])
        print(
            f"{r['devices']:>7} {r['examples']:>8} {r['decoded_total']:>7} {r['per_device_max']:>10} {ideal:>6} "
            f"{r['per_device_max'] / base:>8.3f} {r['wall_s']:>7.2f}"
        )
    print(
        f"decode padding share: {100 * results[0]['padding_share_input_order']:.1f}% in input order at full "
        f"length -> {100 * results[0]['padding_share_buckets']:.1f}% sorted into length buckets"
    )
    for r in results:
        print(json.dumps(r))
    return 0


if __name__ == "__main__":
    sys.exit(main())
