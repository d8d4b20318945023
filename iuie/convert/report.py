"""What a conversion dropped, changed or ignored, and the error for malformed input.

Converters never drop a mention or a line silently: every drop, change or ignored line goes through a
:class:`ConversionReport` under a short, stable reason, with the first few places (file and line) kept as
examples so that a user can look at them. The report is printed and written as ``conversion_report.json``.

Counts are tagged with the *section* they concern (``"NER"`` for entities, ``"RE"`` for relations,
``"EE"`` for events; ``None`` for everything else). A reader produces every section it can, but only the
section of the task being written is output, so counts of the other sections are left out of the report
(a relation that crosses a sentence boundary is not a loss when only entities are written).

Malformed input (a line that cannot be read at all) is a :class:`ConversionError` naming the file and line;
with ``strict=True`` every drop is one too.
"""

from __future__ import annotations

import collections
import dataclasses
from typing import Any

# Which section of a record a layout task writes.
TASK_SECTION = {"NER": "NER", "RE": "RE", "EE": "EE"}


class ConversionError(ValueError):
    """Input that cannot be converted. ``str()`` reads ``path:line: message`` (``path: message``)."""

    def __init__(self, path: str, line: int | None, message: str):
        self.path = str(path)
        self.line = line
        self.message = message
        where = self.path if line is None else f"{self.path}:{line}"
        super().__init__(f"{where}: {message}")


def where(path: str, line: int | None = None) -> str:
    """``path:line`` as the report's examples and errors spell a place."""
    return str(path) if line is None else f"{path}:{line}"


@dataclasses.dataclass
class ConversionReport:
    """Counts per reason of what a conversion dropped, changed or ignored, for the task being written."""

    task: str | None = None
    strict: bool = False
    dropped: collections.Counter[str] = dataclasses.field(default_factory=collections.Counter)
    changed: collections.Counter[str] = dataclasses.field(default_factory=collections.Counter)
    ignored: collections.Counter[str] = dataclasses.field(default_factory=collections.Counter)
    # reason -> the first few places (``path:line: detail``).
    examples: dict[str, list[str]] = dataclasses.field(default_factory=dict)
    # Filled by the pipeline: per split, the input files and what was written.
    splits: dict[str, dict[str, Any]] = dataclasses.field(default_factory=dict)
    # Label map use: code -> name for codes the map named, and for codes it did not (with counts).
    labels_mapped: dict[str, str] = dataclasses.field(default_factory=dict)
    labels_unmapped: dict[str, str] = dataclasses.field(default_factory=dict)
    label_counts: collections.Counter[str] = dataclasses.field(default_factory=collections.Counter)
    # Facts about the input worth showing (the tag scheme detected per file, the sentence splitter used).
    notes: dict[str, Any] = dataclasses.field(default_factory=dict)

    MAX_EXAMPLES = 3

    def _relevant(self, section: str | None) -> bool:
        return section is None or self.task is None or TASK_SECTION.get(self.task) == section

    def _note(
        self, counter: collections.Counter[str], reason: str, path: str | None, line: int | None, detail: str
    ) -> None:
        counter[reason] += 1
        if path is not None:
            shown = self.examples.setdefault(reason, [])
            if len(shown) < self.MAX_EXAMPLES:
                shown.append(f"{where(path, line)}: {detail}" if detail else where(path, line))

    def drop(
        self,
        reason: str,
        path: str | None = None,
        line: int | None = None,
        detail: str = "",
        *,
        section: str | None = None,
    ) -> None:
        """Counts something left out of the output; raises :class:`ConversionError` under ``strict``."""
        if not self._relevant(section):
            return
        if self.strict:
            message = f"{reason} ({detail})" if detail else reason
            raise ConversionError(path or "<input>", line, f"{message} [refused by --strict]")
        self._note(self.dropped, reason, path, line, detail)

    def change(
        self,
        reason: str,
        path: str | None = None,
        line: int | None = None,
        detail: str = "",
        *,
        section: str | None = None,
    ) -> None:
        """Counts something written differently from the input (trimmed, merged, re-labelled)."""
        if self._relevant(section):
            self._note(self.changed, reason, path, line, detail)

    def ignore(
        self,
        reason: str,
        path: str | None = None,
        line: int | None = None,
        detail: str = "",
        *,
        section: str | None = None,
    ) -> None:
        """Counts input that carries nothing the layout can hold (``-DOCSTART-``, BRAT notes)."""
        if self._relevant(section):
            self._note(self.ignored, reason, path, line, detail)

    def to_json(self) -> dict[str, Any]:
        return {
            "task": self.task,
            "splits": self.splits,
            "dropped": dict(sorted(self.dropped.items())),
            "changed": dict(sorted(self.changed.items())),
            "ignored": dict(sorted(self.ignored.items())),
            "labels": {
                "mapped": dict(sorted(self.labels_mapped.items())),
                "unmapped": dict(sorted(self.labels_unmapped.items())),
                "counts": dict(sorted(self.label_counts.items())),
            },
            "examples": {k: v for k, v in sorted(self.examples.items())},
            "notes": self.notes,
        }

    def summary(self) -> str:
        """A few human-readable lines (what the command prints)."""
        lines = []
        for split, info in self.splits.items():
            lines.append(f"{split}: {info.get('records', 0)} records from {', '.join(info.get('files', []))}")
        for title, counter in (("dropped", self.dropped), ("changed", self.changed), ("ignored", self.ignored)):
            if counter:
                lines.append(f"{title}: " + ", ".join(f"{n} {r}" for r, n in sorted(counter.items())))
        if self.labels_unmapped:
            lines.append(
                "labels not in the label map: "
                + ", ".join(f"{code!r} -> {name!r}" for code, name in sorted(self.labels_unmapped.items()))
            )
        return "\n".join(lines)
