"""Decodes the same rows with ``iuie.evaluation.predict.Predictor`` on 1 device in input order at full length
(the unsharded, unbucketed reference) and on every device of this process sorted into length buckets;
prints both as JSON. Run with ``XLA_FLAGS=--xla_force_host_platform_device_count=N``."""

from __future__ import annotations

import dataclasses
import json
import sys

import numpy as np


def rows(count: int, max_length: int, vocab: int, seed: int = 0) -> list[list[int]]:
    """Inputs of varied lengths (2 .. max_length tokens, EOS last), as seqio's converter leaves them."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(count):
        n = int(rng.integers(2, max_length + 1))
        out.append(rng.integers(2, vocab, size=n - 1).tolist() + [1])
    return out


def main(argv: list[str]) -> int:
    import flax.linen as nn
    import jax

    from iuie.evaluation import predict
    from iuie.training import partitioning
    from tests.trainer import harness

    count, batch_size = int(argv[0]), int(argv[1])
    model = harness.make_model(dropout_rate=0.0)
    lengths = {"inputs": 64, "targets": 8}
    inputs = rows(count, 40, harness.VOCAB)
    shapes = {"encoder_input_tokens": (1, 64), "decoder_input_tokens": (1, 8)}
    host = jax.device_get(nn.meta.unbox(model.get_initial_variables(jax.random.key(3), shapes)["params"]))
    results = {}
    for name, devices, buckets in (("reference", jax.devices()[:1], False), ("sharded", jax.devices(), True)):
        part = partitioning.Partitioner.create("data_parallel", devices=devices)
        abstract = predict.abstract_params(model, part, lengths)
        params = jax.tree.map(lambda x, a: jax.device_put(x, a.sharding), host, abstract)
        predictor = predict.Predictor(model, part, batch_size, length_buckets=buckets)
        decodes = predictor.decode(params, inputs, max_input_length=lengths["inputs"], max_decode_length=8)
        stats = dataclasses.asdict(predictor.last_stats)
        stats["rows_per_device"] = {str(k): v for k, v in sorted(stats["rows_per_device"].items())}
        results[name] = {
            "decodes": [d.tolist() for d in decodes],
            "stats": stats,
            "padding_share": predictor.last_stats.padding_share,
            "devices": len(devices),
        }
    print(json.dumps(results))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
