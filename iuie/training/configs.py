"""Configuration dataclasses of the trainer: optimizer, schedule, partitioning, checkpoints, the run.

Plain frozen dataclasses, no gin decorators: gin files configure them with dynamic registration::

    from __gin__ import dynamic_registration
    from iuie.training import configs

    configs.TrainConfig:
      train_steps = %TRAIN_STEPS
      batch_size = %BATCH_SIZE
      num_microbatches = 4
      optimizer = @configs.OptimizerConfig()
      partitioning = @configs.PartitioningConfig()
    configs.PartitioningConfig.preset = 'fsdp'
    configs.ScheduleConfig.learning_rate = 1e-3

Activation and parameter dtypes belong to the model (``network.T5Config.dtype`` / ``param_dtype``: bfloat16
activations, float32 parameters by default), because only the network knows where float32 must be kept (norm
statistics, softmax, logits). The trainer's own dtype is the gradient accumulator's (``accumulation_dtype``).

This module imports nothing: the objects these configs describe are built elsewhere (``optimizers.
make_optimizer``, ``partitioning.Partitioner.from_config``, ``checkpoints.Checkpointer.from_config``).
"""

from __future__ import annotations

import dataclasses
from typing import Any

SCHEDULES = ("constant", "rsqrt", "linear", "cosine")
OPTIMIZERS = ("adafactor", "adamw")


def _tuple(value: Any) -> Any:
    # gin and JSON give lists; dataclass fields stay hashable tuples.
    if isinstance(value, list):
        return tuple(_tuple(v) for v in value)
    return value


@dataclasses.dataclass(frozen=True)
class ScheduleConfig:
    """The learning rate as a function of the step (see ``optimizers.make_schedule`` for the formulas).

    Attributes:
      name: ``constant`` (after an optional linear warmup), ``rsqrt`` (T5X's ``constant * linear_warmup *
        rsqrt_decay``: note T5X's convention, the peak is ``learning_rate / sqrt(warmup_steps)``), ``linear``
        (warmup, then linear decay to ``end_learning_rate``, Hugging Face's default) or ``cosine``.
      learning_rate: the base rate (T5X ``base_learning_rate``).
      warmup_steps: steps of linear warmup from 0 (0 = none; for ``rsqrt`` it also sets where decay starts).
      decay_steps: length of the decay after warmup for ``linear``/``cosine``; None = until the last
        training step (filled in by ``optimizers.make_schedule`` from ``total_steps``).
      end_learning_rate: where ``linear``/``cosine`` end.
    """

    name: str = "constant"
    learning_rate: float = 1e-3
    warmup_steps: int = 0
    decay_steps: int | None = None
    end_learning_rate: float = 0.0

    def __post_init__(self):
        if self.name not in SCHEDULES:
            raise ValueError(f"schedule must be one of {SCHEDULES}, got {self.name!r}")
        if self.warmup_steps < 0:
            raise ValueError(f"warmup_steps must be >= 0, got {self.warmup_steps}")


@dataclasses.dataclass(frozen=True)
class OptimizerConfig:
    """The optimizer. Defaults are T5X's Flan fine-tuning setup: Adafactor, constant learning rate 1e-3.

    Adafactor fields carry T5X's ``adafactor.Adafactor`` meaning (see ``optimizers.adafactor`` for the
    mapping onto ``optax.adafactor``); AdamW fields are ``optax.adamw``'s, with Hugging Face's defaults
    (betas 0.9/0.999, eps 1e-8, no weight decay). ``ADAMW_REFERENCE`` is the InstructUIE reference's setup.

    Attributes:
      name: ``adafactor`` or ``adamw``.
      schedule: the learning rate schedule.
      decay_rate: Adafactor's second-moment decay exponent (``1 - (t+1)^-decay_rate``).
      step_offset: Adafactor's step offset for the decay schedule (T5X ``step_offset``).
      min_dim_size_to_factor: factor a second moment only if two dimensions are at least this large.
      clipping_threshold: Adafactor's update clipping (block RMS); None disables it.
      multiply_by_parameter_scale: scale the step by the parameter's RMS (at least 1e-3, T5X's ``epsilon2``).
      factored: use factored second moments.
      momentum: Adafactor's ``beta1``; None = no first moment (Flan's choice, and the memory-saving one).
      epsilon1: added to squared gradients.
      b1, b2, eps: AdamW moments and epsilon.
      weight_decay: decoupled weight decay (AdamW) or Adafactor's ``weight_decay_rate`` (0 = none); norm
        scales (1-D parameters) are never decayed.
      global_norm_clip: clip gradients to this global norm before the optimizer (None = no clipping; the
        reference's Hugging Face Trainer clips at 1.0).
    """

    name: str = "adafactor"
    schedule: ScheduleConfig = dataclasses.field(default_factory=ScheduleConfig)
    decay_rate: float = 0.8
    step_offset: int = 0
    min_dim_size_to_factor: int = 128
    clipping_threshold: float | None = 1.0
    multiply_by_parameter_scale: bool = True
    factored: bool = True
    momentum: float | None = None
    epsilon1: float = 1e-30
    b1: float = 0.9
    b2: float = 0.999
    eps: float = 1e-8
    weight_decay: float = 0.0
    global_norm_clip: float | None = None

    def __post_init__(self):
        if self.name not in OPTIMIZERS:
            raise ValueError(f"optimizer must be one of {OPTIMIZERS}, got {self.name!r}")


# T5X's Flan-T5 fine-tuning default (t5x/configs/runs/finetune.gin with adafactor.Adafactor defaults).
ADAFACTOR_FLAN = OptimizerConfig()
# The InstructUIE reference: Hugging Face Trainer AdamW, lr 5e-5 constant, max_grad_norm 1.0, batch 256.
ADAMW_REFERENCE = OptimizerConfig(
    name="adamw", schedule=ScheduleConfig(name="constant", learning_rate=5e-5), global_norm_clip=1.0
)


@dataclasses.dataclass(frozen=True)
class PartitioningConfig:
    """How arrays are laid out on devices (see ``iuie.training.partitioning``).

    Attributes:
      preset: a preset name, one of the files ``gin/partitioning/<name>.gin`` (``data_parallel``, ``fsdp``,
        ``2d``, ``2d_fsdp``), or a name of your own when ``rules`` and ``default_mesh_shape`` are given.
      mesh_shape: ``(data, model)`` sizes, one of them may be -1 (= the remaining devices); None = the
        preset's default.
      rule_overrides: ``(logical axis, mesh axis or None)`` pairs placed before the preset's rules.
      rules: the preset's ``(logical axis, mesh axis or None)`` rules, bound by its gin file; None = read
        from ``gin/partitioning/<preset>.gin``.
      default_mesh_shape: the preset's mesh shape, bound by its gin file; None = read from the file.
    """

    preset: str = "data_parallel"
    mesh_shape: tuple[int, ...] | None = None
    rule_overrides: tuple[tuple[Any, ...], ...] = ()
    rules: tuple[tuple[Any, ...], ...] | None = None
    default_mesh_shape: tuple[int, ...] | None = None

    def __post_init__(self):
        for name in ("mesh_shape", "rule_overrides", "rules", "default_mesh_shape"):
            object.__setattr__(self, name, _tuple(getattr(self, name)))


@dataclasses.dataclass(frozen=True)
class CheckpointConfig:
    """Orbax checkpointing (see ``iuie.training.checkpoints``).

    Attributes:
      period: save every this many steps (and always at the last step); 0 = only at the end.
      keep: keep the newest N checkpoints (None = all).
      async_checkpointing: write in a background thread while training continues.
      initial_checkpoint_path: weights to start from when ``MODEL_DIR`` has no checkpoint yet: an iuie
        Orbax checkpoint, a Hugging Face folder or a T5X ``checkpoint_<step>`` folder (T5X's
        ``INITIAL_CHECKPOINT_PATH``).
      restore_optimizer_state: when ``initial_checkpoint_path`` is an iuie checkpoint, also take its
        optimizer state and step (otherwise only parameters; fine-tuning starts at step 0).
    """

    period: int = 1000
    keep: int | None = 3
    async_checkpointing: bool = True
    initial_checkpoint_path: str | None = None
    restore_optimizer_state: bool = False

    def __post_init__(self):
        if self.period < 0:
            raise ValueError(f"checkpoint period must be >= 0, got {self.period}")
        if self.keep is not None and self.keep < 1:
            raise ValueError(f"keep must be >= 1 or None, got {self.keep}")


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """One training run.

    Attributes:
      train_steps: the step to stop at (T5X's ``TRAIN_STEPS``: absolute, so a resumed run stops at the same
        place).
      batch_size: global batch size in rows (packed rows hold several examples).
      num_microbatches: split each batch into this many microbatches and accumulate gradients (1 = none).
      log_period: write summaries every this many steps.
      eval_period: run evaluation every this many steps (0 = never during training).
      seed: seeds parameter initialisation and dropout.
      accumulation_dtype: dtype of the microbatch gradient accumulator.
      stop_on_nan: stop with an error naming the step when the loss or gradient norm is not finite.
      optimizer, partitioning, checkpoint: the nested configs.
    """

    train_steps: int = 1000
    batch_size: int = 8
    num_microbatches: int = 1
    log_period: int = 100
    eval_period: int = 0
    seed: int = 0
    accumulation_dtype: str = "float32"
    stop_on_nan: bool = True
    optimizer: OptimizerConfig = dataclasses.field(default_factory=OptimizerConfig)
    partitioning: PartitioningConfig = dataclasses.field(default_factory=PartitioningConfig)
    checkpoint: CheckpointConfig = dataclasses.field(default_factory=CheckpointConfig)

    def __post_init__(self):
        if self.num_microbatches < 1:
            raise ValueError(f"num_microbatches must be >= 1, got {self.num_microbatches}")
        if self.batch_size % self.num_microbatches:
            raise ValueError(
                f"batch_size {self.batch_size} is not a multiple of num_microbatches {self.num_microbatches}"
            )
        if self.log_period < 1:
            raise ValueError(f"log_period must be >= 1, got {self.log_period}")
