"""Training summaries and the progress line, against values worked out by hand; TensorBoard files via clu.

Reference: the arithmetic in the comments (two steps of known metrics over a controlled clock), and clu's
``create_default_writer`` producing TensorBoard event files that TensorBoard's own reader can parse.
"""

from __future__ import annotations

import glob
import types

import jax.numpy as jnp
import pytest

from iuie.training import metrics_logging


def _step(loss, correct, weight_sum, nonpadding, total=100.0, lr=1e-3):
    return {
        "loss": jnp.float32(loss),
        "correct": jnp.float32(correct),
        "weight_sum": jnp.float32(weight_sum),
        "z_loss": jnp.float32(0.01),
        "cross_ent_loss": jnp.float32(loss - 0.01),
        "grad_norm": jnp.float32(2.0),
        "learning_rate": jnp.float32(lr),
        "nonpadding_tokens": jnp.float32(nonpadding),
        "total_tokens": jnp.float32(total),
        "num_examples": jnp.float32(8.0),
    }


def test_summarize_by_hand():
    summary = metrics_logging.summarize(
        [
            {k: float(v) for k, v in _step(30.0, 5, 10, 60).items()},
            {k: float(v) for k, v in _step(10.0, 15, 30, 80, lr=2e-3).items()},
        ]
    )
    assert summary["loss"] == pytest.approx(20.0)  # mean per step
    assert summary["loss_per_token"] == pytest.approx(40.0 / 40.0)  # (30 + 10) / (10 + 30)
    assert summary["accuracy"] == pytest.approx(20.0 / 40.0)
    assert summary["nonpadding_fraction"] == pytest.approx(140.0 / 200.0)
    assert summary["learning_rate"] == pytest.approx(2e-3)  # the last step's
    assert summary["grad_norm"] == pytest.approx(2.0)


class _Writer:
    def __init__(self):
        self.calls = []

    def write_scalars(self, step, scalars):
        self.calls.append((step, dict(scalars)))


def test_reporter_timing_mfu_and_progress_line(monkeypatch):
    clock = iter([100.0, 104.0])  # first step done at t=100 (compile excluded), report at t=104
    monkeypatch.setattr(metrics_logging.time, "perf_counter", lambda: next(clock))
    h100 = types.SimpleNamespace(device_kind="NVIDIA H100 80GB HBM3", platform="gpu")
    lines = []
    writer = _Writer()
    reporter = metrics_logging.TrainReporter(
        writer, total_steps=1000, flops_per_step=989e12, devices=[h100], log=lines.append
    )
    reporter.record(1, _step(30.0, 5, 10, 60))  # warm-up step: counts in the metrics, not in the timing
    reporter.record(2, _step(10.0, 15, 30, 80))
    reporter.record(3, _step(20.0, 10, 20, 70))
    summary = reporter.report(3)
    # Two timed steps in 4 s: 2 s/step; tokens 200 / 4 s; MFU 989e12 / 2 s / 989e12.
    assert summary["timing/seconds_per_step"] == pytest.approx(2.0)
    assert summary["timing/tokens_per_second"] == pytest.approx(50.0)
    assert summary["timing/nonpadding_tokens_per_second"] == pytest.approx(150.0 / 4.0)
    assert summary["timing/examples_per_second"] == pytest.approx(4.0)
    assert summary["mfu"] == pytest.approx(0.5)
    assert summary["loss_per_token"] == pytest.approx(60.0 / 60.0)
    assert writer.calls == [(3, summary)]
    line = lines[0]
    # 997 steps left at 2 s each: 1994 s = 0:33:14.
    for piece in (
        "step 3/1000 (0.3%)",
        "loss/token 1.0000",
        "acc 50.0%",
        "lr 1.0e-03",
        "50 tok/s",
        "nonpad 70%",
        "MFU 50.0%",
        "2 s/step",
        "ETA 0:33:14",
    ):
        assert piece in line, (piece, line)
    assert reporter.report(4) == {}  # nothing recorded since


def test_cpu_reports_no_mfu():
    reporter = metrics_logging.TrainReporter(_Writer(), total_steps=10, flops_per_step=1e9, log=lambda _: None)
    for step in range(1, 4):
        reporter.record(step, _step(1.0, 1, 2, 50))
    assert "mfu" not in reporter.report(3)


def test_eval_summaries_and_format_duration():
    writer = _Writer()
    reporter = metrics_logging.TrainReporter(writer, total_steps=10, log=lambda _: None)
    sums = metrics_logging.sum_metrics([_step(30.0, 5, 10, 60), _step(10.0, 15, 30, 80)])
    scalars = reporter.write_eval(7, sums)
    assert scalars["eval/loss_per_token"] == pytest.approx(1.0) and scalars["eval/accuracy"] == pytest.approx(0.5)
    assert "eval/learning_rate" not in scalars
    assert metrics_logging.format_duration(90061) == "1 day, 1:01:01"


def test_tensorboard_event_files(tmp_path):
    from tensorboard.backend.event_processing import event_accumulator

    writer = metrics_logging.create_writer(str(tmp_path), asynchronous=False)
    writer.write_scalars(5, {"loss_per_token": 1.5, "mfu": 0.4})
    writer.flush()
    writer.close()
    files = glob.glob(str(tmp_path / "events.out.tfevents*"))
    assert files
    events = event_accumulator.EventAccumulator(str(tmp_path))
    events.Reload()
    tags = set(events.Tags().get("tensors", [])) | set(events.Tags().get("scalars", []))
    assert {"loss_per_token", "mfu"} <= tags
