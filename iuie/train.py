"""``python -m iuie.train``: the training loop (T5X's ``train.py`` role); the steps live in ``iuie.training.trainer``.

One run: build the model (gin's ``MODEL``), the partitioner, the optimizer and the train state (this run's
newest checkpoint in ``MODEL_DIR/checkpoints`` for an exact resume, else ``INITIAL_CHECKPOINT_PATH``, else
random initialisation), the training input pipeline (``iuie.pipeline.train_input``: index-based over the
seqio Tasks, packed rows, the same global batches on any number of hosts), then train to ``TRAIN_STEPS`` with a progress line and
TensorBoard summaries every ``log_period`` steps, checkpoints (state + input-pipeline state) every
``CheckpointConfig.period`` steps and at the end, seqio evaluation every ``EVAL_PERIOD`` steps (and at the
end) over the evaluation Mixture in both metric modes, and a stop on a non-finite loss (exit status 3).
``MODEL_DIR/run_info.json`` (the task feature lengths, written at start beside the operative ``config.gin``)
tells readers of the checkpoint the input length the model was trained on. SIGTERM (preemption) saves a checkpoint at the next step boundary and exits 0; a damaged newest checkpoint is
set aside and the newest intact one restored (docs/scaling.md). User errors: one line, exit status 2.

The CPU demo (tiny model, synthetic corpus)::

    python -m iuie.train --gin_file=t5x_configs/demo_cpu.gin --gin.MODEL_DIR="'/tmp/iuie_demo'"

Multi-host: ``--multiprocess`` (alias ``--multiprocess_gpu``; with ``--coordinator_address``,
``--process_count``, ``--process_index``) calls ``jax.distributed.initialize``; so does a real per-task
launch found in the environment (an ``srun`` step, Open MPI, ``JAX_COORDINATOR_ADDRESS``, a TPU pod slice),
never a plain run inside an ``sbatch`` allocation (``iuie.runtime.launch``). The non-finite check runs at
every logging step, before every checkpoint save and before every evaluation.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import time
from collections.abc import Mapping, Sequence
from typing import Any

from iuie.runtime import gin_flags, launch

logger = logging.getLogger("iuie.train")

EXIT_NON_FINITE = 3


def _continue_data(data: Any, saved: Mapping[str, Any]) -> None:
    """Puts the input pipeline where the restored checkpoint left it (nothing saved: the start), then logs the
    over-long shares of the window it starts in (a bounded sample), warning above 1% per Task."""
    from iuie.pipeline import train_input

    if saved:
        try:
            data.set_state(saved)
        except train_input.DataStateError as e:
            raise gin_flags.GinConfigError(str(e)) from None
        logger.info("input pipeline: continuing at example %d (row %d)", data.examples_consumed, saved["rows"])
    for line in data.length_report():
        (logger.warning if line.startswith("WARNING") else logger.info)("%s", line.removeprefix("WARNING "))


def train(
    *,
    model: Any,
    config: Any,
    model_dir: str,
    mixture_or_task_name: str,
    task_feature_lengths: Mapping[str, int],
    use_cached_tasks: bool = False,
    shuffle_seed: int = 0,
    eval_mixture_or_task_name: str | None = None,
    eval_split: str = "validation",
    eval_num_examples: int | None = None,
    eval_batch_size: int = 32,
    eval_at_end: bool = True,
    tensorboard: bool = True,
    input_config: Any = None,
) -> int:
    """Trains ``model`` as ``config`` (a ``configs.TrainConfig``) says; see the module docstring.

    Returns the exit status: 0, or 3 when the run stopped on a non-finite loss.
    """
    import jax

    import seqio_tasks
    from iuie.evaluation import predict, seqio_eval
    from iuie.interop import reader
    from iuie.model import flops
    from iuie.pipeline import train_input
    from iuie.training import checkpoints, metrics_logging, optimizers, partitioning, preemption, trainer

    t0 = time.time()
    # Fail fast: data paths, evaluation split and starting weights before anything is built or compiled.
    eval_name = eval_mixture_or_task_name or seqio_tasks.eval_mixture_for(mixture_or_task_name)
    eval_wanted = bool(config.eval_period) or eval_at_end
    seqio_eval.check_data(mixture_or_task_name, "train")
    if eval_wanted:
        seqio_eval.check_data(eval_name, eval_split)
    initial = config.checkpoint.initial_checkpoint_path
    if initial and not os.path.exists(initial):
        raise FileNotFoundError(f"INITIAL_CHECKPOINT_PATH {initial!r} does not exist")

    part = partitioning.Partitioner.from_config(config.partitioning)
    processes = jax.process_count()
    if config.batch_size % processes or config.batch_size % part.data_parallel_size:
        raise gin_flags.GinConfigError(
            f"BATCH_SIZE {config.batch_size} must be a multiple of the process count ({processes}) and of the "
            f"data-parallel size ({part.data_parallel_size})"
        )
    try:
        tx, schedule = optimizers.make_optimizer(config.optimizer, config.train_steps)
    except ValueError as e:  # a schedule that does not fit TRAIN_STEPS: a configuration mistake
        raise gin_flags.GinConfigError(str(e)) from None

    # The training data: index-based, host-independent, packed rows; its state is saved with each checkpoint.
    data = train_input.build(
        mixture_or_task_name, task_feature_lengths, shuffle_seed, use_cached=use_cached_tasks, config=input_config
    )
    batch_spec = {
        name: jax.ShapeDtypeStruct(shape, dtype)
        for name, (shape, dtype) in data.element_spec(config.batch_size).items()
    }
    init_shapes = {name: (1,) + tuple(spec.shape[1:]) for name, spec in batch_spec.items()}

    def init_params_fn(rng):
        return model.get_initial_variables(rng, init_shapes)["params"]

    layout = trainer.abstract_state(init_params_fn, tx, part)
    checkpointer = checkpoints.Checkpointer.from_config(os.path.join(model_dir, "checkpoints"), config.checkpoint)
    start = checkpoints.restore_or_initialize(
        checkpointer,
        layout,
        tx,
        init_params_fn,
        jax.random.key(config.seed),
        initial_checkpoint_path=initial,
        restore_optimizer_state=config.checkpoint.restore_optimizer_state,
    )
    logger.info("start: %s", start.source)
    state = start.state
    _continue_data(data, start.data_state)

    prepare_batch, loss_fn = trainer.microbatch_loss(model)
    step_fn = trainer.make_train_step(
        part,
        layout,
        batch_spec,
        loss_fn=loss_fn,
        optimizer=tx,
        learning_rate_fn=schedule,
        num_microbatches=config.num_microbatches,
        prepare_batch=prepare_batch,
        accumulation_dtype=config.accumulation_dtype,
    )
    gin_flags.write_operative_config(model_dir)
    if jax.process_index() == 0:
        # The lengths the model learns to read: readers (iuie extract, iuie serve) size their windows by them.
        reader.write_run_info(
            model_dir,
            task_feature_lengths,
            mixture_or_task_name=mixture_or_task_name,
            batch_size=config.batch_size,
            train_steps=config.train_steps,
        )

    writer = metrics_logging.create_writer(os.path.join(model_dir, "train") if tensorboard else None)
    lengths = {k: int(v) for k, v in task_feature_lengths.items()}
    reporter = metrics_logging.TrainReporter(
        writer,
        total_steps=config.train_steps,
        flops_per_step=flops.train_step_flops(model.config, config.batch_size, lengths["inputs"], lengths["targets"]),
        log=lambda line: logger.info("%s", line),
        loss_is_token_sum=model.loss_normalizing_factor is None,
    )
    guard = trainer.TerminateOnNan() if config.stop_on_nan else None
    dropout_rng = jax.random.fold_in(jax.random.key(config.seed), 1)

    evaluator = None
    predictor = None

    def run_eval(step: int) -> None:
        nonlocal evaluator, predictor
        if evaluator is None:
            evaluator = seqio_eval.make_evaluator(eval_name, eval_split, lengths, eval_num_examples, use_cached_tasks)
            predictor = predict.Predictor(model, part, eval_batch_size)
        tick = time.time()
        metrics, rows = seqio_eval.run_evaluation(
            evaluator, predictor.predict_fn(state.params), seqio_tasks.VOCABULARY, step
        )
        tables = seqio_eval.reports(evaluator, metrics)
        seqio_eval.write_results(os.path.join(model_dir, "eval", f"step_{step}"), metrics, tables, rows)
        writer.write_scalars(step, seqio_eval.summary_scalars(metrics, tables))
        for mode in seqio_eval.MODES:
            logger.info(
                "step %d evaluation on %s/%s (%s):\n%s", step, eval_name, eval_split, mode, tables[mode].to_text()
            )
        logger.info("evaluation took %.1fs", time.time() - tick)

    step = int(jax.device_get(state.step))
    logger.info("setup took %.1fs; training from step %d to %d", time.time() - t0, step, config.train_steps)
    last_eval = None
    stopped_by = None
    preempt = preemption.PreemptionGuard().install()  # SIGTERM: checkpoint at the next step boundary, exit 0
    try:
        while step < config.train_steps:
            batch = data.next_global_batch(config.batch_size, part.batch_sharding)
            state, metrics = step_fn(state, batch, dropout_rng)
            step += 1
            if guard is not None:
                guard.record(step, metrics)
            reporter.record(step, metrics)
            last = step == config.train_steps
            if step % config.log_period == 0 or last:
                if guard is not None:
                    guard.check()
                reporter.report(step)
            if checkpointer.should_save(step) or last:
                if guard is not None:
                    guard.check()  # never write the parameters of a non-finite step
                checkpointer.save(step, state, data.get_state())
            if not last and preempt.reached(step):
                if guard is not None:
                    guard.check()
                checkpointer.save(step, state, data.get_state())  # False (nothing written) if saved just above
                stopped_by = preempt.signal_name
                break
            if (config.eval_period and step % config.eval_period == 0) or (last and eval_at_end):
                if guard is not None:
                    guard.check()  # never evaluate the parameters of a non-finite step
                run_eval(step)
                last_eval = step
    except trainer.NonFiniteLossError as e:
        checkpointer.wait_until_finished()
        checkpointer.close()
        print(f"stopped: {e}", file=sys.stderr, flush=True)
        return EXIT_NON_FINITE
    finally:
        preempt.uninstall()
    if stopped_by is not None:
        checkpointer.wait_until_finished()
        checkpointer.close()
        reporter.flush()
        logger.info(
            "%s: saved checkpoint %d in %s and stopped; run the same command again to resume",
            stopped_by,
            step,
            checkpointer.directory,
        )
        return 0
    if eval_at_end and last_eval != step and step >= config.train_steps and eval_wanted:
        run_eval(step)  # a resumed run that was already complete still reports
    checkpointer.wait_until_finished()
    checkpointer.close()
    reporter.flush()
    logger.info("%s", data.totals_line())
    if jax.process_index() == 0:
        with open(os.path.join(model_dir, "train_done.json"), "w", encoding="utf-8") as f:
            json.dump({"step": step, "seconds": round(time.time() - t0, 1)}, f)
    logger.info("done at step %d (%.1fs)", step, time.time() - t0)
    return 0


def _user_errors():
    from iuie.training import user_errors

    return user_errors.user_errors()


def _register_tasks() -> None:
    import seqio_tasks  # noqa: F401  (registers the Tasks the gin files name)


def main(argv: Sequence[str] | None = None) -> int:
    return launch.binary_main(
        "python -m iuie.train",
        __doc__.splitlines()[0],
        train,
        argv,
        before_configure=_register_tasks,
        extra_errors=_user_errors,
    )


if __name__ == "__main__":
    # Run the imported module's main, so that gin configures the functions of ``iuie.train`` (the module gin
    # files import), not those of this ``__main__`` copy.
    from iuie import train as _module

    sys.exit(_module.main())
