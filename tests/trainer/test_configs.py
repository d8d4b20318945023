"""Trainer configs: gin configures the plain dataclasses through dynamic registration; validation.

Reference: gin's documented ``from __gin__ import dynamic_registration`` semantics (the binding applies to
the imported object; no decorator in the library).
"""

from __future__ import annotations

import pytest

import gin
from iuie.training import configs, optimizers, partitioning

GIN = """
from __gin__ import dynamic_registration
from iuie.training import configs

TRAIN_STEPS = 300
BATCH_SIZE = 32

configs.TrainConfig:
  train_steps = %TRAIN_STEPS
  batch_size = %BATCH_SIZE
  num_microbatches = 4
  log_period = 10
  optimizer = @configs.OptimizerConfig()
  partitioning = @configs.PartitioningConfig()
  checkpoint = @configs.CheckpointConfig()

configs.OptimizerConfig:
  name = 'adamw'
  schedule = @configs.ScheduleConfig()
  global_norm_clip = 1.0
configs.ScheduleConfig:
  name = 'linear'
  learning_rate = 5e-5
  warmup_steps = 10
configs.PartitioningConfig:
  preset = '2d_fsdp'
  mesh_shape = [-1, 1]
  rule_overrides = [['vocab', None]]
configs.CheckpointConfig:
  period = 50
  keep = 2
  async_checkpointing = False
"""


def test_gin_configures_the_dataclasses():
    gin.clear_config()
    try:
        gin.parse_config(GIN)
        config = gin.get_configurable(configs.TrainConfig)()
    finally:
        gin.clear_config()
    assert config.train_steps == 300 and config.batch_size == 32 and config.num_microbatches == 4
    assert config.optimizer.name == "adamw" and config.optimizer.global_norm_clip == 1.0
    assert config.optimizer.schedule == configs.ScheduleConfig(name="linear", learning_rate=5e-5, warmup_steps=10)
    assert config.partitioning.mesh_shape == (-1, 1)  # lists become tuples: configs stay hashable
    assert config.partitioning.rule_overrides == (("vocab", None),)
    assert config.checkpoint == configs.CheckpointConfig(period=50, keep=2, async_checkpointing=False)
    hash(config)

    tx, schedule = optimizers.make_optimizer(config.optimizer, total_steps=config.train_steps)
    assert float(schedule(10)) == pytest.approx(5e-5)
    assert float(schedule(300)) == pytest.approx(0.0)
    partitioner = partitioning.Partitioner.from_config(config.partitioning)
    assert tuple(partitioner.logical_to_mesh(("vocab", "embed"))) == (None, "data")


def test_defaults_are_t5x_flan_fine_tuning():
    config = configs.TrainConfig()
    assert config.optimizer == configs.ADAFACTOR_FLAN
    assert config.optimizer.name == "adafactor" and config.optimizer.schedule.learning_rate == 1e-3
    assert config.optimizer.momentum is None and config.optimizer.decay_rate == 0.8


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(batch_size=10, num_microbatches=4), "not a multiple"),
        (dict(num_microbatches=0), "num_microbatches"),
        (dict(log_period=0), "log_period"),
    ],
)
def test_train_config_validation(kwargs, message):
    with pytest.raises(ValueError, match=message):
        configs.TrainConfig(**kwargs)


def test_checkpoint_config_validation():
    with pytest.raises(ValueError, match="keep"):
        configs.CheckpointConfig(keep=0)
    with pytest.raises(ValueError, match="period"):
        configs.CheckpointConfig(period=-1)


# ------------------------------------------------------------------------------------------------------------
# The experiment gins, layered as T5X layers its own: one file per binary and experiment, finalised.
#
# Reference: T5X's layout (t5x/configs/runs/{finetune,eval,infer}.gin included by per-experiment files, gin
# finalised by t5x.gin_utils.parse_gin_flags) and Hugging Face's Flan-T5 configs for the model widths
# (google/flan-t5-{small,base,large,xl,xxl}: d_model 512, 768, 1024, 2048, 4096).

import pathlib  # noqa: E402

from iuie.runtime import gin_flags  # noqa: E402

REPO = pathlib.Path(__file__).resolve().parents[2]
EXPERIMENTS = sorted(p for p in (REPO / "t5x_configs" / "instructuie").iterdir() if p.is_dir())
HF_D_MODEL = {"small": 512, "base": 768, "large": 1024, "xl": 2048, "xxl": 4096}
ROLES = {
    "finetune": ("train.train", {"MODEL_DIR": "'/tmp/m'", "INITIAL_CHECKPOINT_PATH": "'/tmp/flan'"}),
    "eval": ("eval.evaluate", {"CHECKPOINT_PATH": "'/tmp/m'", "EVAL_OUTPUT_DIR": "'/tmp/e'"}),
    "infer": ("infer.infer", {"CHECKPOINT_PATH": "'/tmp/m'", "INFER_OUTPUT_DIR": "'/tmp/i'"}),
}
DEMO = {
    "finetune": "t5x_configs/demo_cpu.gin",
    "eval": "t5x_configs/demo_cpu/eval.gin",
    "infer": "t5x_configs/demo_cpu/infer.gin",
}


def _parse(files, bindings=()):
    import seqio_tasks  # noqa: F401  (the run gins name its Tasks)

    gin_flags.parse(files, list(bindings))


def _parsed(files, required):
    _parse(files, [f"{k} = {v}" for k, v in required.items()])
    try:
        return {
            "locked": gin.config_is_locked(),
            "macros": gin_flags.defined_and_referenced_macros()[0],
            "lengths": gin.query_parameter("%TASK_FEATURE_LENGTHS"),
            "mixture": gin.query_parameter("%MIXTURE_OR_TASK_NAME"),
            "emb_dim": gin.query_parameter("network.T5Config.emb_dim"),
            "preset": _bound_or_none("configs.PartitioningConfig.preset"),
            "operative": gin.config_str(),
        }
    finally:
        gin.clear_config(clear_constants=True)


def _bound_or_none(name):
    try:
        return gin.query_parameter(name)
    except ValueError:
        return None


def test_every_experiment_has_a_file_per_binary():
    assert len(EXPERIMENTS) == 10, EXPERIMENTS  # 2 protocols x 5 Flan-T5 sizes
    for folder in EXPERIMENTS:
        assert sorted(p.name for p in folder.glob("*.gin")) == ["eval.gin", "finetune.gin", "infer.gin"], folder
    old = sorted((REPO / "t5x_configs").glob("instructuie_*.gin"))
    assert not old, f"experiment files that serve several binaries remain: {old}"


@pytest.mark.parametrize("folder", EXPERIMENTS, ids=lambda p: p.name)
def test_experiment_files_parse_finalised_and_agree(folder):
    import seqio_tasks

    protocol, size = folder.name.split("_")
    seen = {}
    for role, (configurable, required) in ROLES.items():
        got = _parsed([str(folder.relative_to(REPO) / f"{role}.gin")], required)
        assert got["locked"], f"{folder.name}/{role}.gin: gin was not finalised"
        # Only this binary's run gin: no other binary's output macro is defined.
        others = {"MODEL_DIR", "EVAL_OUTPUT_DIR", "INFER_OUTPUT_DIR"} - set(required)
        assert not others & got["macros"], (role, others & got["macros"])
        assert configurable.split(".")[1] in got["operative"]
        assert got["emb_dim"] == HF_D_MODEL[size]
        assert got["lengths"] == {"inputs": 512, "targets": 50}
        seen[role] = got
    # Eval and infer score what the protocol reports: the evaluation Mixture of the training Mixture.
    train_mixture = seen["finetune"]["mixture"]
    assert train_mixture == f"iuie_{protocol}"
    assert seen["eval"]["mixture"] == seen["infer"]["mixture"] == seqio_tasks.eval_mixture_for(train_mixture)
    assert seen["finetune"]["preset"] == seen["eval"]["preset"] == seen["infer"]["preset"] is not None


def test_demo_files_parse_finalised_and_agree():
    import seqio_tasks

    seen = {}
    for role, path in DEMO.items():
        got = _parsed([path], ROLES[role][1] if role != "finetune" else {"MODEL_DIR": "'/tmp/m'"})
        assert got["locked"], path
        seen[role] = got
    assert seen["finetune"]["lengths"] == seen["eval"]["lengths"] == seen["infer"]["lengths"]
    assert seen["finetune"]["emb_dim"] == seen["eval"]["emb_dim"] == seen["infer"]["emb_dim"] == 128
    assert seen["finetune"]["mixture"] == "iuie_synthetic_ner_re"
    assert seen["eval"]["mixture"] == seqio_tasks.eval_mixture_for("iuie_synthetic_ner_re")


def test_unset_required_macros_are_named_in_one_error():
    with pytest.raises(gin_flags.GinConfigError, match=r"not set: CHECKPOINT_PATH, EVAL_OUTPUT_DIR") as info:
        _parse(["t5x_configs/demo_cpu/eval.gin"])
    assert "\n" not in str(info.value)
    gin.clear_config(clear_constants=True)


def test_mixing_the_run_gins_of_two_binaries_is_refused():
    """The old layering (runs/eval.gin before a training experiment gin) now names the file to use."""
    with pytest.raises(gin_flags.GinConfigError, match="mix the run gins") as info:
        _parse(["runs/eval.gin", "t5x_configs/demo_cpu.gin"], ["CHECKPOINT_PATH = '/m'", "EVAL_OUTPUT_DIR = '/e'"])
    assert "t5x_configs/demo_cpu/eval.gin" in str(info.value)
    gin.clear_config(clear_constants=True)


def test_finalisation_refuses_a_reference_to_an_undefined_macro(tmp_path):
    """gin's finalize hook (validate_macros_hook), as under T5X: the typo is caught at parse time."""
    path = tmp_path / "typo.gin"
    path.write_text("include 't5x_configs/demo_cpu.gin'\nBATCH_SIZE = %BATCH_SIZ\n", encoding="utf-8")
    with pytest.raises(ValueError, match="BATCH_SIZ"):
        _parse([str(path)], ["MODEL_DIR = '/m'"])
    gin.clear_config(clear_constants=True)
