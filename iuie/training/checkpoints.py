"""The one checkpoint path: Orbax, for the train state and the data position together.

A training checkpoint is a step folder of Orbax's ``CheckpointManager`` (wrapped by :class:`Checkpointer`)
with two items::

    MODEL_DIR/checkpoints/<step>/state/   the TrainState (step, params, optimizer state), sharded arrays
    MODEL_DIR/checkpoints/<step>/data/    JSON: the data iterator's position after <step> steps

**Exact resume.** The data pipeline is deterministic (fixed shuffle seed, no order-changing parallelism), so
"which batch comes next" is a single number: the batches consumed so far. ``ResumableIterator`` wraps a
``make_iterator(start)`` factory (for tf.data / seqio: ``ds.repeat().skip(start)``) and counts what the
train loop consumed; its ``get_state()`` is saved with the train state of the same step, and ``set_state``
rebuilds the iterator at that position. After a crash, the restarted run restores the newest complete
checkpoint, state and position together, and continues with the first batch no saved state has seen: no
batch twice, none skipped. A batch is counted when the loop takes it, so a loop that prefetches must save the
position of the batches it has *trained on* (pass ``data_state`` explicitly). Every host consumes the same
number of (host-local) batches, so one position serves all hosts.

**Safety.** Orbax writes a step into a temporary folder and renames it when complete, so a crash mid-write
leaves no half checkpoint behind for ``latest_step`` to find. Damage after the fact (a truncated array file, a
lost ``data/`` item, a truncated ``_METADATA``) is caught at restore: ``restore_newest_intact`` logs one line
naming the step, moves it to ``MODEL_DIR/damaged_checkpoints/`` (never deleted) and restores the next older
one; a checkpoint of another model shape is refused in one line instead (``CheckpointShapeError``). The train loop checks for a non-finite loss
(``trainer.TerminateOnNan.check``) before every ``save``, so no checkpoint of NaN parameters is written.

**Starting weights** (``INITIAL_CHECKPOINT_PATH``, used when ``MODEL_DIR`` has no checkpoint yet) are read
by the one checkpoint reader, :func:`iuie.interop.reader.read_params`: an iuie training run or step folder
(read directly into the target shardings), an exported iuie folder, a Hugging Face or a T5X checkpoint. The
on-disk layout (``STATE_ITEM``, ``DATA_ITEM``) is defined there too, beside the other formats.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import re
import shutil
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import jax
import orbax.checkpoint as ocp

from iuie.interop import reader
from iuie.interop.reader import DATA_ITEM, STATE_ITEM
from iuie.training import trainer

# Where a damaged step folder is moved (beside MODEL_DIR/checkpoints, outside Orbax's reach): kept for
# inspection, never deleted, and out of the way of the step number the resumed run will write again.
DAMAGED_DIR = "damaged_checkpoints"
_STEP_DIR = re.compile(r"^\d+$")

logger = logging.getLogger("iuie.checkpoints")


class CheckpointError(ValueError):
    """A checkpoint that cannot serve this run, said in one line (the binaries exit with status 2)."""


class CheckpointShapeError(CheckpointError):
    """The checkpoint holds parameters of another shape than the configured model."""


def _first_line(error: BaseException, limit: int = 200) -> str:
    text = str(error).strip().splitlines()
    # TensorStore appends a pointer to its details (a bound-method repr) to the one useful sentence.
    line = text[0].split(" See full TensorStore details")[0] if text else ""
    return f"{type(error).__name__}: {line[:limit]}" if line else type(error).__name__


class ResumableIterator:
    """A deterministic iterator of batches that knows its position and can restart there.

    ``make_iterator(start)`` must return an iterator whose first element is batch number ``start`` of the
    deterministic sequence (e.g. ``lambda start: ds.skip(start).as_numpy_iterator()`` for a repeated,
    seeded tf.data dataset; seqio's ``get_dataset(..., shuffle=True, seed=S)`` is deterministic).
    """

    def __init__(self, make_iterator: Callable[[int], Iterator[Any]], position: int = 0):
        self._make_iterator = make_iterator
        self._position = int(position)
        self._iterator = make_iterator(self._position)

    @property
    def position(self) -> int:
        """Batches handed out so far (the index of the next one)."""
        return self._position

    def __iter__(self) -> ResumableIterator:
        return self

    def __next__(self) -> Any:
        batch = next(self._iterator)
        self._position += 1
        return batch

    def get_state(self) -> dict[str, int]:
        return {"position": self._position}

    def set_state(self, state: Mapping[str, Any]) -> None:
        self._position = int(state["position"])
        self._iterator = self._make_iterator(self._position)


class Checkpointer:
    """Orbax ``CheckpointManager`` over the train state and the data position (see the module docstring).

    Args:
      directory: where step folders go (e.g. ``MODEL_DIR/checkpoints``).
      period: ``should_save(step)`` is true every ``period`` steps (0: never; the loop still forces the last).
      keep: keep the newest N steps (None: all).
      async_checkpointing: return from ``save`` once arrays are copied to host memory and write in a
        background thread (the train state can then be donated to the next step safely).
    """

    def __init__(self, directory: str, *, period: int = 1000, keep: int | None = 3, async_checkpointing: bool = True):
        self.directory = os.path.abspath(directory)
        self.period = int(period)
        options = ocp.CheckpointManagerOptions(
            max_to_keep=keep,
            enable_async_checkpointing=async_checkpointing,
            cleanup_tmp_directories=True,  # remove what a killed run left half-written
            create=True,
        )
        self._manager = ocp.CheckpointManager(self.directory, options=options, item_names=(STATE_ITEM, DATA_ITEM))

    @classmethod
    def from_config(cls, directory: str, config: Any) -> Checkpointer:
        """From a ``configs.CheckpointConfig``."""
        return cls(directory, period=config.period, keep=config.keep, async_checkpointing=config.async_checkpointing)

    def should_save(self, step: int) -> bool:
        return self.period > 0 and step > 0 and step % self.period == 0

    def save(self, step: int, state: trainer.TrainState, data_state: Mapping[str, Any] | None = None) -> bool:
        """Writes ``state`` and ``data_state`` (JSON-able) as step ``step``; False if that step exists."""
        step = int(step)
        if step in self._manager.all_steps():
            return False
        args = ocp.args.Composite(
            **{STATE_ITEM: ocp.args.StandardSave(state), DATA_ITEM: ocp.args.JsonSave(dict(data_state or {}))}
        )
        return self._manager.save(step, args=args, force=True)

    def latest_step(self) -> int | None:
        return self._manager.latest_step()

    def all_steps(self) -> list[int]:
        return sorted(self._manager.all_steps())

    def restore(
        self, abstract_state: trainer.TrainState, step: int | None = None
    ) -> tuple[trainer.TrainState, dict[str, Any]]:
        """``(state, data_state)`` of ``step`` (default: the newest), arrays in ``abstract_state``'s shardings."""
        step = self.latest_step() if step is None else step
        if step is None:
            raise FileNotFoundError(f"no checkpoint in {self.directory}")
        args = ocp.args.Composite(
            **{STATE_ITEM: ocp.args.StandardRestore(abstract_state), DATA_ITEM: ocp.args.JsonRestore()}
        )
        restored = self._manager.restore(step, args=args)
        return restored[STATE_ITEM], dict(restored[DATA_ITEM] or {})

    def step_dir(self, step: int) -> str:
        return os.path.join(self.directory, str(int(step)))

    def check_shapes(self, abstract_state: trainer.TrainState, step: int) -> None:
        """Raises :class:`CheckpointShapeError` when step ``step`` holds parameters whose names or shapes differ
        from ``abstract_state``'s (another model config); other failures (unreadable metadata) propagate."""
        from iuie.runtime import gin_flags

        # Orbax notes at warning level that an item folder has no step metadata (true, and expected) and that
        # unreadable metadata could not be read (reported below, in iuie's own line).
        quiet = [gin_flags.DropMessages("Metadata file does not exist"), gin_flags.DropMessages("Failed to get item")]
        for f in quiet:
            logging.getLogger("absl").addFilter(f)
        try:
            metadata = ocp.StandardCheckpointer().metadata(os.path.join(self.step_dir(step), STATE_ITEM))
        finally:
            for f in quiet:
                logging.getLogger("absl").removeFilter(f)
        tree = getattr(metadata, "item_metadata", metadata)
        tree = getattr(tree, "tree", tree)
        saved = tree["params"] if isinstance(tree, Mapping) and "params" in tree else None
        if saved is None:
            raise CheckpointError(f"the metadata of its {STATE_ITEM}/ item is unreadable (a truncated _METADATA?)")
        try:
            reader.check_tree(saved, abstract_state.params, "")
        except ValueError as e:
            raise CheckpointShapeError(
                f"{self.step_dir(step)} holds a model of another shape than the configured one "
                f"({str(e).removeprefix(': parameters do not match the model: ')}): resume with the gin config "
                "that wrote it (MODEL_DIR/config.gin) or train the new shape in a new MODEL_DIR"
            ) from None

    def set_aside(self, step: int) -> str:
        """Moves step ``step`` to ``<MODEL_DIR>/damaged_checkpoints/<step>`` (process 0; every process waits),
        out of Orbax's step list; returns the new path. Nothing is deleted."""
        target_root = os.path.join(os.path.dirname(self.directory), DAMAGED_DIR)
        target = os.path.join(target_root, str(int(step)))
        suffix = 1
        while os.path.exists(target):
            target = os.path.join(target_root, f"{int(step)}.{suffix}")
            suffix += 1
        if jax.process_index() == 0:
            os.makedirs(target_root, exist_ok=True)
            shutil.move(self.step_dir(step), target)
        if jax.process_count() > 1:
            from jax.experimental import multihost_utils

            multihost_utils.sync_global_devices(f"iuie set aside checkpoint {step}")
        self._manager.reload()
        return target

    def restore_newest_intact(
        self, abstract_state: trainer.TrainState
    ) -> tuple[int, trainer.TrainState, dict[str, Any]] | None:
        """``(step, state, data_state)`` of the newest checkpoint that restores, or None when there is none.

        A step that fails to restore (a truncated array file, a missing ``data/`` item, a truncated
        ``_METADATA``, ...) is logged in one line, moved aside (:meth:`set_aside`) and the next older one is
        tried. A checkpoint of another model shape is not damage: :class:`CheckpointShapeError` at once. When
        every checkpoint is damaged, :class:`CheckpointError` names them.
        """
        damaged = []
        for step in sorted(self.all_steps(), reverse=True):
            try:
                self.check_shapes(abstract_state, step)
                state, data_state = self.restore(abstract_state, step)
            except CheckpointShapeError:
                raise
            except Exception as e:  # noqa: BLE001 (Orbax, TensorStore and JSON each raise their own kinds)
                moved = self.set_aside(step)
                logger.warning(
                    "checkpoint %s is damaged (%s); moved to %s, restoring the previous one",
                    self.step_dir(step),
                    _first_line(e),
                    moved,
                )
                damaged.append(moved)
                continue
            return step, state, data_state
        if damaged:
            raise CheckpointError(
                f"every checkpoint in {self.directory} is damaged (moved to {', '.join(damaged)}): start a new "
                "MODEL_DIR, or set INITIAL_CHECKPOINT_PATH to weights to start from"
            )
        return None

    def wait_until_finished(self) -> None:
        self._manager.wait_until_finished()

    def close(self) -> None:
        self._manager.close()

    def __enter__(self) -> Checkpointer:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


# ------------------------------------------------------------------------------------------------------------
# Starting weights.


def load_initial_params(path: str, abstract_params: Any) -> Any:
    """Parameters from ``INITIAL_CHECKPOINT_PATH``, checked against the model and placed in its shardings.

    ``abstract_params``: ``jax.ShapeDtypeStruct`` leaves with shardings (``StateLayout.abstract.params``);
    the result has their dtypes and shardings (:func:`iuie.interop.reader.read_params` reads any format).
    """
    return reader.read_params(path, abstract_params).params


@dataclasses.dataclass(frozen=True)
class StartingPoint:
    """What ``restore_or_initialize`` found: the state, the data position, and where they came from."""

    state: trainer.TrainState
    data_state: dict[str, Any]
    source: str  # 'resumed from <dir> step N', 'initial checkpoint <path>', or 'random initialisation'


def restore_or_initialize(
    checkpointer: Checkpointer,
    layout: trainer.StateLayout,
    optimizer: Any,
    init_params_fn: Callable[[jax.Array], Any],
    rng: jax.Array,
    initial_checkpoint_path: str | None = None,
    restore_optimizer_state: bool = False,
) -> StartingPoint:
    """T5X's order: resume this run's newest checkpoint; else start from ``initial_checkpoint_path``
    (parameters, plus optimizer state and step with ``restore_optimizer_state`` for an iuie training
    checkpoint); else initialise at random from ``rng``."""
    resumed = checkpointer.restore_newest_intact(layout.abstract)
    if resumed is not None:
        step, state, data_state = resumed
        return StartingPoint(state, data_state, f"resumed from {checkpointer.directory} step {step}")
    if initial_checkpoint_path:
        state_dir = reader.training_state_dir(initial_checkpoint_path)
        if restore_optimizer_state and state_dir is not None:
            restored = ocp.StandardCheckpointer().restore(state_dir, layout.abstract)
            source = f"initial checkpoint {initial_checkpoint_path} (with optimizer state)"
            return StartingPoint(restored, {}, source)
        params = load_initial_params(initial_checkpoint_path, layout.abstract.params)
        state = trainer.state_from_params(params, optimizer, layout)
        return StartingPoint(state, {}, f"initial checkpoint {initial_checkpoint_path}")
    return StartingPoint(trainer.init_state(init_params_fn, optimizer, layout, rng), {}, "random initialisation")
