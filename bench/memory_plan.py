"""Memory plan: per-device bytes of the Flan-T5-XXL train step under each partitioning preset.

The real ``iuie.model.network`` at XXL size (d_model 4096, 64 heads of 64, d_ff 10240, 24 + 24 layers, vocabulary
32128, bfloat16 activations, float32 parameters, per-layer rematerialisation ``dots_with_no_batch_dims`` as in
``gin/models/flan_t5_xxl.gin``) and T5X's Flan optimizer (Adafactor: factored second moments, no momentum)
are compiled for fake CPU meshes of 8 and 64 devices (``--xla_force_host_platform_device_count``), from
abstract arrays only: ``jax.eval_shape`` of the initialiser, ``jax.ShapeDtypeStruct``s with shardings,
``.lower(...).compile()``. No parameter is ever allocated. For each (devices, preset) it prints XLA's
``compiled.memory_analysis()`` per device: arguments (train state + batch), outputs (new state + metrics; the
donated state aliases its argument), temporaries, generated code, and the peak estimate ``arguments + outputs
- aliased + temporaries``; then one JSON line each.

Batches are packed rows of (512, 50) tokens (the project's seqio feature lengths; packing puts ~1.8 examples
in a row), ``--batch`` rows per step (default 64; ``--microbatches`` splits them). The data-parallel and fsdp
presets use ``(devices, 1)`` meshes, the 2d presets a model axis of about sqrt(devices): 2x4 and 8x8
(``--model-parallel`` overrides it).

Arguments and outputs are exact for any backend (they are the sharded state); temporaries are the CPU
compiler's and only approximate what a GPU/TPU compiler schedules: the CPU backend computes bfloat16 matmuls
in float32, gathers FSDP weights without a memory-aware schedule, and (as the script checks on a small chain
of layers and reports) its buffer assignment does not shrink under ``jax.checkpoint``, so the temporaries are
close to a no-rematerialisation figure: an upper bound.

Compiling 48 unrolled XXL layers is slow on a small CPU: one full (8 devices, 2d_fsdp) compile took 1241 s
wall (11.5 CPU-minutes) on a shared 2-core machine, so the eight full compiles would take hours there.
``--layers N`` compiles N encoder + N decoder layers instead (a smaller model, labelled as such);
``--extrapolate-from A,B`` compiles at depths A and B and extrapolates every figure linearly to ``--layers``
(default 24); rows say ``extrapolated``. Checked against that full compile: arguments and outputs identical to
the byte, temporaries within 0.5% (138.80 GB extrapolated from 1 and 2 layers, 138.17 GB compiled). The whole
extrapolated table (16 compiles) takes about 5 CPU-minutes.

Run from the repository root::

  .venv/bin/python bench/memory_plan.py --extrapolate-from 1,2      # XXL by extrapolation, ~5 CPU-minutes
  .venv/bin/python bench/memory_plan.py                             # XXL compiled in full (slow on a laptop)
  .venv/bin/python bench/memory_plan.py --layers 2 --devices 8      # a quick look
"""

from __future__ import annotations

import argparse
import json
import math
import os
import pathlib
import sys
import time

MAX_DEVICES = 64
# Set before jax is imported: the fake CPU devices the meshes are built from.
os.environ["XLA_FLAGS"] = (
    os.environ.get("XLA_FLAGS", "") + f" --xla_force_host_platform_device_count={MAX_DEVICES}"
).strip()
os.environ.setdefault("JAX_PLATFORMS", "cpu")

REPO = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402

from iuie.model import models, network  # noqa: E402
from iuie.training import configs, optimizers, partitioning, trainer  # noqa: E402

PRESETS = ("data_parallel", "fsdp", "2d", "2d_fsdp")
XXL = dict(
    vocab_size=32128,
    emb_dim=4096,
    num_heads=64,
    head_dim=64,
    mlp_dim=10240,
    num_encoder_layers=24,
    num_decoder_layers=24,
    dtype="bfloat16",
    param_dtype="float32",
    dropout_rate=0.1,
    remat_policy="dots_with_no_batch_dims",
)
GIB = 1024**3


def mesh_shape(preset: str, devices: int, model_parallel: int | None) -> tuple[int, int]:
    """(data, model): the 2d presets default to a model axis of about sqrt(devices): 8 -> 2x4, 64 -> 8x8."""
    if preset in ("2d", "2d_fsdp"):
        model = model_parallel or 2 ** math.ceil(math.log2(devices) / 2)
        return (devices // model, model)
    return (devices, 1)


def cpu_honours_remat() -> bool:
    """Whether this backend's temporaries shrink under ``jax.checkpoint``: 8 chained layers of a 16 MiB
    activation, differentiated with and without rematerialisation."""

    def chain(remat):
        def f(x, w):
            layer = lambda x: jnp.tanh(x @ w) + x
            layer = jax.checkpoint(layer, prevent_cse=True) if remat else layer
            for _ in range(8):
                x = layer(x)
            return x.sum()

        return f

    x, w = jax.ShapeDtypeStruct((4096, 1024), jnp.float32), jax.ShapeDtypeStruct((1024, 1024), jnp.float32)
    temps = [
        jax.jit(jax.grad(chain(r), argnums=1)).lower(x, w).compile().memory_analysis().temp_size_in_bytes
        for r in (False, True)
    ]
    return temps[1] < 0.75 * temps[0]


def plan(preset: str, devices: int, layers: int, args) -> dict:
    """Compile one train step and read its memory analysis."""
    config = network.T5Config(**{**XXL, "num_encoder_layers": layers, "num_decoder_layers": layers})
    model = models.EncoderDecoderModel(config=config, z_loss=1e-4)
    tx, schedule = optimizers.make_optimizer(configs.ADAFACTOR_FLAN)
    shape = mesh_shape(preset, devices, args.model_parallel and min(args.model_parallel, devices))
    partitioner = partitioning.Partitioner.create(preset, shape, devices=jax.devices()[:devices])
    inputs, targets = args.lengths
    features = {
        "encoder_input_tokens": (args.batch, inputs),
        "encoder_segment_ids": (args.batch, inputs),
        "encoder_positions": (args.batch, inputs),
        "decoder_input_tokens": (args.batch, targets),
        "decoder_target_tokens": (args.batch, targets),
        "decoder_segment_ids": (args.batch, targets),
        "decoder_positions": (args.batch, targets),
    }
    batch = {name: jax.ShapeDtypeStruct(s, jnp.int32) for name, s in features.items()}
    batch["decoder_loss_weights"] = jax.ShapeDtypeStruct((args.batch, targets), jnp.float32)
    batch = {
        name: jax.ShapeDtypeStruct(a.shape, a.dtype, sharding=partitioner.batch_sharding(len(a.shape)))
        for name, a in batch.items()
    }
    init = lambda rng: model.get_initial_variables(rng, {k: v.shape for k, v in batch.items()})["params"]
    layout = trainer.abstract_state(init, tx, partitioner)
    step = trainer.make_train_step(
        partitioner,
        layout,
        batch,
        loss_fn=model.loss_fn,
        optimizer=tx,
        learning_rate_fn=schedule,
        num_microbatches=args.microbatches,
    )
    rng = jax.ShapeDtypeStruct((), jax.random.key(0).dtype, sharding=partitioner.replicated)
    start = time.perf_counter()
    compiled = step.lower(layout.abstract, batch, rng).compile()
    seconds = time.perf_counter() - start
    memory = compiled.memory_analysis()
    row = {
        "arguments": memory.argument_size_in_bytes,
        "outputs": memory.output_size_in_bytes,
        "aliased": memory.alias_size_in_bytes,
        "temporaries": memory.temp_size_in_bytes,
        "code": memory.generated_code_size_in_bytes,
    }
    row["peak"] = row["arguments"] + row["outputs"] - row["aliased"] + row["temporaries"]
    return {"mesh": shape, "compile_seconds": round(seconds, 1), **row}


def extrapolate(low: dict, high: dict, a: int, b: int, target: int) -> dict:
    out = dict(high)
    for key in ("arguments", "outputs", "aliased", "temporaries", "code", "peak"):
        slope = (high[key] - low[key]) / (b - a)
        out[key] = int(round(high[key] + slope * (target - b)))
    out["compile_seconds"] = round(low["compile_seconds"] + high["compile_seconds"], 1)
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", default="8,64", help="mesh sizes (at most 64)")
    parser.add_argument("--presets", default=",".join(PRESETS))
    parser.add_argument("--layers", type=int, default=24, help="encoder and decoder layers (XXL: 24)")
    parser.add_argument("--extrapolate-from", default=None, help="'A,B': compile these depths, extrapolate")
    parser.add_argument("--batch", type=int, default=64, help="global batch (packed rows)")
    parser.add_argument("--microbatches", type=int, default=1)
    parser.add_argument("--lengths", default="512,50", help="inputs,targets lengths")
    parser.add_argument(
        "--model-parallel", type=int, default=None, help="model axis of the 2d presets (default: about sqrt(devices))"
    )
    args = parser.parse_args(argv)
    args.lengths = tuple(int(x) for x in args.lengths.split(","))
    depths = [int(x) for x in args.extrapolate_from.split(",")] if args.extrapolate_from else None

    rows = []
    for devices in (int(x) for x in args.devices.split(",")):
        for preset in args.presets.split(","):
            if depths:
                low, high = (plan(preset, devices, d, args) for d in depths)
                row = extrapolate(low, high, depths[0], depths[1], args.layers)
                how = f"extrapolated from {depths[0]},{depths[1]} layers"
            else:
                row = plan(preset, devices, args.layers, args)
                how = "compiled"
            row = {
                "bench": "memory_plan",
                "preset": preset,
                "devices": devices,
                "layers": args.layers,
                "how": how,
                "batch": args.batch,
                "microbatches": args.microbatches,
                "lengths": list(args.lengths),
                **row,
            }
            rows.append(row)
            print(json.dumps(row), file=sys.stderr, flush=True)  # progress while the rest compiles

    header = (
        f"{'devices':>7} {'preset':<14} {'mesh':<8} {'args GiB':>9} {'out GiB':>8} {'temp GiB':>9} "
        f"{'code MiB':>9} {'peak GiB':>9} {'compile s':>9}  how"
    )
    print(header)
    print("-" * len(header))
    for r in rows:
        mesh = "x".join(map(str, r["mesh"]))
        print(
            f"{r['devices']:>7} {r['preset']:<14} {mesh:<8} {r['arguments'] / GIB:>9.2f} "
            f"{r['outputs'] / GIB:>8.2f} {r['temporaries'] / GIB:>9.2f} {r['code'] / 2**20:>9.1f} "
            f"{r['peak'] / GIB:>9.2f} {r['compile_seconds']:>9.1f}  {r['how']}"
        )
    remat = cpu_honours_remat()
    if not remat:
        print(
            "note: this backend's temporaries ignore rematerialisation (jax.checkpoint leaves them unchanged "
            "in a test chain), so 'temp' is close to a no-remat figure: an upper bound for GPU/TPU."
        )
    for r in rows:
        print(json.dumps({**r, "backend_honours_remat": remat}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
