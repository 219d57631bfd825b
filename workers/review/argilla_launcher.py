"""Start a local Argilla 2.8 server on the in-memory OpenSearch emulator (osmem-server).

Runs inside the Argilla venv (``tickertag review install-server`` builds it, see
``workers.review.server_install``), never in the main venv: argilla-server needs
huggingface_hub>=1, tickertag is pinned below 1. It is started as a script by its path (tickertag
is not installed in that venv), so it imports nothing of tickertag, and it lives in the package
so that a wheel carries it.

Why a launcher and not ``argilla_server start``: neither Elasticsearch nor OpenSearch can be
installed here, and osmem-server answers HTTP 500 to *scripted* document updates, which Argilla
uses for three operations (save a response, delete a response, delete a suggestion). This module
replaces those three with read-then-rewrite of the document, then starts uvicorn in the same
process (and the rq worker in a child process that inherits the patch through fork).

One process owns everything it starts: osmem exits with its parent (``--parent-pid``), the
worker is terminated on the way out, uvicorn stops on SIGINT/SIGTERM. SQLite under ``--home``
is the source of truth; the emulator keeps nothing, so every start re-indexes from it.

Usage (what ``tickertag review serve`` and the test fixture run)::

    .venv-argilla/bin/python workers/review/argilla_launcher.py --home var/argilla --port 6900 \
        --redis-url redis://127.0.0.1:6379/5   (ARGILLA_LAUNCHER_API_KEY and _PASSWORD in the env)
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import threading
import time
from typing import Any

# Run by path, Python puts this file's directory first on sys.path, where workers/review's own
# modules (argilla.py, server.py, records.py ...) would shadow the packages argilla-server
# imports: the search starts without it.
_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.curdir) != _HERE]


def patch_search_engine() -> None:
    """Replace the scripted updates with get + modify + index (same end state, no painless)."""
    from argilla_server.search_engine.commons import (
        BaseElasticAndOpenSearchEngine,
        es_index_name_for_dataset,
    )

    async def _rewrite(self: Any, index_name: str, doc_id: str, change: Any) -> None:
        doc = await self.client.get(index=index_name, id=doc_id)
        source = doc["_source"]
        change(source)
        await self.client.index(index=index_name, id=doc_id, body=source, refresh=True)

    async def update_record_response(self: Any, response: Any) -> None:
        es_response = json.loads(json.dumps(self._map_record_response_to_es(response), default=str))

        def change(source: dict) -> None:
            kept = [r for r in source.get("responses") or [] if str(r.get("id")) != es_response["id"]]
            source["responses"] = [*kept, es_response]

        await _rewrite(self, es_index_name_for_dataset(response.record.dataset),
                       str(response.record.id), change)

    async def delete_record_response(self: Any, response: Any) -> None:
        rid = str(response.id)

        def change(source: dict) -> None:
            source["responses"] = [r for r in source.get("responses") or []
                                   if str(r.get("id")) != rid]

        await _rewrite(self, es_index_name_for_dataset(response.record.dataset),
                       str(response.record.id), change)

    async def delete_record_suggestion(self: Any, suggestion: Any) -> None:
        name = suggestion.question.name

        def change(source: dict) -> None:
            (source.get("suggestions") or {}).pop(name, None)

        await _rewrite(self, es_index_name_for_dataset(suggestion.record.dataset),
                       str(suggestion.record_id), change)

    BaseElasticAndOpenSearchEngine.update_record_response = update_record_response
    BaseElasticAndOpenSearchEngine.delete_record_response = delete_record_response
    BaseElasticAndOpenSearchEngine.delete_record_suggestion = delete_record_suggestion


def _argilla_cli(*args: str) -> None:
    """Run one ``python -m argilla_server`` command with the environment already set."""
    subprocess.run([sys.executable, "-m", "argilla_server", *args], check=True,
                   stdout=subprocess.DEVNULL)


def _create_owner() -> None:
    """``argilla_server database users create_default`` without its ``--password`` and
    ``--api-key`` options on a command line: the same function, called in a child that reads
    both from the environment this launcher got them in."""
    code = ("import asyncio, os\n"
            "from argilla_server.cli.database.users.create_default import _create_default\n"
            "asyncio.run(_create_default(os.environ['ARGILLA_LAUNCHER_API_KEY'], "
            "os.environ['ARGILLA_LAUNCHER_PASSWORD'], True))\n")
    subprocess.run([sys.executable, "-c", code], check=True, stdout=subprocess.DEVNULL)


def _exit_on_signal(signum: int, _frame: Any) -> None:
    raise SystemExit(128 + signum)


def run_worker() -> None:
    """The rq worker (dataset status jobs), with the patch applied before it forks.

    A watchdog stops it when the launcher disappears (even by SIGKILL), so no worker outlives
    the server it belongs to.
    """
    parent = os.getppid()

    def watchdog() -> None:
        while os.getppid() == parent:
            time.sleep(1)
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=watchdog, daemon=True).start()
    patch_search_engine()
    from argilla_server.cli.worker import worker

    worker(queues=["default", "high"], num_workers=1)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--home", required=True, help="ARGILLA_HOME_PATH (SQLite database lives here)")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=6900)
    p.add_argument("--redis-url", default="redis://127.0.0.1:6379/5")
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    a = p.parse_args(argv)
    if a.worker:
        run_worker()
        return 0
    # Secrets only from the environment: a command line is visible to every user through `ps`.
    api_key = os.environ.get("ARGILLA_LAUNCHER_API_KEY")
    password = os.environ.get("ARGILLA_LAUNCHER_PASSWORD")
    if not api_key or not password or len(password) < 8:
        p.error("set ARGILLA_LAUNCHER_API_KEY and ARGILLA_LAUNCHER_PASSWORD (8+ characters) in "
                "the environment")

    from osmem_server import OsmemServer

    os.makedirs(a.home, exist_ok=True)
    osmem = OsmemServer.start(japanese=False, addr="127.0.0.1:0")
    os.environ.update({
        "ARGILLA_HOME_PATH": os.path.abspath(a.home),
        "ARGILLA_SEARCH_ENGINE": "opensearch",
        "ARGILLA_ELASTICSEARCH": osmem.url,
        "ARGILLA_REDIS_URL": a.redis_url,
        "ARGILLA_ENABLE_TELEMETRY": "0",
        "HF_HUB_DISABLE_TELEMETRY": "1",
        "HF_HUB_OFFLINE": "1",
    })
    worker: subprocess.Popen | None = None
    try:
        _argilla_cli("database", "migrate")
        _create_owner()  # the secrets reach it through the environment, not argv
        _argilla_cli("search-engine", "reindex")  # the emulator starts empty every time
        worker = subprocess.Popen([sys.executable, os.path.abspath(__file__), "--home", a.home,
                                   "--worker"], start_new_session=False)
        patch_search_engine()
        import uvicorn

        # uvicorn handles SIGINT/SIGTERM itself, then re-raises the signal to the handler that
        # was there before it: make that one an exit, so the ``finally`` below always runs.
        signal.signal(signal.SIGTERM, _exit_on_signal)
        uvicorn.run("argilla_server:app", host=a.host, port=a.port, log_level="warning")
    finally:
        if worker is not None and worker.poll() is None:
            worker.send_signal(signal.SIGTERM)
            try:
                worker.wait(10)
            except subprocess.TimeoutExpired:
                worker.kill()
                worker.wait()
        osmem.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
