"""A real headless browser for the pages people look at: Debian's Chromium driven by Playwright.

The browser is Debian's package at /usr/bin/chromium, installed by ``make install``
(scripts/install_chromium.sh); Playwright's own ``playwright install`` is never used (it downloads
browser builds from a host that is not reachable). Without the background-networking flags
Chromium's own connections (component updates, sync, QUIC probes) are refused by a closed network
and its start can stall.

Every request a page makes, from the page or anything it loads, is recorded (``PageWatch``): a
test asserts that none leaves 127.0.0.1, so a page that needs a CDN fails here as it fails
offline for a user, instead of rendering on a developer's machine that happens to be online.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlparse

import pytest

from common.paths import CODE_ROOT

CHROMIUM = os.environ.get("TICKERTAG_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
LOCAL_HOSTS = {"127.0.0.1"}
TIMEOUT_MS = 30_000  # the CPU may be busy with training: generous, still bounded


def _chromium() -> str:
    """The browser's path; installed on first use by the installer ``make install`` runs. A
    browser that still is not there is a failure: the install step is broken."""
    if not os.access(CHROMIUM, os.X_OK):
        subprocess.run(["bash", str(CODE_ROOT / "scripts" / "install_chromium.sh")],
                       capture_output=True, text=True, timeout=600, check=False)
    if not os.access(CHROMIUM, os.X_OK):
        pytest.fail(f"no Chromium at {CHROMIUM}: run `make install` (scripts/install_chromium.sh)")
    return CHROMIUM


# Module scope, not session: Playwright's sync API keeps an event loop running in this thread
# until it stops, and later tests that call asyncio.run() would fail beside it.
@pytest.fixture(scope="module")
def browser() -> Iterator:
    from playwright.sync_api import sync_playwright  # the dev extra: make install
    exe = _chromium()
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=exe, args=CHROMIUM_ARGS, timeout=60_000)
        try:
            yield b
        finally:
            b.close()


@dataclass
class PageWatch:
    """What a page did while a test looked at it."""

    page: object
    requests: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    bad_responses: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)  # uncaught exceptions in the page's scripts

    def remote(self) -> list[str]:
        """Requests that left the machine (or tried to): anything not to 127.0.0.1."""
        out = []
        for url in self.requests:
            u = urlparse(url)
            if u.scheme in ("data", "blob", "about"):
                continue
            if u.hostname not in LOCAL_HOSTS:
                out.append(url)
        return out

    def assert_healthy(self) -> None:
        assert not self.remote(), f"requests left 127.0.0.1: {self.remote()}"
        assert not self.failed, f"requests failed: {self.failed}"
        assert not self.bad_responses, f"error responses: {self.bad_responses}"
        assert not self.errors, f"script errors: {self.errors}"

    def screenshot(self, path: Path) -> Path:
        """For a person debugging a failure; never asserted on."""
        try:
            self.page.screenshot(path=str(path), full_page=True)
        except Exception as e:  # a screenshot must not hide the real failure
            print(f"screenshot {path} failed: {e}")
        return path


@pytest.fixture
def open_page(browser) -> Iterator:
    """``open_page(url)``: a fresh browser context (no cache, no cookies) and a page watched
    from before its first request, already navigated to ``url``."""
    contexts = []

    def open_(url: str) -> PageWatch:
        ctx = browser.new_context(viewport={"width": 1280, "height": 900}, service_workers="block")
        ctx.set_default_timeout(TIMEOUT_MS)
        contexts.append(ctx)
        page = ctx.new_page()
        w = PageWatch(page)
        # on the context: also requests from workers and frames the page starts
        ctx.on("request", lambda r: w.requests.append(r.url))
        ctx.on("requestfailed", lambda r: w.failed.append(f"{r.url}: {r.failure}"))
        ctx.on("response", lambda r: r.status >= 400 and w.bad_responses.append(f"{r.status} {r.url}"))
        page.on("pageerror", lambda e: w.errors.append(str(e)))
        page.goto(url, wait_until="load")
        return w

    yield open_
    for ctx in contexts:
        ctx.close()
