"""Orbax checkpoints of the train state and data position; starting weights in iuie, Hugging Face and T5X form.

References: the arrays that were saved (round trips must be exact); a fresh, uninterrupted pass over the
same deterministic tf.data pipeline (for the iterator position); the T5X on-disk format as written by
``tests/interop/conftest.py``'s ``write_t5x_checkpoint`` (a transcription of T5X's ``Checkpointer.save``)
and the Hugging Face format as written by ``iuie.interop.hf.save_hf``.
"""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from iuie.training import checkpoints, configs, optimizers, partitioning, trainer
from tests.trainer import harness


@pytest.fixture(scope="module")
def setup():
    """The tiny FlanT5, its layout under the fsdp preset, a random train state and its parameters."""
    model = harness.make_model()
    tx, _ = optimizers.make_optimizer(configs.OptimizerConfig())
    partitioner = partitioning.Partitioner.create("fsdp")
    init_fn = harness.init_params_fn(model)
    layout = trainer.abstract_state(init_fn, tx, partitioner)
    state = trainer.init_state(init_fn, tx, layout, jax.random.key(7))
    return model, tx, layout, state


def _assert_same(a, b):
    for (path, x), y in zip(jax.tree_util.tree_leaves_with_path(a), jax.tree.leaves(b), strict=True):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y), err_msg=jax.tree_util.keystr(path))


def test_save_restore_round_trip_with_data_position(tmp_path, setup):
    _, _, layout, state = setup
    with checkpoints.Checkpointer(str(tmp_path / "ckpt"), period=2, keep=2, async_checkpointing=True) as ckpt:
        assert [ckpt.should_save(s) for s in range(5)] == [False, False, True, False, True]
        for step in (2, 4, 6):
            assert ckpt.save(step, state, {"position": step * 10})
        assert not ckpt.save(6, state, {"position": 0})  # a step is written once
        ckpt.wait_until_finished()
        assert ckpt.all_steps() == [4, 6] and ckpt.latest_step() == 6  # keep = 2
        restored, data_state = ckpt.restore(layout.abstract)
        assert data_state == {"position": 60}
        _, data_state = ckpt.restore(layout.abstract, step=4)
        assert data_state == {"position": 40}
    _assert_same(restored, state)
    assert isinstance(restored, trainer.TrainState)
    leaf = restored.params["token_embedder"]["embedding"]
    assert leaf.sharding == layout.shardings.params["token_embedder"]["embedding"]


def test_restore_from_an_empty_directory_says_so(tmp_path, setup):
    with checkpoints.Checkpointer(str(tmp_path / "empty")) as ckpt:
        assert ckpt.latest_step() is None
        with pytest.raises(FileNotFoundError, match="no checkpoint"):
            ckpt.restore(setup[2].abstract)


def test_resumable_iterator_over_a_deterministic_tf_data_pipeline():
    import tensorflow as tf

    def dataset():
        # seqio-like: shuffle with a fixed seed, repeat, batch; deterministic, so a position is enough.
        ds = tf.data.Dataset.range(50).shuffle(50, seed=3, reshuffle_each_iteration=True).repeat().batch(4)
        return ds

    def make_iterator(start):
        return dataset().skip(start).as_numpy_iterator()

    fresh = [batch.tolist() for _, batch in zip(range(20), make_iterator(0))]
    first = checkpoints.ResumableIterator(make_iterator)
    seen = [next(first).tolist() for _ in range(13)]
    state = first.get_state()
    assert state == {"position": 13}
    second = checkpoints.ResumableIterator(make_iterator)
    second.set_state(state)
    seen += [next(second).tolist() for _ in range(7)]
    assert seen == fresh  # crosses an epoch boundary (50 examples / 4 per batch) too
    assert second.position == 20


def test_initial_params_from_an_iuie_training_checkpoint(tmp_path, setup):
    _, _, layout, state = setup
    with checkpoints.Checkpointer(str(tmp_path / "run"), async_checkpointing=False) as ckpt:
        ckpt.save(3, state, {"position": 3})
    for path in (tmp_path / "run", tmp_path / "run" / "3"):  # the manager folder or one step folder
        params = checkpoints.load_initial_params(str(path), layout.abstract.params)
        _assert_same(params, state.params)
        leaf = params["decoder"]["logits_dense"]["kernel"]
        assert leaf.sharding == layout.shardings.params["decoder"]["logits_dense"]["kernel"]


def _host_params(state):
    return jax.tree.map(np.asarray, jax.device_get(state.params))


def test_initial_params_from_hugging_face_exported_iuie_and_t5x(tmp_path, setup):
    from iuie.interop import hf, t5x
    from tests.interop.conftest import t5x_train_state, write_t5x_checkpoint

    model, _, layout, state = setup
    params = _host_params(state)
    hf.save_hf(params, model.config, str(tmp_path / "hf"))
    _assert_same(checkpoints.load_initial_params(str(tmp_path / "hf"), layout.abstract.params), params)

    t5x.save_iuie(params, model.config, str(tmp_path / "exported"))  # iuie's export format
    _assert_same(checkpoints.load_initial_params(str(tmp_path / "exported"), layout.abstract.params), params)

    write_t5x_checkpoint(str(tmp_path / "t5x" / "checkpoint_1000"), t5x_train_state(params))
    loaded = checkpoints.load_initial_params(str(tmp_path / "t5x" / "checkpoint_1000"), layout.abstract.params)
    _assert_same(loaded, params)
    assert loaded["encoder"]["layers_0"]["mlp"]["wi_0"]["kernel"].dtype == jnp.float32


def test_initial_params_that_do_not_fit_the_model_are_refused(tmp_path, setup):
    # A consistent checkpoint of another model size (d_ff 48 instead of 64): the reader accepts it, the
    # check against the model being trained does not.
    from iuie.interop import hf

    _, _, layout, _ = setup
    other = harness.make_model(mlp_dim=48)
    shapes = jax.eval_shape(lambda r: nn.meta.unbox(harness.init_params_fn(other)(r)), jax.random.key(0))
    hf.save_hf(jax.tree.map(lambda a: np.zeros(a.shape, a.dtype), shapes), other.config, str(tmp_path / "other"))
    with pytest.raises(ValueError, match=r"mlp.*wo.*kernel.*shape \(48, 32\), model wants \(64, 32\)"):
        checkpoints.load_initial_params(str(tmp_path / "other"), layout.abstract.params)


def test_restore_or_initialize_prefers_resume_then_initial_checkpoint_then_random(tmp_path, setup):
    model, tx, layout, state = setup
    init_fn = harness.init_params_fn(model)
    with checkpoints.Checkpointer(str(tmp_path / "source"), async_checkpointing=False) as source:
        source.save(5, state, {"position": 5})

    with checkpoints.Checkpointer(str(tmp_path / "run")) as ckpt:
        fresh = checkpoints.restore_or_initialize(ckpt, layout, tx, init_fn, jax.random.key(7))
        assert fresh.source == "random initialisation" and fresh.data_state == {}
        _assert_same(fresh.state.params, state.params)  # same seed, same parameters

        warm = checkpoints.restore_or_initialize(
            ckpt, layout, tx, init_fn, jax.random.key(0), initial_checkpoint_path=str(tmp_path / "source")
        )
        assert warm.source.startswith("initial checkpoint") and int(warm.state.step) == 0
        _assert_same(warm.state.params, state.params)

        full = checkpoints.restore_or_initialize(
            ckpt,
            layout,
            tx,
            init_fn,
            jax.random.key(0),
            initial_checkpoint_path=str(tmp_path / "source"),
            restore_optimizer_state=True,
        )
        assert isinstance(full.state, trainer.TrainState)
        _assert_same(full.state, state)

        ckpt.save(8, warm.state, {"position": 8})
        ckpt.wait_until_finished()
        resumed = checkpoints.restore_or_initialize(
            ckpt, layout, tx, init_fn, jax.random.key(0), initial_checkpoint_path=str(tmp_path / "source")
        )
        assert resumed.source.endswith("step 8") and resumed.data_state == {"position": 8}


# ------------------------------------------------------------------------------------------------------------
# Damaged checkpoints: real Orbax step folders of the tiny FlanT5, damaged on disk the three ways a killed
# copy, a full disk or a bad sync leaves them. Reference: the states that were saved (the restored one must be
# exactly the newest intact one) and the files on disk (nothing deleted).


def _three_steps(tmp_path, setup):
    _, _, layout, state = setup
    directory = tmp_path / "ckpt" / "checkpoints"
    with checkpoints.Checkpointer(str(directory), period=1, keep=None, async_checkpointing=False) as ckpt:
        for step in (1, 2, 3):
            ckpt.save(step, state, {"position": 10 * step})
    return directory


def _damage(step_dir, kind):
    import pathlib

    step_dir = pathlib.Path(step_dir)
    if kind == "truncated array file":
        files = sorted(
            (p for p in (step_dir / "state").rglob("*") if p.is_file() and p.parent.name == "d"),
            key=lambda p: p.stat().st_size,
        )
        victim = files[-1]  # the largest: array data
    elif kind == "missing data item":
        import shutil

        shutil.rmtree(step_dir / "data")
        return
    else:
        victim = step_dir / "state" / "_METADATA"
    size = victim.stat().st_size
    with open(victim, "r+b") as f:
        f.truncate(size // 2)


@pytest.mark.parametrize("kind", ["truncated array file", "missing data item", "truncated _METADATA"])
def test_damaged_latest_checkpoint_restores_the_newest_intact_one(tmp_path, setup, kind, caplog):
    _, tx, layout, state = setup
    directory = _three_steps(tmp_path, setup)
    _damage(directory / "3", kind)
    files_before = sorted(p.relative_to(directory / "3") for p in (directory / "3").rglob("*"))
    ckpt = checkpoints.Checkpointer(str(directory), period=1, keep=None, async_checkpointing=False)
    with caplog.at_level("WARNING", logger="iuie.checkpoints"):
        start = checkpoints.restore_or_initialize(ckpt, layout, tx, None, jax.random.key(0))
    ckpt.close()
    assert start.source == f"resumed from {directory} step 2" and start.data_state == {"position": 20}
    _assert_same(start.state, state)
    lines = [r.getMessage() for r in caplog.records if r.name == "iuie.checkpoints"]
    assert len(lines) == 1 and "\n" not in lines[0], lines
    assert lines[0].startswith(f"checkpoint {directory / '3'} is damaged (")
    # Never deleted: moved beside the checkpoints, every remaining file still there, out of the step list.
    moved = directory.parent / checkpoints.DAMAGED_DIR / "3"
    assert str(moved) in lines[0]
    assert sorted(p.relative_to(moved) for p in moved.rglob("*")) == files_before
    assert sorted(p.name for p in directory.iterdir() if p.name.isdigit()) == ["1", "2"]


def test_every_checkpoint_damaged_is_one_error(tmp_path, setup):
    _, tx, layout, _ = setup
    directory = _three_steps(tmp_path, setup)
    for step in (1, 2, 3):
        _damage(directory / str(step), "truncated _METADATA")
    with checkpoints.Checkpointer(str(directory), period=1, keep=None, async_checkpointing=False) as ckpt:
        with pytest.raises(checkpoints.CheckpointError, match="every checkpoint in .* is damaged") as info:
            checkpoints.restore_or_initialize(ckpt, layout, tx, None, jax.random.key(0))
    assert "\n" not in str(info.value)


def test_checkpoint_of_another_model_shape_is_refused_in_one_line(tmp_path, setup):
    """Not damage: nothing is moved, and the message names a parameter and both shapes."""
    directory = _three_steps(tmp_path, setup)
    wider = harness.make_model(emb_dim=48)
    tx, _ = optimizers.make_optimizer(configs.OptimizerConfig())
    other = trainer.abstract_state(harness.init_params_fn(wider), tx, partitioning.Partitioner.create("fsdp"))
    with checkpoints.Checkpointer(str(directory), period=1, keep=None, async_checkpointing=False) as ckpt:
        with pytest.raises(checkpoints.CheckpointShapeError, match="holds a model of another shape") as info:
            checkpoints.restore_or_initialize(ckpt, other, tx, None, jax.random.key(0))
    message = str(info.value)
    assert "\n" not in message and ", model wants (" in message and "48" in message
    assert sorted(p.name for p in directory.iterdir() if p.name.isdigit()) == ["1", "2", "3"]
    assert not (directory.parent / checkpoints.DAMAGED_DIR).exists()
