"""Shared fixtures: the real Redis (a dedicated db), a real llama.cpp server, a fault-injecting
fake endpoint, and Celery workers started exactly as users start them."""

from __future__ import annotations

import os
import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

# Before anything imports the Celery app: tests use their own Redis db and never the hub.
TEST_REDIS_URL = os.environ.get("TICKERTAG_TEST_REDIS_URL", "redis://127.0.0.1:6379/9")
os.environ["TICKERTAG_REDIS_URL"] = TEST_REDIS_URL
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).parent))

from argilla_fixture import argilla  # noqa: E402, F401  (one Argilla server per session)
from worker_env import settings_env  # noqa: E402

from common.services import (  # noqa: E402
    ManagedProcess,
    ensure_redis,
    free_port,
    start_llm_server,
    start_worker,
)
from common.settings import Settings, get_settings  # noqa: E402

get_settings.cache_clear()
LOG_DIR = Path(__file__).resolve().parent.parent / "var" / "test-logs"


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    proc = ensure_redis(TEST_REDIS_URL, LOG_DIR)
    import redis

    redis.Redis.from_url(TEST_REDIS_URL).flushdb()
    yield TEST_REDIS_URL
    if proc:
        proc.stop()


@pytest.fixture(scope="session")
def fake_llm():
    from fake_llm import FakeLLM

    f = FakeLLM(slow_s=5.0).start()
    yield f
    f.stop()


@pytest.fixture(scope="session")
def llm_server() -> Iterator[str]:
    port = free_port()
    proc = start_llm_server(port, LOG_DIR, alias="smollm2-test")
    yield f"http://127.0.0.1:{port}"
    proc.stop()


@pytest.fixture(scope="module")
def replay(tmp_path_factory) -> Iterator[str]:
    """The replay server (``cascade.replay``) over the bundled recording: an OpenAI-compatible
    endpoint that answers recorded headlines, cheaper than the real LLM. One per test module,
    so a module's assertions on its ``/stats`` see only its own calls."""
    from cascade.replay import RECORDING, start_replay_server

    port = free_port()
    proc = start_replay_server(RECORDING, port, tmp_path_factory.mktemp("replay-logs"))
    yield f"http://127.0.0.1:{port}"
    proc.stop()


@pytest.fixture
def run_id() -> str:
    return f"t-{uuid.uuid4().hex[:10]}"


@pytest.fixture
def make_settings(redis_url: str, tmp_path: Path, run_id: str) -> Callable[..., Settings]:
    def make(**over) -> Settings:
        base = dict(redis_url=redis_url, results_dir=str(tmp_path / "runs"), run_id=run_id,
                    llm_model="fake", max_retries=2, backoff_base_s=0.05, backoff_max_s=1.5,
                    request_timeout_s=3.0, batch_size=8)
        base.update(over)
        return Settings(**base)

    return make


@pytest.fixture
def workers(tmp_path: Path) -> Iterator[Callable[..., ManagedProcess]]:
    started: list[ManagedProcess] = []

    def start(s: Settings, concurrency: int = 2, queue: str = "annotate") -> ManagedProcess:
        p = start_worker(queue, tmp_path / "logs", concurrency=concurrency, env=settings_env(s))
        started.append(p)
        return p

    yield start
    for p in started:
        p.stop()


@pytest.fixture
def celery_app(redis_url: str):
    from common.celery_app import app

    assert app.conf.broker_url == redis_url
    import redis

    from common.task_names import STAGES

    r = redis.Redis.from_url(redis_url)
    r.delete(*STAGES)  # no leftovers from an earlier test, any queue
    # nor in-flight copies whose messages that just went, nor finished runs whose curate
    # message an earlier test never sent (it called try_finalize itself): a worker's lost-batch
    # sweep would send an earlier test's batches or curation again into this one
    for pattern in ("tt:run:*:inflight", "tt:run:*:finalized"):
        for key in r.scan_iter(pattern):
            r.delete(key)
    return app


@pytest.fixture
def results_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """TICKERTAG_RESULTS_DIR under tmp_path for code that reads settings from the environment
    (the CLI), with the cached settings dropped before and after."""
    monkeypatch.setenv("TICKERTAG_RESULTS_DIR", str(tmp_path / "runs"))
    get_settings.cache_clear()
    yield tmp_path / "runs"
    get_settings.cache_clear()
