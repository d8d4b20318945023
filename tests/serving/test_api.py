"""The JSON API over a stand-in model: answers in ``iuie extract``'s shape, and a 4xx naming the field for
every kind of bad input (the issue's list), a logged 500 for a model failure; the server keeps serving.

References: the request bodies themselves (offsets index their texts), :meth:`Extraction.to_json` (the line
``iuie extract`` writes), and FastAPI's OpenAPI document."""

from __future__ import annotations

import asyncio
import logging

import httpx
import pytest
from fastapi.testclient import TestClient

from iuie.serving.schema import Limits
from tests.serving.conftest import StandIn, gazetteer_extract, stand_in_app

TEXT = "Anna Berg lives in Oslo ."
GOOD = {"text": TEXT, "task": "ner", "labels": ["person", "location"]}


@pytest.fixture()
def client():
    with TestClient(stand_in_app(limits=Limits(max_text_chars=200, max_texts=3, max_labels=4))) as c:
        yield c


def test_extract_one_text_in_extract_shape(client):
    r = client.post("/v1/extract", json=GOOD)
    assert r.status_code == 200, r.text
    body = r.json()
    [result] = body["results"]
    assert result == gazetteer_extract(TEXT, "ner", ("person", "location")).to_json()
    assert [(e["name"], e["type"], e["pos"]) for e in result["entities"]] == [
        ("Anna Berg", "person", [0, 9]),
        ("Oslo", "location", [19, 23]),
    ]
    for e in result["entities"]:
        assert TEXT[e["pos"][0] : e["pos"][1]] == e["name"]


def test_extract_many_texts_keeps_order_and_ee_roles(client):
    texts = ["Felix Dahl attacked Oslo .", "Anna Berg married Felix Dahl ."]
    r = client.post(
        "/v1/extract", json={"texts": texts, "task": "EE", "labels": ["attack", "marry"], "roles": ["agent"]}
    )
    assert r.status_code == 200, r.text
    results = r.json()["results"]
    assert [x["text"] for x in results] == texts
    assert [ev["type"] for x in results for ev in x["events"]] == ["attack", "marry"]
    assert results[0]["events"][0]["pos"] == [11, 19] and results[0]["events"][0]["arguments"][0]["role"] == "agent"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({**GOOD, "text": ""}, "text"),
        ({**GOOD, "text": "   \n"}, "text"),
        ({**GOOD, "text": "x" * 201}, "text"),
        ({"texts": ["ok .", ""], "task": "ner", "labels": ["person"]}, "texts[1]"),
        ({"texts": [], "task": "ner", "labels": ["person"]}, "texts"),
        ({"texts": ["a", "b", "c", "d"], "task": "ner", "labels": ["person"]}, "texts"),
        ({"task": "ner", "labels": ["person"]}, "texts"),
        ({**GOOD, "texts": ["both"]}, "texts"),
        ({**GOOD, "labels": []}, "labels"),
        ({**GOOD, "labels": ["person", " "]}, "labels[1]"),
        ({**GOOD, "labels": ["person", "person "]}, "labels[1]"),
        ({**GOOD, "labels": ["a", "b", "c", "d", "e"]}, "labels"),
        ({**GOOD, "labels": ["a, b"]}, "labels[0]"),
        ({**GOOD, "task": "pos-tagging"}, "task"),
        ({**GOOD, "roles": ["agent"]}, "roles"),
        ({**GOOD, "task": "ee", "labels": ["attack"], "roles": ["agent", "agent"]}, "roles[1]"),
        ({**GOOD, "text": 5}, "text"),
        ({"texts": ["ok", 7], "task": "ner", "labels": ["person"]}, "texts[1]"),
        ({**GOOD, "labels": "person"}, "labels"),
        ({**GOOD, "labels": ["person", 3]}, "labels[1]"),
        ({**GOOD, "task": None}, "task"),
        ({**GOOD, "constrained": "yes"}, "constrained"),
        ({k: v for k, v in GOOD.items() if k != "task"}, "task"),
        ({**GOOD, "colour": "red"}, "colour"),
    ],
)
def test_bad_input_is_422_naming_the_field(client, body, field):
    r = client.post("/v1/extract", json=body)
    assert r.status_code == 422, r.text
    assert field in [p["field"] for p in r.json()["problems"]], r.json()
    assert client.post("/v1/extract", json=GOOD).status_code == 200  # still serving


@pytest.mark.parametrize("raw", [b"{not json", b"", b"[1, 2", b"\xff\xfe"])
def test_malformed_json_is_400(client, raw):
    r = client.post("/v1/extract", content=raw, headers={"content-type": "application/json"})
    assert r.status_code in (400, 422), r.text
    body = r.json()
    assert body["problems"] and body["problems"][0]["field"] == "body", body
    assert client.post("/v1/extract", json=GOOD).status_code == 200


def test_body_that_is_not_an_object_is_422(client):
    r = client.post("/v1/extract", json=["a list"])
    assert r.status_code == 422 and r.json()["problems"][0]["field"] == "body", r.text


def test_model_failure_is_500_logged_and_server_survives(client, caplog):
    with caplog.at_level(logging.ERROR, logger="iuie.serve"):
        r = client.post("/v1/extract", json={**GOOD, "text": "EXPLODE here ."})
    assert r.status_code == 500 and "the model broke" in r.json()["error"], r.text
    assert client.post("/v1/extract", json=GOOD).status_code == 200
    assert client.get("/v1/health").json()["status"] == "ok"


def test_runner_crash_is_500_and_worker_goes_on(caplog):
    calls = []

    def crashing(jobs):
        calls.append(len(jobs))
        if len(calls) == 1:
            raise MemoryError("out of device memory")
        return StandIn()(jobs)

    with TestClient(stand_in_app(crashing)) as c, caplog.at_level(logging.ERROR, logger="iuie.serve"):
        r = c.post("/v1/extract", json=GOOD)
        assert r.status_code == 500 and "out of device memory" in r.json()["error"]
        assert "batch of 1 jobs failed" in caplog.text
        assert c.post("/v1/extract", json=GOOD).status_code == 200


def test_health_info_openapi_and_page(client):
    assert client.get("/v1/health").json()["status"] == "ok"
    info = client.get("/v1/info").json()
    assert info["api"] == "v1" and set(info["tasks"]) == {"ner", "re", "ee"}
    assert info["limits"] == {"max_text_chars": 200, "max_texts": 3, "max_labels": 4}
    schema = client.get("/openapi.json").json()
    assert "/v1/extract" in schema["paths"] and "ExtractRequest" in schema["components"]["schemas"]
    page = client.get("/")
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    assert "/static/app.js" in page.text and "http" not in page.text.replace("http-equiv", "")  # no CDN
    assert client.get("/static/app.js").status_code == 200 and client.get("/static/app.css").status_code == 200


def test_concurrent_requests_are_batched_without_blocking_the_loop():
    """Ten requests sent at once reach the runner in fewer batches than requests (max wait 200 ms), and the
    event loop answers /v1/health while a slow batch runs in the worker thread."""
    runner = StandIn(delay=0.3)
    app = stand_in_app(runner, max_batch=16, max_wait_ms=200)

    async def scenario():
        transport = httpx.ASGITransport(app=app)
        async with app.router.lifespan_context(app):
            async with httpx.AsyncClient(transport=transport, base_url="http://test") as c:
                sent = [asyncio.create_task(c.post("/v1/extract", json=GOOD)) for _ in range(10)]
                await asyncio.sleep(0.25)
                loop = asyncio.get_running_loop()
                t0 = loop.time()
                health = await c.get("/v1/health")
                health_seconds = loop.time() - t0
                answers = await asyncio.gather(*sent)
        return answers, health, health_seconds

    answers, health, health_seconds = asyncio.run(scenario())
    assert all(a.status_code == 200 for a in answers)
    assert sum(runner.batches) == 10 and len(runner.batches) < 10, runner.batches
    assert health.status_code == 200 and health_seconds < 0.25, health_seconds
