"""The JSON API's request and response bodies (pydantic: they make the OpenAPI schema) and the checks that
need the server's limits. Every problem is reported as ``{"field": ..., "message": ...}``; fields are written
as in the request (``texts[2]``, ``labels``)."""

from __future__ import annotations

import dataclasses
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictStr


@dataclasses.dataclass(frozen=True)
class Limits:
    """What one request may ask for (``iuie serve --max-text-chars`` etc.)."""

    max_text_chars: int = 10_000
    max_texts: int = 32
    max_labels: int = 64


class ExtractRequest(BaseModel):
    """``text`` (one) or ``texts`` (many); ``labels``: entity or relation types, or event types (ee) with
    their argument ``roles``; ``constrained``: grammar-constrained decoding (default off, as in the paper)."""

    model_config = ConfigDict(extra="forbid")

    text: StrictStr | None = Field(default=None, examples=["Anna Berg lives in Oslo ."])
    texts: list[StrictStr] | None = None
    task: StrictStr = Field(examples=["ner"])
    labels: list[StrictStr] = Field(examples=[["person", "location"]])
    roles: list[StrictStr] = Field(default_factory=list)
    constrained: StrictBool = False


class Mention(BaseModel):
    name: str
    pos: list[int] | None = Field(description="[start, end) character offsets; null: found nowhere in the text")


class EntityOut(Mention):
    type: str


class RelationOut(BaseModel):
    head: EntityOut
    type: str
    tail: EntityOut


class ArgumentOut(Mention):
    role: str


class EventOut(BaseModel):
    trigger: str
    type: str
    pos: list[int] | None
    arguments: list[ArgumentOut]


class ResultOut(BaseModel):
    """One text's result: ``iuie extract``'s JSON line."""

    model_config = ConfigDict(extra="allow")

    text: str
    task: str
    windows: list[list[int]]
    outputs: list[str]
    unaligned: int
    malformed: int
    cut: int


class ExtractResponse(BaseModel):
    task: str
    results: list[ResultOut]
    seconds: float = Field(description="wall time of this request in the server, queueing included")


class Problem(BaseModel):
    field: str
    message: str


class ErrorResponse(BaseModel):
    error: str
    problems: list[Problem]


def check(request: ExtractRequest, limits: Limits, tasks: dict[str, str]) -> list[dict[str, str]]:
    """The problems of a well-typed request against the limits (empty: fine)."""
    problems: list[dict[str, str]] = []

    def problem(field: str, message: str) -> None:
        problems.append({"field": field, "message": message})

    if (request.text is None) == (request.texts is None):
        problem("texts", "give exactly one of 'text' (a string) or 'texts' (a list of strings)")
    texts = [request.text] if request.text is not None else list(request.texts or [])
    field = "text" if request.text is not None else "texts"
    if request.texts is not None and not texts:
        problem("texts", "the list is empty: give at least one text")
    if len(texts) > limits.max_texts:
        problem("texts", f"{len(texts)} texts: at most {limits.max_texts} per request")
    for i, text in enumerate(texts):
        where = field if request.text is not None else f"texts[{i}]"
        if not text.strip():
            problem(where, "the text is empty")
        elif len(text) > limits.max_text_chars:
            problem(where, f"{len(text)} characters: at most {limits.max_text_chars} per text")
    task = request.task.strip().lower()
    if task not in tasks:
        problem("task", f"unknown task {request.task!r}; choose one of {', '.join(tasks)}")
    _check_names(request.labels, "labels", limits, problem, required=True)
    _check_names(request.roles, "roles", limits, problem, required=False)
    if request.roles and task in tasks and task != "ee":
        problem("roles", f"roles are for the ee task only, not {task!r}")
    return problems


def _check_names(names: list[str], field: str, limits: Limits, problem: Any, *, required: bool) -> None:
    if required and not names:
        problem(field, "the list is empty: name at least one")
    if len(names) > limits.max_labels:
        problem(field, f"{len(names)} names: at most {limits.max_labels}")
    seen: set[str] = set()
    for i, name in enumerate(names):
        key = name.strip()
        if not key:
            problem(f"{field}[{i}]", "an empty name")
        elif key in seen:
            problem(f"{field}[{i}]", f"{key!r} is given twice")
        elif "," in key:
            problem(f"{field}[{i}]", f"{key!r} holds a comma, which separates the options in the model input")
        seen.add(key)
