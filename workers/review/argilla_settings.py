"""Where the Argilla review server is and how to talk to it (``TICKERTAG_ARGILLA_*``).

Kept apart from ``common.settings`` because only the review stage needs it and because its
secrets (the API key, an HF token for a private Space) must never reach logs: they are
``SecretStr`` and only ``client_kwargs`` unwraps them, at the moment the SDK client is built.

    TICKERTAG_ARGILLA_URL=https://org-argilla.hf.space
    TICKERTAG_ARGILLA_API_KEY=...            # an owner or admin key (annotators get 403 on the SDK)
    TICKERTAG_ARGILLA_HF_TOKEN=hf_...        # private Space: sent as Authorization: Bearer
    TICKERTAG_ARGILLA_HEADERS='{"X-Extra": "1"}'
    TICKERTAG_ARGILLA_VERIFY_TLS=true        # or TICKERTAG_ARGILLA_CA_BUNDLE=/path/ca.pem
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from common.paths import home as output_home


class ArgillaSettings(BaseSettings):
    """Connection to Argilla plus the local server that ``tickertag review serve`` starts."""

    model_config = SettingsConfigDict(env_prefix="TICKERTAG_ARGILLA_", extra="ignore")

    url: str = "http://127.0.0.1:6900"
    api_key: SecretStr | None = None
    # Extra HTTP headers on every request; values may be secret, so they are never printed.
    headers: dict[str, SecretStr] = {}
    hf_token: SecretStr | None = None
    verify_tls: bool = True
    ca_bundle: str | None = None  # a path: verify against this CA instead of the system store
    timeout_s: int = 60
    retries: int = 3

    # Where the datasets go: ``<prefix>-<run>-<split>`` in ``workspace`` (None: the key's first).
    workspace: str | None = None
    dataset_prefix: str = "tickertag"
    # Responses needed before a record counts as completed in Argilla's own task distribution.
    min_submitted: int = 1
    batch_size: int = 256

    # Local server (``tickertag review serve``): its own venv, data and Redis db. ``venv`` unset:
    # TICKERTAG_HOME/.venv-argilla, else the checkout's (``workers.review.server_install``).
    venv: Path | None = None
    home: Path = Field(default_factory=lambda: output_home() / "var" / "argilla")
    host: str = "127.0.0.1"
    port: int = 6900
    redis_url: SecretStr = SecretStr("redis://127.0.0.1:6379/5")
    startup_timeout_s: float = 120.0

    def client_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for ``argilla.Argilla``, secrets unwrapped here and nowhere else."""
        headers = {k: v.get_secret_value() for k, v in self.headers.items()}
        if self.hf_token is not None:
            headers.setdefault("Authorization", f"Bearer {self.hf_token.get_secret_value()}")
        return {
            "api_url": self.url,
            "api_key": self.api_key.get_secret_value() if self.api_key else None,
            "timeout": self.timeout_s,
            "retries": self.retries,
            "headers": headers,
            "verify": self.ca_bundle or self.verify_tls,
        }
