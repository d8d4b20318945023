"""Compile a run's train and decode steps for a TPU topology and say whether they fit the chips' memory.

    iuie plan --gin_file=t5x_configs/instructuie_supervised_xxl.gin --gin_file=partitioning/fsdp.gin \\
        --topology v5p:4x4x4

The same gin files and ``--gin.NAME=VALUE`` bindings as ``python -m iuie.train`` (the model, ``BATCH_SIZE``,
``TASK_FEATURE_LENGTHS``, ``NUM_MICROBATCHES``, the optimizer, the partitioning preset and mesh,
``REMAT_POLICY``), plus ``--topology`` (libtpu's names: ``v5e:2x4`` is a v5e-8, ``v4:2x2x1`` a v4-8,
``v5p:2x2x1`` a v5p-8, ``v5e:8x8`` a v5e-64). Nothing is read, downloaded or allocated: parameters,
optimizer state and batches are abstract, the TPU compiler (libtpu: ``pip install 'iuie[tpu]'``) runs on this
machine's CPU. Values a plan does not need (``MODEL_DIR``, ``INITIAL_CHECKPOINT_PATH``, the data) may be left
unset; the output vocabulary is not loaded.

Prints, per device, XLA's argument / output / temporary / code bytes and the peak against the chip's memory,
XLA's FLOPs next to ``iuie.model.flops``'s count, and a verdict; ``--json`` adds one JSON line per step.
Exit status: 0 when both steps fit, 1 when one does not, 2 on a configuration error.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import sys
from typing import Any

GIB = 1024**3
EXIT_DOES_NOT_FIT = 1
EXIT_CONFIG_ERROR = 2
# Macros that iuie.train needs but a plan does not (it reads no data, writes nothing, loads no weights):
# placeholders, which the user's own bindings override.
UNNEEDED_MACROS = {
    "MODEL_DIR": "/nonexistent/iuie-plan",
    "INITIAL_CHECKPOINT_PATH": None,
    "MIXTURE_OR_TASK_NAME": "unused-by-iuie-plan",
}  # TRAIN_STEPS is not among them: the schedule (warmup, decay) is checked against it


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from iuie.runtime import gin_flags

    gin_flags.add_gin_flags(parser)
    parser.add_argument("--topology", required=True, help="libtpu topology name, e.g. v5e:2x4 (a v5e-8)")
    parser.add_argument("--skip-decode", action="store_true", help="compile only the train step")
    parser.add_argument("--json", action="store_true", help="also print one JSON line per step")
    parser.add_argument(
        "--hbm-gib",
        type=float,
        default=None,
        help="memory per device to plan against, in GiB (default: the chip's HBM; less leaves headroom)",
    )


def rewrite_argv(argv: list[str]) -> list[str]:
    """T5X's ``--gin.NAME=VALUE`` flags as ``--gin_bindings`` (what ``iuie.train`` accepts too)."""
    from iuie.runtime import gin_flags

    return gin_flags.rewrite_gin_args(argv)


def _is_required(value: Any) -> bool:
    return str(value) == "%gin.REQUIRED"


def load_run(args: argparse.Namespace) -> dict[str, Any]:
    """The gin-configured pieces of ``iuie.train.train`` that a plan compiles: model, ``TrainConfig``,
    feature lengths and the evaluation batch size, built from the same bindings ``iuie.train`` would use."""
    import gin
    from iuie import train as train_binary
    from iuie.model import models
    from iuie.runtime import gin_flags

    # Placeholders first, so that the user's own bindings (parsed after them) still win; they stand in for
    # values the plan never reads, and parse() refuses a run whose required macros are unset.
    placeholders = [f"{macro} = {value!r}" for macro, value in UNNEEDED_MACROS.items()]
    gin_flags.parse(args.gin_file, placeholders + list(args.gin_bindings or []), args.gin_search_paths)
    with gin.unlock_config():
        # Decoded ids are never turned into text here: an experiment's vocabulary file need not exist.
        gin.bind_parameter(f"{models.__name__}.EncoderDecoderModel.output_vocabulary", None)
    # Bind a probe to exactly what iuie.train.train is bound to (references included), so that any
    # experiment layering that configures the binary configures the plan too.
    names = ("model", "config", "task_feature_lengths", "eval_batch_size")
    configured = gin.get_configurable(train_binary.train)
    del configured  # registers the binary's function under gin (dynamic registration)
    probe = _PROBE
    with gin.unlock_config():
        for name in names:
            try:
                value = gin.query_parameter(f"train.{name}")
            except ValueError as e:
                raise gin_flags.GinConfigError(f"the gin files do not configure iuie.train.train: {e}") from e
            gin.bind_parameter(f"iuie_plan_probe.{name}", value)
    return probe()


def _probe(model=None, config=None, task_feature_lengths=None, eval_batch_size=32):
    return {
        "model": model,
        "config": config,
        "lengths": {k: int(v) for k, v in dict(task_feature_lengths).items()},
        "eval_batch_size": int(eval_batch_size),
    }


def _register_probe():
    import gin

    return gin.external_configurable(_probe, name="iuie_plan_probe")


# Registered once, at import (before gin parses and finalises the run's files).
_PROBE = _register_probe()


def _fmt(value: float | None, scale: float, digits: int = 2) -> str:
    return "-" if value is None else f"{value / scale:.{digits}f}"


def describe(result: Any) -> list[str]:
    """The human-readable lines of one compiled plan."""
    lines = [
        f"{result.step} step: {result.devices} x {result.device_kind}, mesh {'x'.join(map(str, result.mesh))}, "
        f"compiled in {result.compile_seconds:.1f} s",
        f"  per device: arguments {_fmt(result.arguments, GIB)} GiB, outputs {_fmt(result.outputs, GIB)} GiB "
        f"({_fmt(result.aliased, GIB)} GiB aliased to donated arguments), temporaries "
        f"{_fmt(result.temporaries, GIB)} GiB, code {_fmt(result.code, 2**20, 1)} MiB",
        f"  peak {_fmt(result.peak, GIB)} GiB of {_fmt(result.hbm, GIB)} GiB HBM per device",
    ]
    if result.state_bytes is not None and result.step == "train":
        lines.append(f"  train state (parameters + optimizer) {_fmt(result.state_bytes, GIB)} GiB per device")
    flops = f"  XLA FLOPs per device {_fmt(result.xla_flops, 1e12, 3)} T"
    if result.model_flops:
        ratio = f" ({result.xla_flops / result.model_flops:.2f}x)" if result.xla_flops else ""
        flops += f", iuie.model.flops {_fmt(result.model_flops, 1e12, 3)} T{ratio}"
    lines.append(flops)
    verdict = {True: "fits", False: "DOES NOT FIT", None: "unknown (no memory size for this chip)"}[result.fits]
    lines.append(f"  verdict: {verdict}")
    return lines


def run(args: argparse.Namespace) -> int:
    import os

    # libtpu is reached through jax.experimental.topologies only; the CPU stays JAX's backend.
    os.environ.setdefault("JAX_PLATFORMS", "cpu")
    logging.getLogger("absl").setLevel(logging.ERROR)
    from iuie.runtime import gin_flags
    from iuie.training import plan

    try:
        run_parts = load_run(args)
        devices = plan.topology_devices(args.topology)
    except (gin_flags.GinConfigError, plan.TopologyError, ValueError, OSError) as e:
        print(f"error: {e}", file=sys.stderr, flush=True)
        return EXIT_CONFIG_ERROR
    model, config, lengths = run_parts["model"], run_parts["config"], run_parts["lengths"]
    cfg = model.config
    print(
        f"plan for {args.topology}: batch {config.batch_size} x ({lengths['inputs']}, {lengths['targets']}), "
        f"{config.num_microbatches} microbatch(es), preset {config.partitioning.preset}, remat "
        f"{cfg.remat_policy}, {cfg.num_encoder_layers}+{cfg.num_decoder_layers} layers of d_model {cfg.emb_dim}",
        flush=True,
    )
    steps = [lambda: plan.plan_train(model, config, lengths, devices)]
    if not args.skip_decode:
        steps.append(
            lambda: plan.plan_decode(model, config.partitioning, run_parts["eval_batch_size"], lengths, devices)
        )
    fits = True
    for compile_step in steps:
        try:
            result = compile_step()
        except plan.CompilerOutOfMemory as e:
            # The compiler's own verdict: no memory figures exist, but the answer is known.
            print(f"{e.step} step: verdict: DOES NOT FIT (the TPU compiler refused it: {e.message})", flush=True)
            if args.json:
                print(json.dumps({"topology": args.topology, "step": e.step, "fits": False, "refused": e.message}))
            fits = False
            continue
        except ValueError as e:
            print(f"error: {e}", file=sys.stderr, flush=True)
            return EXIT_CONFIG_ERROR
        if args.hbm_gib is not None:
            result = dataclasses.replace(result, hbm=int(args.hbm_gib * GIB))
        print("\n".join(describe(result)), flush=True)
        if args.json:
            print(json.dumps({"topology": args.topology, **result.to_json()}), flush=True)
        fits = fits and result.fits is not False
    return 0 if fits else EXIT_DOES_NOT_FIT
