"""Fixtures of the serving tests: a stand-in model (a gazetteer: deterministic, no JAX) behind the real app,
and a real server on 127.0.0.1 (uvicorn in a thread) for the browser test."""

from __future__ import annotations

import socket
import threading
import time

import pytest

from iuie.extraction.extractor import Extraction
from iuie.ie.records import Argument, Entity, Event, Relation

# What the stand-in "finds": (mention, entity type), relations between found mentions, event triggers.
GAZETTEER = {"Anna Berg": "person", "Oslo": "location", "Atlas Motors": "organization", "Felix Dahl": "person"}
TRIGGERS = {"attacked": "attack", "married": "marry"}


def _find(text: str, mention: str) -> tuple[int, int] | None:
    start = text.find(mention)
    return None if start < 0 else (start, start + len(mention))


def gazetteer_extract(text: str, task: str, labels: tuple[str, ...], roles: tuple[str, ...] = ()) -> Extraction:
    """The stand-in's answer in the Extractor's own result types (so the JSON is ``iuie extract``'s)."""
    found = [(m, t, _find(text, m)) for m, t in GAZETTEER.items() if _find(text, m)]
    entities = tuple(Entity(m, t, *pos) for m, t, pos in found if t in labels) if task == "ner" else ()
    relations: tuple = ()
    events: tuple = ()
    if task == "re" and len(found) >= 2:
        (hm, _, hp), (tm, _, tp) = sorted(found, key=lambda f: f[2])[:2]
        relations = (Relation(Entity(hm, "", *hp), labels[0], Entity(tm, "", *tp)),)
    if task == "ee":
        for word, etype in TRIGGERS.items():
            pos = _find(text, word)
            if pos and etype in labels:
                args = (
                    tuple(Argument(m, roles[i % len(roles)], *p) for i, (m, _, p) in enumerate(found)) if roles else ()
                )
                events += (Event(word, etype, *pos, args),)
    return Extraction(text, task, entities, relations, events, ((0, len(text)),), ("stand-in",), 0, 0, 0)


class StandIn:
    """A runner for :func:`iuie.serving.app.create_app`: records each batch it is given."""

    def __init__(self, delay: float = 0.0):
        self.batches: list[int] = []
        self.delay = delay

    def __call__(self, jobs):
        self.batches.append(len(jobs))
        time.sleep(self.delay)
        out = []
        for job in jobs:
            if "EXPLODE" in job.texts[0]:
                out.append(RuntimeError("the model broke"))
                continue
            out.append([gazetteer_extract(t, job.task, job.labels, job.roles) for t in job.texts])
        return out


def stand_in_app(runner=None, **options):
    from iuie.serving.app import create_app

    return create_app(runner or StandIn(), info=lambda: {"checkpoint": "stand-in", "parameters": 0}, **options)


@pytest.fixture(scope="session")
def live_server():
    """The stand-in app on a free loopback port, served by uvicorn in a thread; yields its base URL."""
    import uvicorn

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(stand_in_app(), host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the test server did not start")
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(10)
