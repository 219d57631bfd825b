"""The Argilla server side of review: connecting with the SDK (workspace, dataset names) and
starting a local server for the demo and the tests (secrets through the environment,
never argv)."""

from __future__ import annotations

import json
import logging
import os
import re
import secrets
from pathlib import Path
from typing import TYPE_CHECKING

import httpx

from common.services import ManagedProcess, wait_until
from workers.review.argilla_settings import ArgillaSettings
from workers.review.server_install import LAUNCHER, ServerVenvMissing, find_venv

if TYPE_CHECKING:  # the SDK is imported lazily: it is slow to import and only this stage needs it
    import argilla as rg

log = logging.getLogger(__name__)


class ReviewError(RuntimeError):
    """A review step cannot go on; the message says what to do about it."""


# -- connection ------------------------------------------------------------------------------


def connect(settings: ArgillaSettings | None = None) -> rg.Argilla:
    """An SDK client that has proven it can reach the server and that the key is accepted.

    The SDK's own errors (a bare ``ConnectError``, "credentials are invalid") do not say which
    setting to fix; these do, without ever printing the key.
    """
    import argilla as rg
    from argilla._exceptions import ArgillaError  # the SDK exports no public base class

    s = settings or ArgillaSettings()
    if s.api_key is None:
        raise ReviewError("no Argilla API key: set TICKERTAG_ARGILLA_API_KEY "
                          "(`tickertag review serve` prints one for the local server)")
    try:
        client = rg.Argilla(**s.client_kwargs())
        client.me  # noqa: B018 - the SDK validates lazily on some paths; force it now
    except httpx.HTTPError as e:
        raise ReviewError(f"cannot reach Argilla at {s.url} ({type(e).__name__}: {e}); start one "
                          "with `tickertag review serve` or set TICKERTAG_ARGILLA_URL") from None
    except ArgillaError as e:
        if "credentials" in str(e).lower() or "401" in str(e):
            raise ReviewError(f"Argilla at {s.url} rejected the API key (TICKERTAG_ARGILLA_API_KEY)"
                              ) from None
        raise ReviewError(f"Argilla at {s.url}: {e}") from None
    return client


def dataset_name(run: str, split: str, settings: ArgillaSettings | None = None) -> str:
    """``<prefix>-<run>-<split>``: one workspace can hold the review of several runs."""
    s = settings or ArgillaSettings()
    return re.sub(r"[^A-Za-z0-9_-]+", "-", f"{s.dataset_prefix}-{run}-{split}")


def workspace_of(client: rg.Argilla, settings: ArgillaSettings) -> str:
    if settings.workspace:
        return settings.workspace
    names = [w.name for w in client.workspaces]
    if not names:
        raise ReviewError("the API key's user has no workspace; set TICKERTAG_ARGILLA_WORKSPACE")
    return names[0]


# -- local server ---------------------------------------------------------------------------



def local_credentials(s: ArgillaSettings) -> tuple[str, str]:
    """(API key, password) of the local server's owner: the configured key, else one generated
    on first start and kept (mode 0600) beside the server's data, so restarts keep it."""
    path = s.home / "credentials.json"
    if path.exists():
        saved = json.loads(path.read_text(encoding="utf-8"))
    else:
        saved = {"api_key": secrets.token_urlsafe(32), "password": secrets.token_urlsafe(12)}
        s.home.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(saved, f)
    key = s.api_key.get_secret_value() if s.api_key else saved["api_key"]
    return key, saved["password"]


def start_server(s: ArgillaSettings, log: Path, api_key: str, password: str) -> ManagedProcess:
    """Start the launcher (``argilla_launcher.py``) in the Argilla venv and wait until it
    answers. The venv is ``s.venv`` when set, else the first ``server_install.find_venv``
    finds (TICKERTAG_HOME's, then the checkout's).

    The secrets travel in the environment, not argv, so ``ps`` never shows them. The launcher
    runs in its own process group: stopping it stops uvicorn, the rq worker and the emulator.
    """
    try:
        venv = find_venv(s.venv)
    except ServerVenvMissing as e:
        raise ReviewError(str(e)) from None
    argv = [str(venv / "bin" / "python"), str(LAUNCHER), "--home", str(s.home), "--host", s.host,
            "--port", str(s.port), "--redis-url", s.redis_url.get_secret_value()]
    env = {"ARGILLA_LAUNCHER_API_KEY": api_key, "ARGILLA_LAUNCHER_PASSWORD": password,
           "VIRTUAL_ENV": str(venv)}
    proc = ManagedProcess("argilla", argv, log, env=env)
    url = f"http://{s.host}:{s.port}/api/v1/status"
    try:
        wait_until(lambda: httpx.get(url, timeout=2).status_code == 200, s.startup_timeout_s,
                   "argilla server", proc)
    except BaseException:
        proc.stop()
        raise
    return proc


