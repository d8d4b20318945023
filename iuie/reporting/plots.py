"""PNG figures of a run: per-dataset F1 bars per task in both metric modes, and the training curves.

Inputs are what the binaries write (nothing is recomputed):

* ``report_{strict,reference}.json`` of an evaluation folder (``MODEL_DIR/eval/step_N``, or the
  ``EVAL_OUTPUT_DIR`` of ``iuie.eval``): ``{task: {dataset: {metric: value}}}`` with an ``Average`` row;
* the TensorBoard event files clu's writer leaves under ``MODEL_DIR/train`` (``loss_per_token``,
  ``accuracy``, ``learning_rate``, ...), read with TensorBoard's own event reader;
* every ``MODEL_DIR/eval/step_N`` for the evaluation F1 over steps (the per-task average, both modes).

:func:`f1_bars` writes ``f1_{mode}.png`` beside its ``report_{mode}.json``; :func:`training_curves` writes
``training_curves.png`` in the run folder; :func:`plot_run` does both for a run or an evaluation folder.
The Agg backend is used, so no display is needed.
"""

from __future__ import annotations

import glob
import json
import math
import os
import re
from collections.abc import Mapping, Sequence
from typing import Any

MODES = ("strict", "reference")
AVERAGE = "Average"
# Training curves: (panel title, candidate tags in order of preference).
CURVES = (
    ("loss per target token", ("loss_per_token", "cross_ent_loss_per_token", "loss")),
    ("token accuracy", ("accuracy",)),
    ("learning rate", ("learning_rate",)),
)


def _pyplot():
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def headline(metrics: Mapping[str, Any]) -> list[tuple[str, float]]:
    """The numbers a bar shows for one dataset: F1, else strict EE's trigger and argument F1, else accuracy."""
    if "f1" in metrics:
        return [("F1", float(metrics["f1"]))]
    both = [
        (name, float(metrics[key]))
        for name, key in (("trigger F1", "trigger_f1"), ("argument F1", "argument_f1"))
        if key in metrics
    ]
    if both:
        return both
    return [("accuracy", float(metrics["accuracy"]))] if "accuracy" in metrics else []


def f1_bars(report: Mapping[str, Mapping[str, Mapping[str, Any]]], path: str, *, title: str = "") -> str:
    """One panel per task, one bar (group) per dataset plus the task average; writes ``path``."""
    plt = _pyplot()
    tasks = [t for t in report if any(headline(m) for m in report[t].values())]
    if not tasks:
        raise ValueError(f"nothing to plot for {path}: the report holds no F1 or accuracy")
    fig, axes = plt.subplots(len(tasks), 1, figsize=(8, 2.2 + 1.6 * len(tasks)), squeeze=False)
    for ax, task in zip(axes[:, 0], tasks):
        datasets = sorted((d for d in report[task] if d != AVERAGE), key=str.lower)
        if AVERAGE in report[task]:
            datasets.append(AVERAGE)
        series: dict[str, list[float]] = {}
        for d in datasets:
            for name, value in headline(report[task][d]):
                series.setdefault(name, [math.nan] * len(datasets))[datasets.index(d)] = value
        width = 0.8 / max(len(series), 1)
        for k, (name, values) in enumerate(series.items()):
            xs = [i + (k - (len(series) - 1) / 2) * width for i in range(len(datasets))]
            bars = ax.bar(xs, values, width, label=name)
            for bar, value in zip(bars, values):
                if not math.isnan(value):
                    ax.annotate(
                        f"{value:.1f}",
                        (bar.get_x() + bar.get_width() / 2, bar.get_height()),
                        ha="center",
                        va="bottom",
                        fontsize=8,
                    )
        ax.set_xticks(range(len(datasets)), datasets, rotation=20 if len(datasets) > 4 else 0, fontsize=8)
        ax.set_ylim(0, 105)
        ax.set_ylabel("%")
        ax.set_title(task, fontsize=10, loc="left")
        if len(series) > 1:
            ax.legend(fontsize=8, loc="lower right")
        ax.grid(axis="y", alpha=0.3)
    if title:
        fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def read_scalars(logdir: str) -> dict[str, list[tuple[int, float]]]:
    """``{tag: [(step, value), ...]}`` from the TensorBoard event files in ``logdir`` (clu writes scalars as
    tensor summaries; plain scalar summaries are read too)."""
    from tensorboard.backend.event_processing import event_accumulator as ea

    out: dict[str, list[tuple[int, float]]] = {}
    if not glob.glob(os.path.join(logdir, "events.out.tfevents.*")):
        return out
    acc = ea.EventAccumulator(logdir, size_guidance={ea.SCALARS: 0, ea.TENSORS: 0})
    acc.Reload()
    tags = acc.Tags()
    for tag in tags.get("scalars", []):
        out[tag] = [(e.step, float(e.value)) for e in acc.Scalars(tag)]
    for tag in tags.get("tensors", []):
        import numpy as np
        from tensorboard.util import tensor_util

        points = []
        for e in acc.Tensors(tag):
            value = np.asarray(tensor_util.make_ndarray(e.tensor_proto))
            if value.size == 1 and np.issubdtype(value.dtype, np.number):
                points.append((e.step, float(value.reshape(()))))
        if points:
            out[tag] = points
    for points in out.values():
        points.sort()
    return out


def eval_steps(run_dir: str) -> list[tuple[int, str]]:
    """``(step, folder)`` of every ``eval/step_N`` of a run, in step order."""
    found = []
    for folder in glob.glob(os.path.join(run_dir, "eval", "step_*")):
        match = re.fullmatch(r"step_(\d+)", os.path.basename(folder))
        if match and os.path.isdir(folder):
            found.append((int(match.group(1)), folder))
    return sorted(found)


def _load(path: str) -> dict[str, Any]:
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def eval_curve(run_dir: str) -> dict[str, list[tuple[int, float]]]:
    """``{"MODE TASK": [(step, average headline F1), ...]}`` over the run's evaluations."""
    out: dict[str, list[tuple[int, float]]] = {}
    for step, folder in eval_steps(run_dir):
        for mode in MODES:
            path = os.path.join(folder, f"report_{mode}.json")
            if not os.path.isfile(path):
                continue
            for task, rows in _load(path).items():
                numbers = headline(rows.get(AVERAGE, {}))
                if numbers:
                    out.setdefault(f"{mode} {task}", []).append((step, numbers[-1][1]))
    return out


def training_curves(run_dir: str, path: str | None = None) -> str | None:
    """Loss, accuracy, learning rate and evaluation F1 over steps; None when the run logged nothing."""
    scalars = read_scalars(os.path.join(run_dir, "train"))
    evals = eval_curve(run_dir)
    panels = []
    for title, tags in CURVES:
        tag = next((t for t in tags if t in scalars), None)
        if tag is not None:
            panels.append((title, {tag: scalars[tag]}))
    if evals:
        panels.append(("evaluation (task average)", evals))
    if not panels:
        return None
    plt = _pyplot()
    from matplotlib.ticker import MaxNLocator

    columns = 2
    rows = -(-len(panels) // columns)
    fig, axes = plt.subplots(rows, columns, figsize=(10, 3.2 * rows), squeeze=False)
    for ax, (title, series) in zip(axes.flat, panels):
        for name, points in series.items():
            steps, values = zip(*points)
            ax.plot(steps, values, marker="o" if len(points) < 30 else None, markersize=3, label=name)
        ax.set_title(title, fontsize=10, loc="left")
        ax.set_xlabel("step")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        if title == "learning rate":
            ax.ticklabel_format(axis="y", style="sci", scilimits=(0, 0))
        if title.startswith("evaluation"):
            ax.set_ylim(0, 105)
            ax.set_ylabel("%")
            ax.legend(fontsize=8)
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(panels) :]:
        ax.set_visible(False)
    fig.suptitle(os.path.basename(os.path.abspath(run_dir)), fontsize=11)
    fig.tight_layout()
    path = path or os.path.join(run_dir, "training_curves.png")
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_eval_folder(folder: str, title: str = "") -> list[str]:
    """``f1_{mode}.png`` beside each ``report_{mode}.json`` of one evaluation folder."""
    written = []
    for mode in MODES:
        report = os.path.join(folder, f"report_{mode}.json")
        if os.path.isfile(report):
            written.append(f1_bars(_load(report), os.path.join(folder, f"f1_{mode}.png"), title=f"{title}{mode} mode"))
    return written


def plot_run(run_dir: str) -> list[str]:
    """Every figure for a run folder (MODEL_DIR: curves + the F1 bars of each evaluation) or an evaluation
    folder (its F1 bars). Returns the paths written; ValueError when there is nothing to plot."""
    written: list[str] = []
    steps = eval_steps(run_dir)
    for step, folder in steps:
        written += plot_eval_folder(folder, title=f"step {step}, ")
    if not steps:
        written += plot_eval_folder(run_dir)
        for sub in sorted(glob.glob(os.path.join(run_dir, "*", "report_strict.json"))):
            written += plot_eval_folder(os.path.dirname(sub), title=f"{os.path.basename(os.path.dirname(sub))}, ")
    curves = training_curves(run_dir)
    if curves:
        written.append(curves)
    if not written:
        raise ValueError(f"{run_dir}: no report_*.json and no TensorBoard summaries under train/ to plot")
    return written


def image_size(path: str) -> tuple[int, int]:
    """``(width, height)`` of a PNG, read from its header."""
    with open(path, "rb") as f:
        head = f.read(24)
    if head[:8] != b"\x89PNG\r\n\x1a\n":
        raise ValueError(f"{path} is not a PNG")
    return int.from_bytes(head[16:20], "big"), int.from_bytes(head[20:24], "big")


__all__: Sequence[str] = ("f1_bars", "training_curves", "plot_run", "plot_eval_folder", "read_scalars", "image_size")
