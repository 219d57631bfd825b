"""The LLM endpoint's HTTP client: one pooled aiohttp session for every call of a worker,
the endpoint's bearer token only where it belongs, and each response's headers handed to the
caller (the rate-limit headers ``rate_headers.py`` reads).

Why its own module: ``llm.py`` decides what to ask and what to do with an answer (cache,
retries, rate limits); this module only moves bytes to the endpoint and back."""

from __future__ import annotations

import json
from contextvars import ContextVar
from typing import Any

import aiohttp
from huggingface_hub import AsyncInferenceClient
from huggingface_hub.errors import InferenceTimeoutError
from huggingface_hub.inference._providers import get_provider_helper

from common.settings import Settings

# The headers of the response to the request the current task is making. huggingface_hub hands
# back only the parsed body, so the pooled session's trace hook copies them here.
response_headers: ContextVar[dict[str, str] | None] = ContextVar("response_headers", default=None)


async def _keep_headers(session: aiohttp.ClientSession, ctx: Any,
                        params: aiohttp.TraceRequestEndParams) -> None:
    sink = response_headers.get()
    if sink is not None:
        sink.clear()
        sink.update(params.response.headers)


_JSON = {"Content-Type": "application/json"}


class PooledInferenceClient(AsyncInferenceClient):
    """``AsyncInferenceClient`` that keeps one aiohttp session (and its keep-alive connections)
    for all calls instead of opening a new session and TCP connection per request, and lets
    the caller see each response's headers (its rate limits).

    huggingface_hub 0.x builds a session per call and closes it after reading the answer; at
    hundreds of requests/s that connect/teardown is most of the client's CPU. Here the
    per-request ``close`` is a no-op and the pooled session is closed with the client.
    """

    _pooled: aiohttp.ClientSession | None = None
    # False: never send an Authorization header. huggingface_hub fills one in from HF_TOKEN or
    # the cached login whenever no token is given, and refuses ``token=False``.
    send_auth: bool = True

    _chat_request: tuple[str, dict[str, str]] | None = None  # URL and headers, built once

    async def complete_chat(self, body: dict[str, Any], payload: bytes) -> dict[str, Any]:
        """One non-streaming chat completion: ``chat_completion``'s request on the pooled
        session, its answer as the plain JSON dict. Why not ``chat_completion``: per request it
        asked the provider helper for the URL and headers (reading the HF token file each
        time) and parsed the answer into dataclasses, most of a worker's CPU per headline
        once connections were reused (``benchmarks/dispatch.py``). The URL and headers are
        the helper's own, built on the first call; errors are ``_inner_post``'s
        (``aiohttp.ClientResponseError`` with the response's headers,
        ``InferenceTimeoutError``). ``payload``: ``body`` as JSON, with ``"stream": false``
        (``LLMCaller.request_payload``)."""
        if self._chat_request is None:
            params = get_provider_helper(self.provider, task="conversational",
                                         model=self.model).prepare_request(
                inputs=body["messages"], parameters={k: v for k, v in body.items()
                                                     if k != "messages"},
                headers=self.headers, model=self.model, api_key=self.token)
            self._chat_request = (params.url, dict(params.headers))
        url, headers = self._chat_request
        session = self._get_client_session(headers=headers)
        try:
            async with session.post(url, data=payload, proxy=self.proxies,
                                    headers=_JSON) as response:
                response.raise_for_status()
                return json.loads(await response.read())
        except TimeoutError as e:
            raise InferenceTimeoutError(f"Inference call timed out: {url}") from e

    def _get_client_session(self, headers: dict | None = None) -> aiohttp.ClientSession:
        if self._pooled is None or self._pooled.closed:
            client_headers = {k: v for k, v in {**self.headers, **(headers or {})}.items()
                              if self.send_auth or k.lower() != "authorization"}
            trace = aiohttp.TraceConfig()
            trace.on_request_end.append(_keep_headers)
            self._pooled = aiohttp.ClientSession(
                headers=client_headers, cookies=self.cookies,
                timeout=aiohttp.ClientTimeout(self.timeout),
                trust_env=self.trust_env,
                connector=aiohttp.TCPConnector(limit=0, keepalive_timeout=30),
                trace_configs=[trace],
            )
            real_close = self._pooled.close
            self._pooled_close = real_close

            async def keep_open() -> None:
                return None

            self._pooled.close = keep_open  # type: ignore[method-assign]
        return self._pooled

    async def close(self) -> None:
        if self._pooled is not None and not self._pooled.closed:
            await self._pooled_close()
        await super().close()


HF_HOSTS = ("huggingface.co", "huggingface.cloud", "hf.space")


def is_hf_endpoint(url: str) -> bool:
    """An https URL on a Hugging Face host (the Inference API, Inference Endpoints, Spaces)."""
    from urllib.parse import urlparse

    u = urlparse(url)
    host = (u.hostname or "").lower()
    return u.scheme == "https" and any(host == h or host.endswith("." + h) for h in HF_HOSTS)


def endpoint_token(settings: Settings) -> str | None:
    """The bearer token for the configured endpoint: ``llm_api_key`` when given; ``HF_TOKEN``
    only for a Hugging Face host; otherwise none at all."""
    if settings.llm_api_key:
        return settings.llm_api_key.get_secret_value()
    if settings.hf_token and is_hf_endpoint(settings.llm_base_url):
        return settings.hf_token.get_secret_value()
    return None


def make_client(settings: Settings) -> AsyncInferenceClient:
    token = endpoint_token(settings)
    client = PooledInferenceClient(
        base_url=settings.llm_base_url, token=token, timeout=settings.request_timeout_s
    )
    client.send_auth = token is not None
    return client
