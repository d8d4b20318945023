"""A tiny FlanT5 training run for the trainer tests, importable and runnable as a script.

The tests launch it with ``sys.executable`` so that each run has its own process: its own fake device count
(``XLA_FLAGS=--xla_force_host_platform_device_count=8`` must be set before jax is imported) and a process
the test can kill with SIGKILL. Two commands:

``losses``: the loss of each of the first steps under each partitioning preset, as JSON on stdout::

    python -m tests.trainer.harness losses --presets data_parallel,fsdp,2d,2d_fsdp --steps 5

``train``: the train loop a binary runs (resume or initialise, train, record and check for NaN, report,
checkpoint state + data position), writing ``final_params.npz`` at the end and one line per consumed batch
to ``batches.log`` (process id, batch index, and with ``--real-data`` the ``task:example`` of every packed
example of the batch)::

    python -m tests.trainer.harness train --model-dir DIR --steps 10 --period 2

Exit status 3 means the run stopped on a non-finite loss (the message is on stderr).

The model is the real ``iuie.model.network`` FlanT5 at a tiny size (float32 activations so that CPU runs compare
exactly; dropout on, so dropout RNG handling is part of every comparison), on packed batches that are a pure
function of their index, or (``--real-data``) on the real input pipeline over the synthetic seqio Tasks.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

import numpy as np

VOCAB = 128
BATCH = 16
INPUT_LENGTH = 24
TARGET_LENGTH = 12


def tiny_config(**overrides):
    from iuie.model.network import T5Config

    fields = dict(
        vocab_size=VOCAB,
        emb_dim=32,
        num_heads=4,
        head_dim=8,
        mlp_dim=64,
        num_encoder_layers=1,
        num_decoder_layers=1,
        relative_attention_num_buckets=8,
        relative_attention_max_distance=16,
        dtype="float32",
        dropout_rate=0.1,
    )
    fields.update(overrides)
    return T5Config(**fields)


def make_batch(index: int, seed: int = 0, nan: bool = False) -> dict[str, np.ndarray]:
    """Batch number ``index``: every row packs two examples (seqio's packed layout, segment ids 1 and 2)."""
    rng = np.random.default_rng([seed, index])
    out = {
        k: np.zeros((BATCH, INPUT_LENGTH), np.int32)
        for k in ("encoder_input_tokens", "encoder_segment_ids", "encoder_positions")
    }
    out.update(
        {
            k: np.zeros((BATCH, TARGET_LENGTH), np.int32)
            for k in ("decoder_input_tokens", "decoder_target_tokens", "decoder_segment_ids", "decoder_positions")
        }
    )
    out["decoder_loss_weights"] = np.zeros((BATCH, TARGET_LENGTH), np.float32)
    for row in range(BATCH):
        e_at = d_at = 0
        for segment in (1, 2):
            n, m = int(rng.integers(3, INPUT_LENGTH // 2)), int(rng.integers(2, TARGET_LENGTH // 2))
            inputs = rng.integers(2, VOCAB, n)
            targets = np.append(rng.integers(2, VOCAB, m - 1), 1)  # ends with EOS
            out["encoder_input_tokens"][row, e_at : e_at + n] = inputs
            out["encoder_segment_ids"][row, e_at : e_at + n] = segment
            out["encoder_positions"][row, e_at : e_at + n] = np.arange(n)
            out["decoder_target_tokens"][row, d_at : d_at + m] = targets
            out["decoder_input_tokens"][row, d_at : d_at + m] = np.append(0, targets[:-1])
            out["decoder_segment_ids"][row, d_at : d_at + m] = segment
            out["decoder_positions"][row, d_at : d_at + m] = np.arange(m)
            out["decoder_loss_weights"][row, d_at : d_at + m] = 1.0
            e_at, d_at = e_at + n, d_at + m
    if nan:
        out["decoder_loss_weights"][0, 0] = np.nan
    return out


def make_model(**config_overrides):
    from iuie.model import models

    return models.EncoderDecoderModel(config=tiny_config(**config_overrides), z_loss=1e-4)


def init_params_fn(model):
    shapes = {k: v.shape for k, v in make_batch(0).items()}
    return lambda rng: model.get_initial_variables(rng, shapes)["params"]


def _optimizer():
    from iuie.training import configs, optimizers

    return optimizers.make_optimizer(configs.OptimizerConfig(schedule=configs.ScheduleConfig(learning_rate=1e-2)))


def losses(presets: list[str], steps: int, microbatches: int) -> dict:
    """``{preset: [loss per step]}`` plus the device count, all presets from the same initial params."""
    import flax.linen as nn
    import jax

    from iuie.training import partitioning, trainer

    model = make_model()
    tx, schedule = _optimizer()
    # One initialisation for every preset (compiling the initialiser per layout would cost seconds each).
    params = jax.device_get(jax.jit(lambda rng: nn.meta.unbox(init_params_fn(model)(rng)))(jax.random.key(0)))
    out = {"devices": jax.device_count(), "losses": {}}
    for preset in presets:
        part = partitioning.Partitioner.create(preset)
        layout = trainer.abstract_state(init_params_fn(model), tx, part)
        state = trainer.state_from_params(params, tx, layout)
        step_fn = trainer.make_train_step(
            part,
            layout,
            make_batch(0),
            loss_fn=model.loss_fn,
            optimizer=tx,
            learning_rate_fn=schedule,
            num_microbatches=microbatches,
        )
        values = []
        for index in range(steps):
            state, metrics = step_fn(state, part.global_batch(make_batch(index)), jax.random.key(1))
            values.append(float(metrics["loss"]))
        out["losses"][preset] = values
        out.setdefault("mesh", {})[preset] = dict(part.mesh.shape)
    return out


def _real_vocab_size() -> int:
    from iuie.pipeline import vocab

    return vocab.vocabulary_size()


REAL_MIXTURE = "iuie_synthetic_ner_re"
REAL_LENGTHS = {"inputs": 128, "targets": 32}


def real_pipeline(synthetic_dir: str | None):
    """The real training input pipeline (seqio Tasks of the synthetic corpus, best-fit packing)."""
    import seqio_tasks  # noqa: F401  (registers the Tasks)
    from iuie.pipeline import seqio_data, train_input

    if synthetic_dir:
        seqio_data.set_options(synthetic_dir=synthetic_dir)
    return train_input.build(REAL_MIXTURE, REAL_LENGTHS, 0, config=train_input.InputConfig(window=32))


class RealBatches:
    """The train loop's view of the real pipeline: batches counted, state saved and restored with it."""

    def __init__(self, pipeline):
        self.pipeline = pipeline
        self.position = 0
        self.last_refs = []

    def next_global(self, part):
        batch = self.pipeline.next_global_batch(BATCH, part.batch_sharding)
        self.last_refs = self.pipeline.last_refs
        self.position += 1
        return batch

    def get_state(self):
        return {"batches": self.position, **self.pipeline.get_state()}

    def set_state(self, state):
        self.position = int(state["batches"])
        self.pipeline.set_state(state)


class _ListWriter:
    """A MetricWriter stand-in that keeps scalars in memory (clu's writers import TensorFlow: seconds)."""

    def __init__(self):
        self.scalars = []

    def write_scalars(self, step, scalars):
        self.scalars.append((step, dict(scalars)))

    def flush(self):
        pass


def train(args) -> int:
    import jax

    from iuie.model import flops
    from iuie.training import checkpoints, metrics_logging, partitioning, trainer

    real = None
    if args.real_data:
        real = real_pipeline(args.synthetic_dir)
        model = make_model(vocab_size=_real_vocab_size())
        example = {k: np.zeros(shape, dtype) for k, (shape, dtype) in real.element_spec(BATCH).items()}
        init_fn = lambda rng: model.get_initial_variables(rng, {k: (1,) + v.shape[1:] for k, v in example.items()})[  # noqa: E731
            "params"
        ]
    else:
        model = make_model()
        example = make_batch(0)
        init_fn = init_params_fn(model)
    tx, schedule = _optimizer()
    part = partitioning.Partitioner.create(args.preset)
    layout = trainer.abstract_state(init_fn, tx, part)
    checkpointer = checkpoints.Checkpointer(
        os.path.join(args.model_dir, "checkpoints"),
        period=args.period,
        keep=args.keep,
        async_checkpointing=not args.sync,
    )
    start = checkpoints.restore_or_initialize(
        checkpointer,
        layout,
        tx,
        init_fn,
        jax.random.key(0),
        initial_checkpoint_path=args.initial_checkpoint,
    )
    print(f"start: {start.source}", file=sys.stderr, flush=True)
    state = start.state
    if real is not None:
        data = RealBatches(real)
    else:
        data = checkpoints.ResumableIterator(
            lambda first: (make_batch(i, nan=(i + 1 == args.nan_at_step)) for i in range(first, 10**9))
        )
    if start.data_state:
        data.set_state(start.data_state)
    step_fn = trainer.make_train_step(
        part,
        layout,
        example,
        loss_fn=model.loss_fn,
        optimizer=tx,
        learning_rate_fn=schedule,
        num_microbatches=args.microbatches,
    )
    writer = metrics_logging.create_writer(os.path.join(args.model_dir, "train")) if args.tensorboard else _ListWriter()
    reporter = metrics_logging.TrainReporter(
        writer,
        total_steps=args.steps,
        log=lambda line: print(line, file=sys.stderr, flush=True),
        flops_per_step=flops.train_step_flops(model.config, BATCH, INPUT_LENGTH, TARGET_LENGTH),
    )
    guard = trainer.TerminateOnNan()
    dropout_rng = jax.random.key(1)
    step = int(state.step)
    batch_log = open(os.path.join(args.model_dir, "batches.log"), "a", encoding="utf-8")
    try:
        while step < args.steps:
            position = data.position
            batch = data.next_global(part) if real is not None else part.global_batch(next(data))
            refs = " ".join(f"{t}:{e}" for row in getattr(data, "last_refs", []) for t, e in row)
            batch_log.write(f"{os.getpid()} {position} {refs}".rstrip() + "\n")
            batch_log.flush()
            state, metrics = step_fn(state, batch, dropout_rng)
            step += 1
            guard.record(step, metrics)
            reporter.record(step, metrics)
            if step % args.log_period == 0 or step == args.steps:
                guard.check()
                reporter.report(step)
            if checkpointer.should_save(step) or step == args.steps:
                guard.check()  # never write the parameters of a NaN step
                checkpointer.save(step, state, data.get_state())
            if args.sleep:
                time.sleep(args.sleep)
    except trainer.NonFiniteLossError as e:
        checkpointer.wait_until_finished()
        print(f"stopped: {e}", file=sys.stderr, flush=True)
        return 3
    finally:
        batch_log.close()
    checkpointer.wait_until_finished()
    checkpointer.close()
    flat = {jax.tree_util.keystr(p): np.asarray(v) for p, v in jax.tree_util.tree_leaves_with_path(state.params)}
    np.savez(os.path.join(args.model_dir, "final_params.npz"), **flat)
    with open(os.path.join(args.model_dir, "summaries.json"), "w", encoding="utf-8") as f:
        json.dump(getattr(writer, "scalars", []), f)
    return 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("losses")
    p.add_argument("--presets", default="data_parallel")
    p.add_argument("--steps", type=int, default=5)
    p.add_argument("--microbatches", type=int, default=1)
    t = sub.add_parser("train")
    t.add_argument("--model-dir", required=True)
    t.add_argument("--steps", type=int, default=10)
    t.add_argument("--period", type=int, default=2)
    t.add_argument("--keep", type=int, default=None)
    t.add_argument("--log-period", type=int, default=2)
    t.add_argument("--preset", default="data_parallel")
    t.add_argument("--microbatches", type=int, default=1)
    t.add_argument("--sleep", type=float, default=0.0, help="seconds to pause after each step")
    t.add_argument("--nan-at-step", type=int, default=0, help="make this step's loss NaN (0: never)")
    t.add_argument("--sync", action="store_true", help="synchronous checkpointing")
    t.add_argument("--tensorboard", action="store_true", help="write TensorBoard summaries (imports TF)")
    t.add_argument("--initial-checkpoint", default=None)
    t.add_argument("--real-data", action="store_true", help="train on the real seqio pipeline (synthetic Tasks)")
    t.add_argument("--synthetic-dir", default=None, help="the synthetic corpus (with --real-data)")
    args = parser.parse_args(argv)
    if args.command == "losses":
        print(json.dumps(losses(args.presets.split(","), args.steps, args.microbatches)))
        return 0
    return train(args)


if __name__ == "__main__":
    sys.exit(main())
