"""The page in a real browser (Debian's chromium, headless, driven by Playwright's Python API): it types a
sentence, submits, and the highlighted spans must be exactly the API's offsets; relations are drawn as arcs
and events list their triggers and arguments. Screenshots go to the test's temporary folder.

Reference: the API's own answer for the same request (fetched with httpx) and the typed text."""

from __future__ import annotations

import os
import shutil

import httpx
import pytest

CHROMIUM = os.environ.get("IUIE_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")

pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="chromium is not installed (apt-get install -y chromium); the page test needs it"
)


@pytest.fixture(scope="module")
def page(live_server):
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed (pip install playwright)")
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1100, "height": 760})
        page.goto(live_server + "/")
        yield page
        browser.close()


def submit(page, text: str, task: str, labels: str, roles: str = ""):
    page.fill("#text", text)
    page.select_option("#task", task)
    page.fill("#labels", labels)
    if roles:
        page.fill("#roles", roles)
    page.evaluate("document.body.dataset.state = ''")
    page.click("#submit")
    page.wait_for_selector("body[data-state=done]", timeout=20_000)


def marks(page):
    return page.eval_on_selector_all(
        "#doc mark",
        "ms => ms.map(m => [Number(m.dataset.start), Number(m.dataset.end), m.querySelector('.text').textContent, m.dataset.type, m.title])",
    )


def api(live_server, body):
    r = httpx.post(live_server + "/v1/extract", json=body, timeout=20)
    assert r.status_code == 200, r.text
    return r.json()["results"][0]


def test_entities_highlighted_at_the_api_offsets(page, live_server, tmp_path):
    text = "Anna Berg works for Atlas Motors in Oslo ."
    submit(page, text, "ner", "person, organization, location")
    expected = api(live_server, {"text": text, "task": "ner", "labels": ["person", "organization", "location"]})
    drawn = marks(page)
    assert [(s, e, t, ty) for s, e, t, ty, _ in drawn] == sorted(
        (e["pos"][0], e["pos"][1], text[e["pos"][0] : e["pos"][1]], e["type"]) for e in expected["entities"]
    )
    assert len(drawn) == 3 and all(f"{s}–{e}" in title for s, e, _, _, title in drawn)  # offsets on hover
    assert page.inner_text("#doc").replace("\n", "").startswith("Anna Berg")
    page.screenshot(path=str(tmp_path / "ner.png"), full_page=True)
    assert (tmp_path / "ner.png").stat().st_size > 10_000


def test_relations_drawn_between_mentions(page, live_server, tmp_path):
    text = "Felix Dahl works for Atlas Motors ."
    submit(page, text, "re", "work for")
    expected = api(live_server, {"text": text, "task": "re", "labels": ["work for"]})
    [relation] = expected["relations"]
    spans = {(s, e) for s, e, *_ in marks(page)}
    assert spans == {tuple(relation["head"]["pos"]), tuple(relation["tail"]["pos"])}
    assert page.locator("#arcs path.arc").count() == 1
    assert page.locator("#arcs text").text_content() == "work for"
    assert "work for" in page.inner_text("#lists table")
    page.screenshot(path=str(tmp_path / "re.png"), full_page=True)


def test_events_with_trigger_and_arguments(page, live_server, tmp_path):
    text = "Felix Dahl attacked Oslo ."
    submit(page, text, "ee", "attack", roles="attacker, place")
    expected = api(live_server, {"text": text, "task": "ee", "labels": ["attack"], "roles": ["attacker", "place"]})
    [event] = expected["events"]
    drawn = {(s, e): ty for s, e, _, ty, _ in marks(page)}
    assert drawn[tuple(event["pos"])] == "attack"
    assert {drawn[tuple(a["pos"])] for a in event["arguments"]} == {a["role"] for a in event["arguments"]}
    assert page.locator("#doc mark.trigger").count() == 1
    assert page.locator("#arcs path.arc").count() == len(event["arguments"])
    page.screenshot(path=str(tmp_path / "ee.png"), full_page=True)


def test_bad_input_shows_the_field(page):
    page.fill("#labels", " , ")
    page.evaluate("document.body.dataset.state = ''")
    page.click("#submit")
    page.wait_for_selector("body[data-state=error]", timeout=20_000)
    assert "labels" in page.inner_text("#error")
