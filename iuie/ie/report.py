"""Score tables: one row per dataset, grouped by task, with the per-task average, like the paper's Tables 1-3.

A :class:`Report` collects the metric dicts of :func:`iuie.ie.metrics.score` per (task, dataset) and renders

* ``to_text()``: a plain-text table per task. Rows are datasets, sorted by name ignoring case (as the
  reference's ``calculate_f1.py`` sorts them), then an ``Average`` row: the unweighted mean over datasets of
  each percentage column, which is how the paper averages (and the reference's report). Count columns are
  left blank in that row. Columns depend on the task and mode:

  - F1 tasks: ``P  R  F1  TP  FP  FN`` (strict adds ``Halluc`` and ``Fallbk``, the mentions that only the
    case-insensitive alignment fallback placed), as Table 1 (NER) and Table 2 (RE);
  - reference EE and EET, whose reference number is sentence accuracy: ``Acc  Correct  Examples``;
  - strict EE: trigger and argument P/R/F1 side by side, as Table 3 (event extraction).

* ``to_json()``: ``{task: {dataset: {metric: value}}}`` with every metric given, plus an ``"Average"``
  entry per task holding the means of the percentage metrics.

Tasks are listed main views first (NER, RE, EE, EET, EEA), then the auxiliary ones (ES, ET, EP, EPR).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from iuie.ie import views

AVERAGE = "Average"
TASK_ORDER = views.REPORT_ORDER
PERCENT_SUFFIXES = ("precision", "recall", "f1", "accuracy")

# (header, metric key, is a percentage)
_F1_COLUMNS = (
    ("P", "precision", True),
    ("R", "recall", True),
    ("F1", "f1", True),
    ("TP", "tp", False),
    ("FP", "fp", False),
    ("FN", "fn", False),
)
_ACCURACY_COLUMNS = (("Acc", "accuracy", True), ("Correct", "correct", False), ("Examples", "examples", False))
_EVENT_COLUMNS = (
    ("Trig-P", "trigger_precision", True),
    ("Trig-R", "trigger_recall", True),
    ("Trig-F1", "trigger_f1", True),
    ("Arg-P", "argument_precision", True),
    ("Arg-R", "argument_recall", True),
    ("Arg-F1", "argument_f1", True),
    ("Halluc", "hallucinated", False),
    ("Fallbk", "fallback", False),
)
# Strict mode: predictions found nowhere, and mentions aligned only by the case-insensitive fallback.
_HALLUCINATED = (("Halluc", "hallucinated", False), ("Fallbk", "fallback", False))

_TITLES = {v.name: v.title for v in views.TABLE}


def is_percent(key: str) -> bool:
    return key.endswith(PERCENT_SUFFIXES)


def columns(task: str, mode: str) -> tuple[tuple[str, str, bool], ...]:
    """The table columns (header, metric key, is a percentage) for a task in a mode."""
    view = views.BY_NAME.get(task)
    if mode == "reference" and view is not None and view.accuracy:
        return _ACCURACY_COLUMNS
    if mode == "strict" and view is not None and len(view.strict_groups) > 1:
        return _EVENT_COLUMNS
    return _F1_COLUMNS + (_HALLUCINATED if mode == "strict" else ())


def _task_key(task: str) -> tuple[int, str]:
    return (TASK_ORDER.index(task) if task in TASK_ORDER else len(TASK_ORDER), task)


class Report:
    """Metric dicts per task and dataset, rendered as tables (module docstring)."""

    def __init__(self, mode: str, results: Mapping[str, Mapping[str, Mapping[str, Any]]] | None = None):
        self.mode = mode
        self.results: dict[str, dict[str, dict[str, Any]]] = {}
        for task, datasets in (results or {}).items():
            for dataset, metrics in datasets.items():
                if dataset != AVERAGE:
                    self.add(task, dataset, metrics)

    def add(self, task: str, dataset: str, metrics: Mapping[str, Any]) -> None:
        if dataset == AVERAGE:
            raise ValueError(f"a dataset may not be called {AVERAGE!r}: that row is the task average")
        self.results.setdefault(task, {})[dataset] = dict(metrics)

    def tasks(self) -> list[str]:
        return sorted(self.results, key=_task_key)

    def datasets(self, task: str) -> list[str]:
        return sorted(self.results.get(task, {}), key=lambda name: (name.lower(), name))

    def average(self, task: str) -> dict[str, float]:
        """Mean over the task's datasets of every percentage metric that all of them report."""
        rows = [self.results[task][d] for d in self.datasets(task)]
        if not rows:
            return {}
        keys = [k for k in rows[0] if is_percent(k) and all(k in r for r in rows)]
        return {k: math.fsum(float(r[k]) for r in rows) / len(rows) for k in keys}

    def to_json(self) -> dict[str, dict[str, dict[str, float]]]:
        out: dict[str, dict[str, dict[str, float]]] = {}
        for task in self.tasks():
            out[task] = {d: dict(self.results[task][d]) for d in self.datasets(task)}
            out[task][AVERAGE] = self.average(task)
        return out

    def to_text(self) -> str:
        blocks = []
        for task in self.tasks():
            cols = columns(task, self.mode)
            names = self.datasets(task) + [AVERAGE]
            width = max(len("Dataset"), *(len(n) for n in names))
            header = f"{'Dataset':<{width}}" + "".join(f"  {h:>{max(len(h), 7)}}" for h, _, _ in cols)
            lines = [f"{task}: {_TITLES.get(task, task)} ({self.mode})", header, "-" * len(header)]
            for name in names:
                metrics = self.average(task) if name == AVERAGE else self.results[task][name]
                if name == AVERAGE:
                    lines.append("-" * len(header))
                cells = []
                for h, key, percent in cols:
                    value = metrics.get(key)
                    if value is None or (name == AVERAGE and not percent):
                        text = ""
                    elif percent:
                        text = f"{float(value):.2f}"
                    else:
                        text = str(int(value))
                    cells.append(f"  {text:>{max(len(h), 7)}}")
                lines.append(f"{name:<{width}}" + "".join(cells))
            blocks.append("\n".join(lines))
        return "\n\n".join(blocks) + ("\n" if blocks else "")

    def __str__(self) -> str:
        return self.to_text()
