"""The pages people open, checked as they see them: in a real headless Chromium (conftest.py),
every request recorded, assertions on what rendered rather than on HTTP status.

- ``tickertag serve``'s /docs (Swagger UI) and /redoc: once blank offline because their scripts
  came from a CDN. Here they must render the ``/v1/ner`` operation from 127.0.0.1 alone, and
  Swagger UI's "Try it out" must really tag a headline.
- Flower's dashboard, started as ``tickertag flower`` starts it, with one real worker: the worker
  table must show that worker, online, with nothing fetched from elsewhere.

Screenshots land in each test's tmp_path (for a person debugging; never asserted on).
"""

from __future__ import annotations

import json
import re
import sys
import uuid
from pathlib import Path

import httpx
import pytest

from common.paths import LABELED_DIR
from common.services import ManagedProcess, free_port, start_worker, wait_until
from training.baselines import build_gazetteer

# starts real servers and a browser: `make test-fast` leaves these out
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def service(tmp_path_factory) -> str:
    """``tickertag serve`` on a gazetteer baseline (built in about a second)."""
    model = tmp_path_factory.mktemp("gz")
    build_gazetteer([str(LABELED_DIR / "benzinga_gold_train.jsonl")], str(model))
    port = free_port()
    p = ManagedProcess("serve", [sys.executable, "-m", "tickertag", "serve", "--model", str(model),
                                 "--port", str(port)], tmp_path_factory.mktemp("log") / "serve.log")
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until(lambda: httpx.get(url + "/readyz", timeout=2).status_code == 200, 120, "serve", p)
        yield url
    finally:
        p.stop()


def test_swagger_ui_renders_offline_and_tags_a_headline(service, open_page, tmp_path: Path):
    w = open_page(service + "/docs")
    page = w.page
    try:
        op = page.locator('.opblock.opblock-post:has([data-path="/v1/ner"])')
        op.wait_for(state="visible")
        assert "tickertag NER" in page.locator(".info .title").inner_text()
        w.screenshot(tmp_path / "docs.png")

        op.locator(".opblock-summary").first.click()
        op.get_by_role("button", name="Try it out").click()
        body = op.locator("textarea.body-param__text")
        body.fill(json.dumps({"texts": ["Apple beats estimates"]}))
        op.get_by_role("button", name="Execute").click()

        live = op.locator(".live-responses-table")
        status = live.locator("tbody .response-col_status").first
        status.wait_for(state="visible")
        assert status.inner_text().strip() == "200", live.inner_text()
        shown = live.locator(".response-col_description pre").first.inner_text()
        answer = json.loads(shown)
        assert answer["model"] == "gazetteer", shown
        assert [[e["text"] for e in doc] for doc in answer["entities"]] == [["Apple"]], shown
        w.screenshot(tmp_path / "docs-executed.png")
        w.assert_healthy()
        assert any(u.startswith(service + "/openapi.json") for u in w.requests), w.requests
        assert any(u.startswith(service + "/v1/ner") for u in w.requests), w.requests
    finally:
        w.screenshot(tmp_path / "docs-final.png")


def _open_redoc(service: str, open_page, tmp_path: Path):
    w = open_page(service + "/redoc")
    page = w.page
    try:
        title = page.locator(".api-info h1")
        title.wait_for(state="visible")
        assert "tickertag NER" in title.inner_text()
        # the operation's own section: its heading and its path, rendered from openapi.json
        op = page.locator('[data-section-id="operation/ner_v1_ner_post"]').first
        op.wait_for(state="visible")
        text = op.inner_text()
        assert "/v1/ner" in text and re.search(r"\bNer\b", text) and "texts" in text, text
        page.wait_for_load_state("networkidle")  # the sidebar's images come after the first paint
        return w
    finally:
        w.screenshot(tmp_path / "redoc.png")


def test_redoc_renders_offline_and_asks_no_other_host(service, open_page, tmp_path: Path):
    """Its script, styles and the spec come from the service, and the logo ReDoc's bundle draws
    from cdn.redoc.ly is served inline (workers/ner/service.py): nothing leaves the machine."""
    _open_redoc(service, open_page, tmp_path).assert_healthy()


@pytest.fixture
def flower_with_worker(redis_url: str, make_settings, tmp_path: Path):
    """Flower as ``tickertag flower`` starts it, and one real Celery worker on the same broker;
    yields (url, worker name) once Flower knows the worker."""
    from worker_env import settings_env

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    name = f"browser-{uuid.uuid4().hex[:6]}"
    procs = [ManagedProcess("flower-cli", [sys.executable, "-m", "tickertag", "flower", "--port",
                                           str(port)], tmp_path / "flower.log")]
    try:
        wait_until(lambda: httpx.get(url + "/healthcheck", timeout=2).status_code == 200, 60,
                   "tickertag flower", procs[0])
        procs.append(start_worker("annotate", tmp_path, concurrency=1, env=settings_env(make_settings()),
                                  name=f"{name}@%h"))

        def known() -> bool:
            rows = httpx.get(url + "/workers?json=1", timeout=5).json()["data"]
            return any(r["hostname"].startswith(name + "@") and r.get("status") for r in rows)

        wait_until(known, 90, "flower to see the worker", procs[1])
        yield url, name
    finally:
        for p in reversed(procs):
            p.stop()


def test_flower_dashboard_shows_the_worker(flower_with_worker, open_page, tmp_path: Path):
    url, name = flower_with_worker
    w = open_page(url + "/")
    page = w.page
    try:
        row = page.locator("#workers-table tbody tr", has_text=name)
        row.wait_for(state="visible")
        assert "Online" in row.inner_text(), row.inner_text()
        # the table's own refresh (DataTables over /workers?json=1) ran, and the summary cards
        # were filled by the page's scripts (a page without its JS shows "Connecting…" and "—")
        page.wait_for_function(
            "document.getElementById('workers-refresh-status').textContent.startsWith('Updated')")
        assert int(page.locator("#workers-online").inner_text()) >= 1
        # the row is the scripts' (the server's HTML has the name as plain text, DataTables makes
        # it a link) and the styles applied (Bootstrap's badge colour, not a transparent span)
        link = row.locator("a.worker-name-link")
        assert link.get_attribute("title").startswith(name + "@"), link.get_attribute("title")
        assert link.get_attribute("href").startswith("/worker/" + name)
        badge = row.locator(".badge", has_text="Online")
        assert badge.evaluate("e => getComputedStyle(e).backgroundColor") not in (
            "rgba(0, 0, 0, 0)", "transparent")
        w.screenshot(tmp_path / "flower.png")
        w.assert_healthy()
    finally:
        w.screenshot(tmp_path / "flower-final.png")
