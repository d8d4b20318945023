"""Per-period training summaries: TensorBoard through clu's metric writers, and a progress line with ETA.

``TrainReporter.record(step, metrics)`` keeps each train step's metrics (device arrays: nothing waits for the
device); ``report(step)`` fetches those of the period, turns them into summaries, writes them and logs one
line such as::

    step 1200/20000 (6.0%) | loss/token 1.234 | acc 71.2% | z 1.2e-04 | gnorm 0.88 | lr 1.0e-03 |
    12.3k tok/s | nonpad 82% | MFU 41.2% | 0.53 s/step | ETA 2:45:10

Summaries (TensorBoard tags; sums are over the period's steps):

* ``loss`` — the objective the optimizer minimised, mean per step (a token *sum* under T5X's default
  normaliser, so it scales with the batch); ``loss_per_token`` = sum of losses / sum of ``weight_sum`` (real
  target tokens), the number to compare across runs; ``cross_ent_loss_per_token`` likewise without z-loss;
  ``z_loss`` mean per step. Like T5X's ``loss_per_nonpadding_target_token``, the per-token figures divide
  whatever the loss is: they are per-token means only for a summed loss (``loss_is_token_sum``);
* ``accuracy`` = correct / real target tokens; ``grad_norm`` mean per step; ``learning_rate`` at the last step;
* ``timing/tokens_per_second`` (encoder inputs + decoder targets, padding included: what the devices
  process), ``timing/nonpadding_tokens_per_second``, ``nonpadding_fraction`` (the share of non-padding
  tokens), ``timing/seconds_per_step``, ``timing/steps_per_second``, ``timing/examples_per_second``;
* ``mfu`` — model FLOPs (``iuie.model.flops``: exact T5 count) per second over the devices' peak; only where the
  peak is known (not on CPU).

The first recorded step includes compilation; it is waited for and left out of the timings (its metrics
still count).
"""

from __future__ import annotations

import datetime
import logging
import time
from collections.abc import Mapping, Sequence
from typing import Any

import jax
import numpy as np

from iuie.model import flops as flops_lib

logger = logging.getLogger(__name__)


def create_writer(logdir: str | None, *, asynchronous: bool = True) -> Any:
    """clu's default writer: TensorBoard event files in ``logdir`` plus Python logging, on process 0 only
    (other processes only log); ``logdir=None`` gives a logging-only writer."""
    from clu import metric_writers

    if logdir is None:
        return metric_writers.LoggingWriter()
    return metric_writers.create_default_writer(logdir, just_logging=jax.process_index() > 0, asynchronous=asynchronous)


def format_duration(seconds: float) -> str:
    """``H:MM:SS`` (days spelled out when needed): the ETA's format."""
    return str(datetime.timedelta(seconds=int(round(max(seconds, 0.0)))))


def _si(value: float) -> str:
    for unit, scale in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(value) >= scale:
            return f"{value / scale:.1f}{unit}"
    return f"{value:.0f}"


def summarize(metrics: Sequence[Mapping[str, Any]]) -> dict[str, float]:
    """Period summaries from per-step metric dicts (host values); see the module docstring for the keys."""
    if not metrics:
        return {}
    totals: dict[str, float] = {}
    for m in metrics:
        for key, value in m.items():
            totals[key] = totals.get(key, 0.0) + float(value)
    steps = len(metrics)
    out: dict[str, float] = {}
    if "loss" in totals:
        out["loss"] = totals["loss"] / steps
    tokens = totals.get("weight_sum")
    if tokens:
        out["loss_per_token"] = totals["loss"] / tokens
        if "cross_ent_loss" in totals:
            out["cross_ent_loss_per_token"] = totals["cross_ent_loss"] / tokens
        if "correct" in totals:
            out["accuracy"] = totals["correct"] / tokens
    elif "accuracy" in totals:
        out["accuracy"] = totals["accuracy"] / steps
    for key in ("z_loss", "grad_norm"):
        if key in totals:
            out[key] = totals[key] / steps
    if "learning_rate" in metrics[-1]:
        out["learning_rate"] = float(metrics[-1]["learning_rate"])
    if totals.get("total_tokens"):
        out["nonpadding_fraction"] = totals.get("nonpadding_tokens", 0.0) / totals["total_tokens"]
    return out


class TrainReporter:
    """Collects train-step metrics and writes a summary every ``log_period`` steps.

    Args:
      writer: a clu ``MetricWriter`` (``create_writer``) or anything with ``write_scalars(step, dict)``.
      total_steps: the run's last step, for the progress line and ETA.
      flops_per_step: model FLOPs of one train step (``flops.train_step_flops``), for MFU; None skips MFU.
      devices: the devices the step runs on (default ``jax.devices()``), for the MFU denominator.
      log: where the progress line goes (default: this module's logger at INFO).
      loss_is_token_sum: the loss is a plain token sum (the model's ``loss_normalizing_factor`` is None), so
        the progress line shows the loss per token; otherwise it shows the loss as it is.
    """

    def __init__(
        self,
        writer: Any,
        *,
        total_steps: int,
        flops_per_step: float | None = None,
        devices: Sequence[Any] | None = None,
        log: Any = None,
        loss_is_token_sum: bool = True,
    ):
        self.writer = writer
        self.total_steps = int(total_steps)
        self.flops_per_step = flops_per_step
        self.devices = list(jax.devices() if devices is None else devices)
        self._log = log or logger.info
        self.loss_is_token_sum = loss_is_token_sum
        self._pending: list[tuple[int, Mapping[str, Any]]] = []
        self._timed_steps = 0
        self._period_start: float | None = None

    def record(self, step: int, metrics: Mapping[str, Any]) -> None:
        """Keeps one step's metrics. The first call waits for its step (compilation) and starts the clock."""
        self._pending.append((int(step), metrics))
        if self._period_start is None:
            jax.block_until_ready(metrics)
            self._period_start = time.perf_counter()
        else:
            self._timed_steps += 1

    def report(self, step: int) -> dict[str, float]:
        """Writes the summaries of the steps recorded since the last report; returns them."""
        if not self._pending:
            return {}
        host = jax.device_get([m for _, m in self._pending])  # waits for the period's last step
        now = time.perf_counter()
        summary = summarize(host)
        elapsed = now - (self._period_start or now)
        timed = self._timed_steps
        if timed > 0 and elapsed > 0:
            timed_metrics = host[len(host) - timed :]
            seconds_per_step = elapsed / timed
            summary["timing/seconds_per_step"] = seconds_per_step
            summary["timing/steps_per_second"] = 1.0 / seconds_per_step
            for key, name in (
                ("total_tokens", "timing/tokens_per_second"),
                ("nonpadding_tokens", "timing/nonpadding_tokens_per_second"),
                ("num_examples", "timing/examples_per_second"),
            ):
                if key in timed_metrics[-1]:
                    summary[name] = sum(float(m[key]) for m in timed_metrics) / elapsed
            if self.flops_per_step:
                value = flops_lib.mfu(self.flops_per_step, seconds_per_step, self.devices)
                if value is not None:
                    summary["mfu"] = value
        self.writer.write_scalars(int(step), summary)
        self._log(self.progress_line(int(step), summary))
        self._pending, self._timed_steps, self._period_start = [], 0, now
        return summary

    def progress_line(self, step: int, summary: Mapping[str, float]) -> str:
        parts = [f"step {step}/{self.total_steps} ({100.0 * step / max(self.total_steps, 1):.1f}%)"]
        if self.loss_is_token_sum and "loss_per_token" in summary:
            parts.append(f"loss/token {summary['loss_per_token']:.4f}")
        elif "loss" in summary:
            parts.append(f"loss {summary['loss']:.4f}")
        if "accuracy" in summary:
            parts.append(f"acc {100.0 * summary['accuracy']:.1f}%")
        if "z_loss" in summary:
            parts.append(f"z {summary['z_loss']:.1e}")
        if "grad_norm" in summary:
            parts.append(f"gnorm {summary['grad_norm']:.3g}")
        if "learning_rate" in summary:
            parts.append(f"lr {summary['learning_rate']:.1e}")
        if "timing/tokens_per_second" in summary:
            parts.append(f"{_si(summary['timing/tokens_per_second'])} tok/s")
        if "nonpadding_fraction" in summary:
            parts.append(f"nonpad {100.0 * summary['nonpadding_fraction']:.0f}%")
        if "mfu" in summary:
            parts.append(f"MFU {100.0 * summary['mfu']:.1f}%")
        if "timing/seconds_per_step" in summary:
            seconds = summary["timing/seconds_per_step"]
            parts.append(f"{seconds:.3g} s/step")
            parts.append(f"ETA {format_duration(seconds * max(self.total_steps - step, 0))}")
        return " | ".join(parts)

    def write_eval(self, step: int, metric_sums: Mapping[str, Any], prefix: str = "eval") -> dict[str, float]:
        """Writes evaluation summaries (metrics summed over the evaluation batches) under ``prefix/``."""
        summary = summarize([jax.device_get(dict(metric_sums))])
        summary.pop("learning_rate", None)
        scalars = {f"{prefix}/{k}": v for k, v in summary.items()}
        self.writer.write_scalars(int(step), scalars)
        self._log(f"step {step} {prefix}: " + ", ".join(f"{k} {v:.4g}" for k, v in sorted(summary.items())))
        return scalars

    def flush(self) -> None:
        if hasattr(self.writer, "flush"):
            self.writer.flush()


def sum_metrics(metrics: Sequence[Mapping[str, Any]]) -> dict[str, float]:
    """Adds per-batch metric dicts (host values): how evaluation metrics are combined before ``write_eval``."""
    out: dict[str, float] = {}
    for m in jax.device_get(list(metrics)):
        for key, value in m.items():
            out[key] = out.get(key, 0.0) + float(np.asarray(value))
    return out
