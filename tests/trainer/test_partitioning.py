"""Partitioning: mesh arithmetic, the presets' PartitionSpecs, optimizer-state and batch shardings.

Reference: the golden specs written out below by hand from T5X's rule set (``t5x/partitioning.py``
``standard_logical_axis_rules``: batch->data, vocab/mlp/heads/joined_kv->model, embed->None or data for
parameter partitioning, kv/length/relpos_buckets replicated), for a stand-in module whose parameters carry
every logical axis name FlanT5 uses. Mesh sizes do not enter a PartitionSpec, so a one-device mesh suffices
here; eight-device execution is ``test_multidevice.py``.
"""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from iuie.training import partitioning


class StandIn(nn.Module):
    """Parameters with FlanT5's logical axis names and T5X's layouts, nothing else."""

    @nn.compact
    def __call__(self, tokens):
        init = nn.initializers.normal(0.02)
        param = lambda name, axes, shape: self.param(name, nn.with_logical_partitioning(init, axes), shape)
        embedding = param("embedding", ("vocab", "embed"), (64, 16))
        query = param("query", ("embed", "joined_kv"), (16, 32))
        out = param("out", ("joined_kv", "embed"), (32, 16))
        wi = param("wi", ("embed", "mlp"), (16, 48))
        wo = param("wo", ("mlp", "embed"), (48, 16))
        scale = param("scale", ("embed",), (16,))
        relpos = param("relpos", ("heads", "relpos_buckets"), (4, 8))
        split = param("split_query", ("embed", "heads", "kv"), (16, 4, 8))
        logits = param("logits", ("embed", "vocab"), (16, 64))
        x = embedding[tokens] * scale
        x = x + ((x @ query) @ out) + jnp.sum(split) + jnp.sum(relpos)
        x = x + jax.nn.gelu(x @ wi) @ wo
        return x @ logits


GOLDEN = {
    "data_parallel": {
        "embedding": (None, None),
        "query": (None, None),
        "out": (None, None),
        "wi": (None, None),
        "wo": (None, None),
        "scale": (None,),
        "relpos": (None, None),
        "split_query": (None, None, None),
        "logits": (None, None),
    },
    "fsdp": {
        "embedding": (None, "data"),
        "query": ("data", None),
        "out": (None, "data"),
        "wi": ("data", None),
        "wo": (None, "data"),
        "scale": ("data",),
        "relpos": (None, None),
        "split_query": ("data", None, None),
        "logits": ("data", None),
    },
    "2d": {
        "embedding": ("model", None),
        "query": (None, "model"),
        "out": ("model", None),
        "wi": (None, "model"),
        "wo": ("model", None),
        "scale": (None,),
        "relpos": ("model", None),
        "split_query": (None, "model", None),
        "logits": (None, "model"),
    },
    "2d_fsdp": {
        "embedding": ("model", "data"),
        "query": ("data", "model"),
        "out": ("model", "data"),
        "wi": ("data", "model"),
        "wo": ("model", "data"),
        "scale": ("data",),
        "relpos": ("model", None),
        "split_query": ("data", "model", None),
        "logits": ("data", "model"),
    },
}


def _padded(spec, ndim):
    entries = tuple(spec)
    return entries + (None,) * (ndim - len(entries))


def _abstract_boxed():
    init = lambda rng: StandIn().init(rng, jnp.zeros((2, 3), jnp.int32))["params"]
    return jax.eval_shape(init, jax.random.key(0))


@pytest.mark.parametrize("preset", sorted(GOLDEN))
def test_preset_param_specs_match_golden(preset):
    boxed = _abstract_boxed()
    partitioner = partitioning.Partitioner.create(preset)
    specs = partitioner.param_specs(boxed)
    shapes = nn.meta.unbox(boxed)
    got = {name: _padded(spec, len(shapes[name].shape)) for name, spec in specs.items()}
    assert got == GOLDEN[preset]
    shardings = partitioner.param_shardings(boxed)
    assert {name: _padded(s.spec, len(shapes[name].shape)) for name, s in shardings.items()} == GOLDEN[preset]


def test_activation_rules_keep_the_batch_on_data_under_fsdp():
    # ('batch', 'length', 'embed'): 'batch' takes 'data' first, so 'embed' (which params shard over data)
    # stays whole in activations.
    for preset in ("fsdp", "2d_fsdp"):
        partitioner = partitioning.Partitioner.create(preset)
        assert tuple(partitioner.logical_to_mesh(("batch", "length", "embed"))) == ("data", None, None)
    assert tuple(partitioning.Partitioner.create("2d").logical_to_mesh(("batch", "length", "mlp"))) == (
        "data",
        None,
        "model",
    )


def test_rule_overrides_take_precedence():
    rules = partitioning.get_rules("2d", overrides=[("mlp", None), ("vocab", ["data", "model"])])
    assert tuple(nn.logical_to_mesh_axes(("embed", "mlp"), rules)) == (None, None)
    assert tuple(nn.logical_to_mesh_axes(("vocab", "embed"), rules)) == (("data", "model"), None)


def test_unknown_preset_and_uncovered_axis_are_errors():
    with pytest.raises(ValueError, match="unknown partitioning preset"):
        partitioning.get_rules("zero3")

    class Odd(nn.Module):
        @nn.compact
        def __call__(self, x):
            return x * self.param("w", nn.with_logical_partitioning(nn.initializers.ones, ("experts",)), (4,))

    boxed = jax.eval_shape(lambda rng: Odd().init(rng, jnp.ones(4))["params"], jax.random.key(0))
    with pytest.raises(ValueError, match="experts"):
        partitioning.Partitioner.create("fsdp").param_shardings(boxed)


@pytest.mark.parametrize(
    "shape, devices, expected",
    [((-1, 1), 8, (8, 1)), ((-1, 2), 8, (4, 2)), ((2, -1), 8, (2, 4)), ((8, 8), 64, (8, 8)), ((-1, 8), 64, (8, 8))],
)
def test_resolve_mesh_shape(shape, devices, expected):
    assert partitioning.resolve_mesh_shape(shape, devices) == expected


@pytest.mark.parametrize("shape, devices", [((-1, 3), 8), ((-1, -1), 8), ((2, 2), 8), ((0, -1), 8)])
def test_resolve_mesh_shape_errors(shape, devices):
    with pytest.raises(ValueError):
        partitioning.resolve_mesh_shape(shape, devices)


def test_make_mesh_on_the_local_devices():
    mesh = partitioning.make_mesh((-1, 1))
    assert mesh.axis_names == ("data", "model")
    assert dict(mesh.shape) == {"data": jax.device_count(), "model": 1}
    assert all(t == jax.sharding.AxisType.Auto for t in mesh.axis_types)
    # The 2d preset's default model axis shrinks to what the devices allow (one CPU device here).
    assert partitioning.Partitioner.create("2d").mesh.devices.size == jax.device_count()


def _params_and_shardings(preset):
    partitioner = partitioning.Partitioner.create(preset)
    boxed = jax.eval_shape(
        lambda: {
            "tall": nn.LogicallyPartitioned(jnp.zeros((256, 128)), ("embed", "mlp")),
            "square": nn.LogicallyPartitioned(jnp.zeros((128, 128)), ("mlp", "embed")),
            "scale": nn.LogicallyPartitioned(jnp.zeros((128,)), ("embed",)),
        }
    )
    return partitioner, nn.meta.unbox(boxed), partitioner.param_shardings(boxed)


def _spec_tree(shardings):
    return jax.tree.map(lambda s: tuple(s.spec), shardings, is_leaf=lambda s: isinstance(s, jax.sharding.Sharding))


def test_adafactor_state_follows_the_params():
    partitioner, params, shardings = _params_and_shardings("2d_fsdp")
    tx = optax.adafactor(1e-3)  # factors dims >= 128
    state = _spec_tree(partitioner.optimizer_state_shardings(tx, params, shardings))
    factored = state[0]
    # tall (256, 128) is ('data', 'model'): v_row averages over its largest dim (0) -> ('model',); v_col
    # over dim 1 -> ('data',).
    assert factored.v_row["tall"] == ("model",)
    assert factored.v_col["tall"] == ("data",)
    # square: the shape cannot tell which dim was reduced -> replicated (a vector: no memory to speak of).
    assert factored.v_row["square"] == () and factored.v_col["square"] == ()
    # 1-D params keep an unfactored v of their own shape and sharding.
    assert factored.v["scale"] == ("data",)
    assert factored.v["tall"] == ()  # the (1,) placeholder
    assert factored.count == ()
    shapes = jax.eval_shape(tx.init, params)[0]
    assert shapes.v_row["tall"].shape == (128,) and shapes.v_col["tall"].shape == (256,)


def test_adamw_moments_follow_the_params():
    partitioner, params, shardings = _params_and_shardings("fsdp")
    tx = optax.chain(optax.clip_by_global_norm(1.0), optax.adamw(1e-3))
    state = _spec_tree(partitioner.optimizer_state_shardings(tx, params, shardings))
    adam = state[1][0]
    expected = _spec_tree(shardings)
    assert adam.mu == expected and adam.nu == expected
    assert expected["tall"] == ("data", None)
    assert adam.count == ()


def test_batch_shardings_and_global_batch():
    partitioner = partitioning.Partitioner.create("2d_fsdp")
    batch = {"encoder_input_tokens": np.arange(12, dtype=np.int32).reshape(4, 3), "weights": np.ones((4,))}
    shardings = partitioner.batch_shardings(batch)
    assert tuple(shardings["encoder_input_tokens"].spec) == ("data", None)
    assert tuple(shardings["weights"].spec) == ("data",)
    assert partitioner.data_parallel_size == jax.device_count()
    arrays = partitioner.global_batch(batch)
    np.testing.assert_array_equal(np.asarray(arrays["encoder_input_tokens"]), batch["encoder_input_tokens"])
    assert arrays["encoder_input_tokens"].sharding == shardings["encoder_input_tokens"]


def test_flan_t5_parameters_under_2d_fsdp():
    # The real network's names (iuie.model.network, T5X's tree): spot checks; a full golden JSON of every
    # parameter can sit beside this test.
    from tests.trainer import harness

    model = harness.make_model()
    boxed = jax.eval_shape(harness.init_params_fn(model), jax.random.key(0))
    specs = partitioning.Partitioner.create("2d_fsdp").param_specs(boxed)
    assert tuple(specs["token_embedder"]["embedding"]) == ("model", "data")
    assert tuple(specs["encoder"]["layers_0"]["attention"]["query"]["kernel"]) == ("data", "model")
    assert tuple(specs["encoder"]["layers_0"]["attention"]["out"]["kernel"]) == ("model", "data")
    assert tuple(specs["decoder"]["layers_0"]["mlp"]["wo"]["kernel"]) == ("model", "data")
    assert tuple(specs["decoder"]["logits_dense"]["kernel"]) == ("data", "model")
    assert tuple(specs["decoder"]["relpos_bias"]["rel_embedding"]) == ("model", None)
    assert tuple(specs["encoder"]["encoder_norm"]["scale"]) == ("data",)


# ------------------------------------------------------------------------------------------------------------
# Presets are gin data (DESIGN decision 2): gin/partitioning/<name>.gin holds the rules; Python loads and
# validates them. Reference: T5X's standard_logical_axis_rules (the same pairs, written out here by hand).

T5X_2D_RULES = (
    ("batch", "data"),
    ("vocab", "model"),
    ("embed", None),
    ("mlp", "model"),
    ("heads", "model"),
    ("joined_kv", "model"),
    ("kv", None),
    ("length", None),
    ("relpos_buckets", None),
    ("abspos_buckets", None),
    ("layers", None),
    ("stack", None),
    ("mlp_activations", None),
)


def test_every_preset_is_a_gin_file_with_its_rules():
    assert partitioning.available_presets() == sorted(partitioning.PRESET_NAMES)
    for name in partitioning.PRESET_NAMES:
        preset = partitioning.PRESETS[name]
        assert preset.path.endswith(f"gin/partitioning/{name}.gin") and preset.name == name
        assert {rule for rule, _ in preset.rules} == set(partitioning.LOGICAL_AXES)
    assert partitioning.load_preset("2d").rules == T5X_2D_RULES
    assert partitioning.load_preset("2d").mesh_shape == (-1, 2)
    assert dict(partitioning.load_preset("2d_fsdp").rules)["embed"] == "data"


@pytest.mark.parametrize("name", ["data_parallel", "fsdp", "2d", "2d_fsdp"])
def test_including_a_preset_file_gives_the_named_preset(name):
    """--gin_file=partitioning/<name>.gin (what a user adds) and Partitioner.create(<name>) agree."""
    import gin
    from iuie.runtime import gin_flags
    from iuie.training import configs

    gin_flags.parse(["t5x_configs/demo_cpu.gin", f"partitioning/{name}.gin"], ["MODEL_DIR = '/tmp/m'"])
    try:
        config = gin.get_configurable(configs.TrainConfig)().partitioning
    finally:
        gin.clear_config(clear_constants=True)
    assert config.preset == name and config.rules is not None
    from_gin = partitioning.Partitioner.from_config(config)
    assert from_gin.rules == partitioning.Partitioner.create(name).rules
    assert from_gin.mesh.shape == partitioning.Partitioner.create(name).mesh.shape


def test_rebinding_the_preset_name_alone_is_refused():
    """The rules came from fsdp.gin; renaming the preset would silently keep them."""
    from iuie.training import configs

    fsdp = partitioning.load_preset("fsdp")
    config = configs.PartitioningConfig(preset="2d", rules=fsdp.rules, default_mesh_shape=fsdp.mesh_shape)
    with pytest.raises(partitioning.PresetError, match="differ from those of preset '2d'"):
        partitioning.Partitioner.from_config(config)
    own = configs.PartitioningConfig(preset="mine", rules=fsdp.rules, default_mesh_shape=(-1, 1))
    assert partitioning.Partitioner.from_config(own).rules == fsdp.rules  # a custom preset of one's own


@pytest.mark.parametrize(
    "rules, message",
    [
        ([("batch", "dta")] + list(T5X_2D_RULES[1:]), "mesh axis 'dta'"),
        (T5X_2D_RULES[:-1], r"no rule for the logical axes \['mlp_activations'\]"),
        ([("batch",)] + list(T5X_2D_RULES[1:]), "rule 0"),
    ],
)
def test_malformed_rules_are_one_line_errors(rules, message):
    with pytest.raises(partitioning.PresetError, match=message) as info:
        partitioning.validate_rules(rules, "my.gin")
    assert str(info.value).startswith("my.gin: ") and "\n" not in str(info.value)


def test_a_preset_file_must_hold_literal_rules(tmp_path, monkeypatch):
    from iuie.runtime import gin_flags

    (tmp_path / "partitioning").mkdir()
    (tmp_path / "partitioning" / "odd.gin").write_text(
        "configs.PartitioningConfig:\n  preset = 'odd'\n  default_mesh_shape = (-1, 1)\n  rules = %RULES\n"
    )
    monkeypatch.setattr(gin_flags, "config_roots", lambda: [str(tmp_path)])
    partitioning.load_preset.cache_clear()
    try:
        with pytest.raises(partitioning.PresetError, match="literal rules only, not %RULES"):
            partitioning.load_preset("odd")
    finally:
        partitioning.load_preset.cache_clear()
