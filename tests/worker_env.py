"""The environment a worker process needs to share a test's settings (imported by name
from several test folders, so it lives outside any conftest)."""

from __future__ import annotations

from common.settings import Settings


def settings_env(s: Settings) -> dict[str, str]:
    """The environment a worker process needs to share a test's settings."""
    return {
        "TICKERTAG_REDIS_URL": s.redis_dsn(), "TICKERTAG_RESULTS_DIR": s.results_dir,
        "TICKERTAG_LLM_BASE_URL": s.llm_base_url, "TICKERTAG_LLM_MODEL": s.llm_model,
        "TICKERTAG_MAX_RETRIES": str(s.max_retries), "TICKERTAG_BACKOFF_BASE_S": str(s.backoff_base_s),
        "TICKERTAG_BACKOFF_MAX_S": str(s.backoff_max_s),
        "TICKERTAG_REQUEST_TIMEOUT_S": str(s.request_timeout_s),
        "TICKERTAG_VISIBILITY_TIMEOUT_S": str(s.visibility_timeout_s),
        "TICKERTAG_CONCURRENCY": str(s.concurrency),
        "TICKERTAG_RESPONSE_FORMAT": s.response_format,
        "TICKERTAG_BATCH_LEASE_S": str(s.batch_lease_s),
        "TICKERTAG_RATE_LIMIT_RPS": str(s.rate_limit_rps),
        "TICKERTAG_RATE_LIMIT_TPM": str(s.rate_limit_tpm),
        "TICKERTAG_MAX_DELIVERIES": str(s.max_deliveries),
        "TICKERTAG_LOST_BATCH_SWEEP_S": str(s.lost_batch_sweep_s),
        "TICKERTAG_LLM_MODE": s.llm_mode, "TICKERTAG_BATCH_POLL_S": str(s.batch_poll_s),
        "TICKERTAG_BATCH_FALLBACK": s.batch_fallback,
        **({"TICKERTAG_BATCH_BASE_URL": s.batch_base_url} if s.batch_base_url else {}),
    }
