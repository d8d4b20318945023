"""The Engine over a real (random, tiny) model: every decode shape is compiled at start-up and no request
compiles again; batched answers equal the Extractor's own (``iuie extract``'s lines) for the same texts.

References: :meth:`Extractor.extract` on the same parameters, and JAX's own compilation events
(``jax.monitoring``), which count every backend compile."""

from __future__ import annotations

import asyncio

import httpx
import jax
import pytest
from fastapi.testclient import TestClient

from iuie.serving.app import app_for_engine
from iuie.serving.engine import (
    Engine,
    Job,
    default_max_rows,
    default_row_buckets,
    shortest_prompt,
    trained_lengths,
)
from tests.extract.conftest import random_extractor

TEXTS = ["Anna Berg lives in Oslo .", "Felix Dahl works for Atlas Motors . He lives in Vienna .", "Oslo ."]
COMPILES: list[str] = []
jax.monitoring.register_event_duration_secs_listener(
    lambda event, *a, **k: COMPILES.append(event) if event == "/jax/core/compile/backend_compile_duration" else None
)


@pytest.fixture(scope="module")
def engine():
    model = random_extractor(max_input_tokens=128, max_decode_length=6, batch_size=1)
    built = Engine.build(
        model.params,
        model.config,
        model.vocabulary,
        max_batch=2,
        row_buckets=(1, 2),
        constrained=False,
        max_input_tokens=128,
        max_decode_length=6,
    )
    # The reference: the Extractor's own API on the same parameters, at a shape the warm-up compiled.
    return built, built.extractors[(2, False)]


def test_default_row_buckets_and_max_rows():
    """Powers of two up to the maximum, which is always included; the largest decode is 8 rows on CPU (never
    more than the batch), the whole batch elsewhere."""
    assert default_row_buckets(1) == (1,)
    assert default_row_buckets(8) == (1, 2, 4, 8)
    assert default_row_buckets(12) == (1, 2, 4, 8, 12)
    assert default_max_rows(32, "cpu") == 8 and default_max_rows(4, "cpu") == 4
    assert default_max_rows(32, "gpu") == 32


def test_trained_lengths_from_config_gin(tmp_path):
    """The operative config a training run writes (TASK_FEATURE_LENGTHS line), from MODEL_DIR or a step folder."""
    (tmp_path / "checkpoints" / "checkpoint_2").mkdir(parents=True)
    (tmp_path / "config.gin").write_text("TASK_FEATURE_LENGTHS = {'inputs': 256, 'targets': 64}\n")
    assert trained_lengths(tmp_path) == {"inputs": 256, "targets": 64}
    assert trained_lengths(tmp_path / "checkpoints" / "checkpoint_2") == {"inputs": 256, "targets": 64}
    assert trained_lengths(tmp_path / "checkpoints" / "checkpoint_2" / "nothing") is None


def test_warm_up_compiles_every_shape_then_requests_compile_nothing(engine):
    built, reference = engine
    shortest = shortest_prompt(reference)
    with TestClient(app_for_engine(built, max_wait_ms=50)) as client:
        # Length buckets below the shortest possible input (instruction + one option) are skipped.
        expected = [(rows, False, b) for rows in (1, 2) for b in reference.length_buckets() if b >= shortest]
        assert built.compiled == expected and expected
        info = client.get("/v1/info").json()
        assert info["compiled_shapes"] == len(expected) and info["parameters"] > 0 and info["tasks"]["ner"] == "NER"
        before = len(COMPILES)
        one = client.post("/v1/extract", json={"text": TEXTS[0], "task": "ner", "labels": ["person", "location"]})
        many = client.post("/v1/extract", json={"texts": TEXTS, "task": "re", "labels": ["live in", "work for"]})
        assert one.status_code == 200 and many.status_code == 200, (one.text, many.text)
        assert COMPILES[before:] == [], "a request compiled a decode"
    assert one.json()["results"] == [r.to_json() for r in reference.extract(TEXTS[:1], "ner", ["person", "location"])]
    assert many.json()["results"] == [r.to_json() for r in reference.extract(TEXTS, "re", ["live in", "work for"])]


def test_concurrent_requests_share_a_decode_and_match_one_by_one(engine):
    """Two concurrent requests with the same labels become one batch (the worker's counts) with the same
    answers as alone; a request with other labels in the same batch gets its own answers."""
    built, reference = engine
    app = app_for_engine(built, max_wait_ms=300, warm_up=False)

    async def scenario():
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://t", timeout=120) as c:
                bodies = [
                    {"text": TEXTS[0], "task": "ner", "labels": ["person"]},
                    {"text": TEXTS[1], "task": "ner", "labels": ["person"]},
                ]
                answers = await asyncio.gather(*(c.post("/v1/extract", json=b) for b in bodies))
                stats = (await c.get("/v1/health")).json()["batches"]
        return answers, stats

    answers, stats = asyncio.run(scenario())
    assert [a.status_code for a in answers] == [200, 200]
    assert stats["batches"] == 1 and stats["texts"] == 2, stats
    for text, answer in zip(TEXTS, answers):
        assert answer.json()["results"] == [r.to_json() for r in reference.extract([text], "ner", ["person"])]
    mixed = built.run([Job((TEXTS[0],), "ner", ("person",)), Job((TEXTS[2],), "re", ("live in",))])
    assert [r.to_json() for r in mixed[1]] == [r.to_json() for r in reference.extract([TEXTS[2]], "re", ["live in"])]


def test_labels_too_long_for_the_budget_fail_alone(engine):
    """Options that fill the input budget by themselves are a 422 on ``labels``; the other job of the same
    batch still gets its answer."""
    built, _ = engine
    long_labels = tuple(f"label number {i}" for i in range(40))
    results = built.run([Job((TEXTS[0],), "ner", long_labels), Job((TEXTS[0],), "ner", ("person",))])
    assert getattr(results[0], "field", None) == "labels" and "budget" in str(results[0])
    assert isinstance(results[1], list) and results[1][0].text == TEXTS[0]


def test_a_batch_over_max_rows_decodes_in_chunks_each_in_its_own_bucket(engine):
    """Three texts with at most 2 rows per decode: one 2-row decode and one 1-row decode (the Extractors'
    batch counters), the answers those of the Extractor on each text alone; a zero padding row never shows."""
    built, reference = engine
    calls: dict[int, int] = {}
    originals = {key: extractor._decode for key, extractor in built.extractors.items()}

    def counting(rows, decode):
        def call(*args):
            calls[rows] = calls.get(rows, 0) + 1
            return decode(*args)

        return call

    for (rows, mode), extractor in built.extractors.items():
        extractor._decode = counting(rows, originals[(rows, mode)])
    try:
        [results] = built.run([Job(tuple(TEXTS), "ner", ("person", "location"))])
    finally:
        for key, extractor in built.extractors.items():
            extractor._decode = originals[key]
    assert calls == {2: 1, 1: 1}, calls
    for text, result in zip(TEXTS, results):
        assert result.to_json() == reference.extract([text], "ner", ["person", "location"])[0].to_json()
