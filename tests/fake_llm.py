"""A small OpenAI-compatible chat server that misbehaves on request.

Allowed by the project's rules only to inject faults a real server cannot be told to produce.
Behaviour is chosen by markers in the headline text, counted per headline, e.g.
``#429x2`` (two 429s with Retry-After, then a good answer), ``#500x1``, ``#down`` (always 500),
``#timeout`` (always slower than any sane timeout), ``#timeoutx1``, ``#badjson``, ``#schema``,
``#halluc`` (names a company that is not in the text), ``#400`` (never worth a retry).
A good answer names the capitalised first word of the headline, after a fixed ``latency``.
With ``grant=N`` it also enforces its own rate limit, N requests per fixed window (the first
starting at its first request), announces it on every response in OpenAI's or Anthropic's
rate-limit headers and answers 429 beyond it; ``log`` keeps every request's arrival and status.
Used by the fault tests and by ``benchmarks/dispatch.py``.
"""

from __future__ import annotations

import asyncio
import json
import math
import random
import re
import threading
import time
from collections import Counter
from datetime import UTC, datetime

from aiohttp import web

_MARK = re.compile(r"#(429|500|timeout)x(\d+)")


class FakeLLM:
    def __init__(self, latency: float = 0.0, slow_s: float = 30.0, error_rate: float = 0.0,
                 seed: int = 0, latency_max: float = 0.0, grant: int = 0,
                 grant_window_s: float = 1.0, grant_style: str = "openai") -> None:
        self.latency, self.slow_s = latency, slow_s
        # latency_max > latency: each answer takes uniform(latency, latency_max) (soak realism)
        self.latency_max = latency_max
        # random faults for soak runs: a share of calls gets 429 / 500 / a timeout / bad JSON
        self.error_rate = error_rate
        self.rng = random.Random(seed)
        self.calls: Counter[str] = Counter()
        self.faults: Counter[str] = Counter()  # injected faults by kind, read through /admin
        self.total_calls = 0
        self.authorization: Counter[str] = Counter()  # Authorization headers received
        self.arrivals: dict[str, list[float]] = {}  # per headline, when each request came in
        self.grant, self.grant_window_s, self.grant_style = grant, grant_window_s, grant_style
        # (time.monotonic() on arrival, status, headline) of every request
        self.log: list[tuple[float, int, str]] = []
        self._t0: float | None = None  # start of the first rate-limit window
        self._window = (-1, 0)  # (window index, requests admitted in it)
        self.port = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._runner: web.AppRunner | None = None
        self._thread: threading.Thread | None = None

    # -- answers ---------------------------------------------------------------------------
    @staticmethod
    def good_answer(text: str) -> str:
        words = [w for w in re.findall(r"[A-Z][A-Za-z&]+", text) if not w.startswith("#")]
        first = words[:1]
        return json.dumps({"result": first, "normalized_result": first})

    def _completion(self, content: str) -> dict:
        return {
            "id": "fake", "object": "chat.completion", "created": int(time.time()),
            "model": "fake",
            "choices": [{"index": 0, "finish_reason": "stop",
                         "message": {"role": "assistant", "content": content}}],
            "usage": {"prompt_tokens": 400, "completion_tokens": 20, "total_tokens": 420},
        }

    # -- its own rate limit ------------------------------------------------------------------
    @staticmethod
    def go_duration(seconds: float) -> str:
        """A duration as OpenAI writes it: ``20ms``, ``1s``, ``6m0s``."""
        ms = math.ceil(seconds * 1000)
        if ms < 1000:
            return f"{ms}ms"
        minutes, secs = divmod(ms / 1000, 60)
        return f"{int(minutes)}m{secs:g}s" if minutes else f"{secs:g}s"

    def _admit(self, now: float) -> tuple[bool, dict[str, str], float]:
        """Count one request against the current window: (admitted, headers, seconds to reset)."""
        if self._t0 is None:
            self._t0 = now
        index = int((now - self._t0) // self.grant_window_s)
        used = self._window[1] if self._window[0] == index else 0
        admitted = used < self.grant
        used += admitted
        self._window = (index, used)
        reset = self._t0 + (index + 1) * self.grant_window_s - now
        left = str(self.grant - used)
        if self.grant_style == "anthropic":
            # to the millisecond, rounded up: never before the window really ends
            at = datetime.fromtimestamp(math.ceil((time.time() + reset) * 1000) / 1000, UTC)
            headers = {"anthropic-ratelimit-requests-limit": str(self.grant),
                       "anthropic-ratelimit-requests-remaining": left,
                       "anthropic-ratelimit-requests-reset":
                           at.isoformat(timespec="milliseconds").replace("+00:00", "Z")}
        else:
            headers = {"x-ratelimit-limit-requests": str(self.grant),
                       "x-ratelimit-remaining-requests": left,
                       "x-ratelimit-reset-requests": self.go_duration(reset)}
        return admitted, headers, reset

    async def handle(self, request: web.Request) -> web.Response:
        now = time.monotonic()
        body = await request.json()
        text = body["messages"][-1]["content"].removeprefix("Headline: ")
        headers: dict[str, str] = {}
        if self.grant:
            admitted, headers, reset = self._admit(now)
            if not admitted:
                self.faults["429"] += 1
                self.log.append((now, 429, text))
                return web.json_response({"error": "rate limited"}, status=429, headers={
                    **headers, "Retry-After": str(math.ceil(reset))})
        resp = await self._answer(request, text)
        resp.headers.update(headers)
        self.log.append((now, resp.status, text))
        return resp

    async def _answer(self, request: web.Request, text: str) -> web.Response:
        self.total_calls += 1
        self.authorization[request.headers.get("Authorization", "")] += 1
        self.calls[text] += 1
        self.arrivals.setdefault(text, []).append(time.monotonic())
        n = self.calls[text]
        if self.latency_max > self.latency:
            await asyncio.sleep(self.rng.uniform(self.latency, self.latency_max))
        elif self.latency:
            await asyncio.sleep(self.latency)
        if self.error_rate and self.rng.random() < self.error_rate:
            kind = self.rng.choice(["429", "500", "timeout", "badjson"])
            if kind == "badjson":
                self.faults["badjson"] += 1
                return web.json_response(self._completion('{"result": ["'))
            return await self._fault(kind)
        for kind, count in _MARK.findall(text):
            if n <= int(count):
                return await self._fault(kind)
        if "#down" in text:
            return await self._fault("500")
        if "#timeout" in text and not _MARK.search(text):
            return await self._fault("timeout")
        if "#400" in text:
            self.faults["400"] += 1
            return web.json_response({"error": "bad request"}, status=400)
        if "#badjson" in text:
            self.faults["badjson"] += 1
            content = '{"result": ["Apple", '
        elif "#schema" in text:
            self.faults["schema"] += 1
            content = json.dumps({"companies": ["Apple"]})
        elif "#halluc" in text:
            self.faults["halluc"] += 1
            content = json.dumps({"result": ["Nonexistent Corp"] + json.loads(
                self.good_answer(text))["result"], "normalized_result": []})
        else:
            content = self.good_answer(text)
        return web.json_response(self._completion(content))

    async def _fault(self, kind: str) -> web.Response:
        self.faults[kind] += 1
        if kind == "429":
            return web.json_response({"error": "rate limited"}, status=429,
                                     headers={"Retry-After": "1"})
        if kind == "500":
            return web.json_response({"error": "boom"}, status=500)
        await asyncio.sleep(self.slow_s)
        return web.json_response(self._completion("{}"))

    async def admin(self, request: web.Request) -> web.Response:
        """POST {"latency": s, "latency_max": s, "error_rate": p} changes behaviour at run time;
        GET reads counters (calls, injected faults by kind)."""
        if request.method == "POST":
            body = await request.json()
            self.latency = float(body.get("latency", self.latency))
            self.latency_max = float(body.get("latency_max", self.latency_max))
            self.error_rate = float(body.get("error_rate", self.error_rate))
        return web.json_response({"latency": self.latency, "latency_max": self.latency_max,
                                  "error_rate": self.error_rate, "total_calls": self.total_calls,
                                  "texts": len(self.calls),
                                  "calls_max": max(self.calls.values(), default=0),
                                  "faults": dict(self.faults)})

    async def models(self, request: web.Request) -> web.Response:
        return web.json_response({"object": "list", "data": [{"id": "fake"}]})

    # -- lifecycle -------------------------------------------------------------------------
    def start(self, port: int = 0) -> FakeLLM:
        ready = threading.Event()

        def run() -> None:
            self._loop = asyncio.new_event_loop()
            asyncio.set_event_loop(self._loop)
            app = web.Application(client_max_size=4 * 1024 * 1024)
            app.router.add_post("/v1/chat/completions", self.handle)
            app.router.add_get("/v1/models", self.models)
            app.router.add_route("*", "/admin", self.admin)
            self._runner = web.AppRunner(app, access_log=None)
            self._loop.run_until_complete(self._runner.setup())
            site = web.TCPSite(self._runner, "127.0.0.1", port, backlog=1024)
            self._loop.run_until_complete(site.start())
            self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
            ready.set()
            self._loop.run_forever()

        self._thread = threading.Thread(target=run, daemon=True)
        self._thread.start()
        ready.wait(10)
        return self

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        if self._loop and self._runner:
            fut = asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop)
            fut.result(10)
            self._loop.call_soon_threadsafe(self._loop.stop)


def main() -> None:
    """``python tests/fake_llm.py --port P --latency 0.2``: a standalone fake endpoint."""
    import argparse

    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, default=8099)
    ap.add_argument("--latency", type=float, default=0.2)
    ap.add_argument("--latency-max", type=float, default=0.0,
                    help="answer after uniform(latency, latency-max) seconds when larger")
    ap.add_argument("--error-rate", type=float, default=0.0)
    ap.add_argument("--slow-s", type=float, default=30.0)
    a = ap.parse_args()
    f = FakeLLM(latency=a.latency, error_rate=a.error_rate, slow_s=a.slow_s,
                latency_max=a.latency_max).start(a.port)
    print(f"fake LLM on {f.url}", flush=True)
    while True:
        time.sleep(3600)


if __name__ == "__main__":
    main()
