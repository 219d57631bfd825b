"""An OpenAI-compatible chat server that answers from a recording of an LLM's answers.

Why a real HTTP server and not a shortcut in the worker: the cascade's escalation must be
measured on the product's own path (producer, ``annotate`` queue, ``AsyncInferenceClient``,
grammar, parsing, span alignment, cache, ledger, dead letters). Only the model is replaced: a
strong LLM that answered these headlines once, recorded as JSONL (``id``, ``text``, ``entities``
with ``start``, ``end``, ``label``, ``text``), is asked again through ``/v1/chat/completions``.

The answer is the grammar's JSON form (``workers.annotate.llm_schema.Companies``): the recorded
entity strings in headline order, each once, as ``result`` and ``normalized_result``. The
worker aligns them to spans as it would a live LLM's answer, so what the cascade stores is what
a live LLM with those answers would have produced (``fidelity`` measures the difference).

A headline the recording lacks is answered ``404`` (a status the client never retries): it ends
as a dead letter, counted in the run's ledger and reported, never silently dropped.

``usage`` reports token counts estimated as characters / 4 (the estimate the rate limiter
uses): a recording has no tokenizer, and the cascade's cost figures say so.

Run it as ``tickertag llm replay --recording FILE`` or ``python -m cascade.replay``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import Counter
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from aiohttp import web

from common.jsonl import read_jsonl
from common.paths import DATA_DIR
from common.spans import LABEL, align_spans
from workers.annotate.prompt import build_messages

RECORDING = DATA_DIR / "cascade" / "benzinga_llm_pool_contested.jsonl"
REVIEWED = DATA_DIR / "cascade" / "benzinga_reviewed_pool_contested.jsonl"
USER_PREFIX = build_messages("")[-1]["content"]  # "Headline: ": the prompt's only framing
REPLAY_MODEL = "replay"


def norm(text: str) -> str:
    """The lookup key of a headline (case and spacing ignored, as held-out titles are matched)."""
    return " ".join(text.lower().split())


def mentions(row: dict[str, Any]) -> list[str]:
    """A recorded row's entity strings in headline order, each once (the grammar's ``result``)."""
    seen: dict[str, None] = {}
    for e in sorted(row.get("entities") or [], key=lambda e: e["start"]):
        seen.setdefault(e["text"], None)
    return list(seen)


def estimate_tokens(text: str) -> int:
    return max(1, len(text) // 4)


class Recording:
    """Recorded answers looked up by headline text."""

    def __init__(self, rows: Iterable[dict[str, Any]]) -> None:
        self.rows = {norm(r["text"]): r for r in rows}

    @classmethod
    def load(cls, path: str | Path) -> Recording:
        p = Path(path)
        if not p.exists():
            raise FileNotFoundError(f"{p}: no such recording")
        return cls(read_jsonl(p))

    def __len__(self) -> int:
        return len(self.rows)

    def __contains__(self, text: str) -> bool:
        return norm(text) in self.rows

    def row(self, text: str) -> dict[str, Any] | None:
        return self.rows.get(norm(text))

    def answer(self, text: str) -> dict[str, list[str]] | None:
        row = self.row(text)
        if row is None:
            return None
        m = mentions(row)
        return {"result": m, "normalized_result": list(m)}

    def fidelity(self) -> dict[str, Any]:
        """How exactly a replayed answer, once aligned as the worker aligns it, gives back the
        recorded spans: exact-span P/R/F1 over the whole recording (the one shared scorer)."""
        from common.metrics import score
        from common.spans import Span

        gold, pred = [], []
        for row in self.rows.values():
            text = row["text"]
            gold.append([Span(start=e["start"], end=e["end"], label=LABEL, text=e["text"])
                         for e in row.get("entities") or []])
            pred.append(align_spans(text, mentions(row)).spans)
        return {"headlines": len(gold), **score(gold, pred).as_dict()}


def _completion(content: str, prompt_chars: int, model: str) -> dict[str, Any]:
    pt, ct = estimate_tokens("x" * prompt_chars), estimate_tokens(content)
    return {"id": f"replay-{time.time_ns()}", "object": "chat.completion",
            "created": int(time.time()), "model": model,
            "choices": [{"index": 0, "finish_reason": "stop",
                         "message": {"role": "assistant", "content": content}}],
            "usage": {"prompt_tokens": pt, "completion_tokens": ct, "total_tokens": pt + ct}}


def _error(status: int, message: str, kind: str) -> web.Response:
    return web.json_response({"error": {"message": message, "type": kind}}, status=status)


def make_app(recording: Recording, model: str = REPLAY_MODEL) -> web.Application:
    """The aiohttp application: ``/v1/chat/completions``, ``/v1/models``, ``/health``,
    ``/stats`` (calls answered and missed, for reports and tests)."""
    stats: Counter[str] = Counter()

    async def chat(request: web.Request) -> web.Response:
        try:
            body = await request.json()
            messages = body["messages"]
            user = next(m["content"] for m in reversed(messages) if m.get("role") == "user")
        except (ValueError, KeyError, TypeError, StopIteration):
            stats["bad_request"] += 1
            return _error(400, "expected a chat completion request with a user message",
                          "invalid_request_error")
        headline = user.removeprefix(USER_PREFIX)
        ans = recording.answer(headline)
        if ans is None:
            stats["missing"] += 1
            return _error(404, f"no recorded answer for headline {headline[:120]!r}",
                          "not_found_error")
        stats["answered"] += 1
        prompt_chars = sum(len(str(m.get("content", ""))) for m in messages)
        return web.json_response(_completion(json.dumps(ans), prompt_chars,
                                             str(body.get("model") or model)))

    async def models(_: web.Request) -> web.Response:
        return web.json_response({"object": "list", "data": [
            {"id": model, "object": "model", "owned_by": "tickertag-replay"}]})

    async def health(_: web.Request) -> web.Response:
        return web.json_response({"status": "ok", "recorded": len(recording)})

    async def read_stats(_: web.Request) -> web.Response:
        return web.json_response({"recorded": len(recording), **stats})

    app = web.Application(client_max_size=1 << 20)
    app.router.add_post("/v1/chat/completions", chat)
    app.router.add_get("/v1/models", models)
    app.router.add_get("/health", health)
    app.router.add_get("/stats", read_stats)
    return app


def start_replay_server(recording: str | Path, port: int, log_dir: Path, timeout: float = 60):
    """Start the server as its own process (as ``tickertag llm replay`` would) and wait until it
    answers; returns the ``ManagedProcess``."""
    import httpx

    from common.services import ManagedProcess, wait_until

    argv = [sys.executable, "-m", "cascade.replay", "--recording", str(recording),
            "--host", "127.0.0.1", "--port", str(port)]
    proc = ManagedProcess("replay", argv, log_dir / "replay-server.log")
    url = f"http://127.0.0.1:{port}/health"
    wait_until(lambda: httpx.get(url, timeout=2).status_code == 200, timeout, "replay server", proc)
    return proc


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description="OpenAI-compatible server answering from a recording")
    ap.add_argument("--recording", default=str(RECORDING), help="JSONL of recorded answers")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=8089)
    ap.add_argument("--model", default=REPLAY_MODEL)
    a = ap.parse_args(argv)
    rec = Recording.load(a.recording)
    print(f"replaying {len(rec)} recorded answers from {a.recording} on "
          f"http://{a.host}:{a.port}/v1", flush=True)
    web.run_app(make_app(rec, a.model), host=a.host, port=a.port, print=None)


if __name__ == "__main__":
    main()
