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
