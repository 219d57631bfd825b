"""A real Argilla 2.8 server for the review and cascade tests, started exactly as ``tickertag review serve``
starts one (``workers.review.argilla.start_server``): its own venv, the osmem emulator, the launcher
patch. Session-scoped because a start costs ~15 s on a busy 2-core machine.

Isolation: a free port, a temporary ``ARGILLA_HOME_PATH`` (fresh SQLite), its own Redis db
(``TICKERTAG_TEST_ARGILLA_REDIS_URL``, default db 6, so a developer's server on db 5 is left
alone). The venv is built on first use by the same idempotent installer ``make install`` runs.
"""

from __future__ import annotations

import secrets
import subprocess
from collections.abc import Iterator

import pytest

from common.paths import CODE_ROOT as REPO_ROOT
from common.services import ensure_redis, free_port
from workers.review.argilla_settings import ArgillaSettings

ARGILLA_REDIS_URL = "redis://127.0.0.1:6379/6"
LOG_DIR = REPO_ROOT / "var" / "test-logs"


@pytest.fixture(scope="session")
def argilla(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ArgillaSettings]:
    """Settings pointing at a running server with an owner key; stopped after the session."""
    import os

    from workers.review.server import start_server

    venv = REPO_ROOT / ".venv-argilla"
    build = subprocess.run(["bash", str(REPO_ROOT / "scripts" / "install_argilla.sh"), str(venv)],
                           capture_output=True, text=True, timeout=900)
    if build.returncode != 0:
        pytest.fail(f"scripts/install_argilla.sh failed:\n{build.stdout[-2000:]}"
                    f"\n{build.stderr[-2000:]}")
    redis_url = os.environ.get("TICKERTAG_TEST_ARGILLA_REDIS_URL", ARGILLA_REDIS_URL)
    redis_proc = ensure_redis(redis_url, LOG_DIR)
    api_key = secrets.token_urlsafe(24)
    settings = ArgillaSettings(
        url="", api_key=api_key, venv=venv, home=tmp_path_factory.mktemp("argilla-home"),
        port=free_port(), redis_url=redis_url, startup_timeout_s=180, retries=0, timeout_s=30)
    settings.url = f"http://{settings.host}:{settings.port}"
    password = secrets.token_urlsafe(12)
    proc = start_server(settings, LOG_DIR / "argilla-server.log", api_key, password)
    # No secret on any process command line (``ps`` showed the owner's password and key).
    from pathlib import Path

    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            argv = cmdline.read_bytes().decode(errors="replace")
        except OSError:
            continue
        assert api_key not in argv and password not in argv, f"secret in {cmdline}"
    try:
        yield settings
    finally:
        proc.stop(timeout=20)
        if redis_proc is not None:
            redis_proc.stop()
