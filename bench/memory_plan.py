"""Memory plan: per-device bytes of Flan-T5 train steps compiled by the TPU compiler for real TPU topologies.

For each (topology, model size, partitioning preset, rematerialisation policy) the train step ``iuie.train``
runs (``iuie.training.plan.plan_train``: Adafactor as T5X's Flan setup, bfloat16 activations, float32
parameters, dropout 0.1, packed rows of seqio's ``EncDecFeatureConverter``) is compiled ahead of time for the
topology's devices (libtpu's ``jax.experimental.topologies``; nothing is allocated), and XLA's
``memory_analysis()`` is read: arguments (train state + batch), temporaries, peak
``arguments + outputs - aliased + temporaries + code``, against the chip's HBM. Unlike the CPU compiler (which
this script used before libtpu was a test dependency), the TPU compiler honours rematerialisation, so the
figures say whether a run fits.

Defaults are the paper's run: batch 256 rows of (512, 50) tokens. Compiling 24 + 24 XXL layers is slow on a
small CPU, so ``--extrapolate-from A,B`` compiles A and B encoder + decoder layers and extends every figure
linearly to the size's real depth (each layer adds the same parameters, optimizer state, saved activations and
work; rows say ``extrapolated``). ``--layers N`` compiles N layers as they are.

Run from the repository root::

  .venv/bin/python bench/memory_plan.py --sizes xxl --topologies v5e:2x4,v4:2x2x1,v5p:2x2x1,v5e:8x8 \\
      --presets fsdp,2d_fsdp --remat full,minimal --extrapolate-from 1,2

Prints a table (GiB per device), then one JSON line per row.
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import sys

os.environ.setdefault("JAX_PLATFORMS", "cpu")  # libtpu is used through topologies only

REPO = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from iuie.model import models, network  # noqa: E402
from iuie.training import configs, plan  # noqa: E402

GIB = 1024**3
# Flan-T5 dims (the published configs), vocabulary 32128.
SIZES = {
    "base": dict(emb_dim=768, num_heads=12, head_dim=64, mlp_dim=2048, num_encoder_layers=12, num_decoder_layers=12),
    "large": dict(emb_dim=1024, num_heads=16, head_dim=64, mlp_dim=2816, num_encoder_layers=24, num_decoder_layers=24),
    "xl": dict(emb_dim=2048, num_heads=32, head_dim=64, mlp_dim=5120, num_encoder_layers=24, num_decoder_layers=24),
    "xxl": dict(emb_dim=4096, num_heads=64, head_dim=64, mlp_dim=10240, num_encoder_layers=24, num_decoder_layers=24),
    "tiny": dict(emb_dim=64, num_heads=4, head_dim=16, mlp_dim=128, num_encoder_layers=2, num_decoder_layers=2),
}


def compile_row(size: str, layers: int | None, preset: str, remat: str, devices, args) -> plan.CompiledPlan:
    dims = dict(SIZES[size])
    if layers is not None:
        dims.update(num_encoder_layers=layers, num_decoder_layers=layers)
    config = network.T5Config(vocab_size=32128, dropout_rate=0.1, remat_policy=remat, **dims)
    model = models.EncoderDecoderModel(config=config, z_loss=1e-4)
    mesh = None
    if preset in ("2d", "2d_fsdp"):
        mesh = (-1, args.model_parallel)
    train = configs.TrainConfig(
        batch_size=args.batch,
        num_microbatches=args.microbatches,
        partitioning=configs.PartitioningConfig(preset=preset, mesh_shape=mesh),
    )
    inputs, targets = args.lengths
    return plan.plan_train(model, train, {"inputs": inputs, "targets": targets}, devices)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--topologies", default="v5e:2x4,v4:2x2x1,v5p:2x2x1,v5e:8x8")
    parser.add_argument("--sizes", default="xxl", help=f"comma-separated, of {sorted(SIZES)}")
    parser.add_argument("--presets", default="fsdp,2d_fsdp")
    parser.add_argument("--remat", default="full,minimal", help="comma-separated network.REMAT_POLICIES names")
    parser.add_argument("--layers", type=int, default=None, help="compile this depth as is (default: the size's)")
    parser.add_argument("--extrapolate-from", default=None, help="'A,B': compile these depths, extrapolate")
    parser.add_argument("--batch", type=int, default=256, help="global batch in rows (the paper: 256)")
    parser.add_argument("--microbatches", type=int, default=1)
    parser.add_argument("--lengths", default="512,50", help="inputs,targets lengths (the paper: 512,50)")
    parser.add_argument("--model-parallel", type=int, default=4, help="model axis of the 2d presets")
    args = parser.parse_args(argv)
    args.lengths = tuple(int(x) for x in args.lengths.split(","))
    depths = [int(x) for x in args.extrapolate_from.split(",")] if args.extrapolate_from else None

    rows = []
    for topology in args.topologies.split(","):
        devices = plan.topology_devices(topology)
        for size in args.sizes.split(","):
            target = args.layers or SIZES[size]["num_encoder_layers"]
            for preset in args.presets.split(","):
                for remat in args.remat.split(","):
                    try:
                        if depths:
                            low, high = (compile_row(size, d, preset, remat, devices, args) for d in depths)
                            result = plan.extrapolate(low, high, depths[0], depths[1], target)
                            how = f"extrapolated from {depths[0]},{depths[1]} layers"
                        else:
                            result = compile_row(size, target, preset, remat, devices, args)
                            how = "compiled"
                        row = {**result.to_json(), "error": None}
                    except plan.CompilerOutOfMemory as e:  # the compiler's own "does not fit"
                        row, how = {"fits": False, "refused": e.message, "error": None}, "compiler refused"
                    except Exception as e:  # a configuration the compiler rejects is a row, not a crash
                        row, how = {"error": f"{type(e).__name__}: {str(e).splitlines()[0][:200]}"}, "failed"
                    row = {
                        "bench": "memory_plan",
                        "topology": topology,
                        "size": size,
                        "layers": target,
                        "preset": preset,
                        "remat": remat,
                        "how": how,
                        "batch": args.batch,
                        "microbatches": args.microbatches,
                        "lengths": list(args.lengths),
                        **row,
                    }
                    rows.append(row)
                    print(json.dumps(row), file=sys.stderr, flush=True)  # progress while the rest compiles

    header = (
        f"{'topology':<10} {'size':<5} {'preset':<14} {'remat':<22} {'mesh':<6} {'args':>7} {'temp':>7} "
        f"{'peak':>7} {'HBM':>5} {'fits':<4} {'XLA/model FLOPs':>15}  how"
    )
    print(header)
    print("-" * len(header))
    for r in rows:
        if r["error"]:
            print(f"{r['topology']:<10} {r['size']:<5} {r['preset']:<14} {r['remat']:<22} failed: {r['error']}")
            continue
        if r.get("refused"):
            print(
                f"{r['topology']:<10} {r['size']:<5} {r['preset']:<14} {r['remat']:<22} NO (compiler: {r['refused']})"
            )
            continue
        ratio = f"{r['xla_flops'] / r['model_flops']:.2f}" if r.get("xla_flops") and r.get("model_flops") else "-"
        print(
            f"{r['topology']:<10} {r['size']:<5} {r['preset']:<14} {r['remat']:<22} "
            f"{'x'.join(map(str, r['mesh'])):<6} {r['arguments'] / GIB:>7.2f} {r['temporaries'] / GIB:>7.2f} "
            f"{r['peak'] / GIB:>7.2f} {r['hbm'] / GIB:>5.0f} {'yes' if r['fits'] else 'NO':<4} {ratio:>15}  {r['how']}"
        )
    for r in rows:
        print(json.dumps(r))
    return 0


if __name__ == "__main__":
    sys.exit(main())
