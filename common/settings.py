"""One place for configuration.

Values come, highest priority first, from keyword arguments, environment variables
(``TICKERTAG_*``; the Hub token also as plain ``HF_TOKEN``), a TOML file (``TICKERTAG_CONFIG`` or
``./tickertag.toml``), then the defaults below, which run everything on this machine: local
Redis, a local llama.cpp server, the bundled sample of headlines.
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field, SecretStr
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from common.paths import home

ResponseFormatStyle = Literal["auto", "llama.cpp", "tgi", "openai", "none"]


def _config_file() -> Path:
    return Path(os.environ.get("TICKERTAG_CONFIG", "tickertag.toml"))


class Settings(BaseSettings):
    """Runtime settings for producer, workers and CLI."""

    model_config = SettingsConfigDict(
        env_prefix="TICKERTAG_", extra="ignore", populate_by_name=True
    )

    # Broker, locks, counters, rate limiter and dead-letter index all live in one Redis.
    redis_url: SecretStr = SecretStr("redis://127.0.0.1:6379/0")
    run_id: str = "demo"
    results_dir: str = Field(default_factory=lambda: str(home() / "runs"))

    # LLM endpoint: any OpenAI-compatible server (TGI / Inference Endpoints, vLLM, Ollama, llama.cpp).
    llm_base_url: str = "http://127.0.0.1:8088"
    llm_model: str = "smollm2-135m-instruct-q4_1"
    hf_token: SecretStr | None = Field(
        default=None, validation_alias=AliasChoices("TICKERTAG_HF_TOKEN", "HF_TOKEN", "hf_token")
    )
    # The bearer token for TICKERTAG_LLM_BASE_URL when it is not a Hugging Face endpoint (vLLM,
    # a gateway, ...). HF_TOKEN goes only to Hugging Face hosts: a token sent to whatever URL
    # is configured would leak to any endpoint a typo or a hostile config names.
    llm_api_key: SecretStr | None = None
    response_format: ResponseFormatStyle = "auto"
    temperature: float = 0.1
    max_tokens: int = 512
    max_companies: int = 16  # maxItems in the schema: keeps small models from looping forever
    request_timeout_s: float = 60.0
    max_retries: int = 5
    # Starts of the same batch attempt before it is dead-lettered as ``worker_lost``: a batch
    # that kills its worker (a segfault in a native library, an OOM kill) is redelivered by
    # late acks; without a bound it would crash a worker after worker forever.
    max_deliveries: int = 3
    # A running batch holds a lease renewed every third of this; a second copy (redelivered
    # past the visibility timeout) waits for it. A dead worker's lease lapses after this long.
    batch_lease_s: float = 30.0
    # Every this many seconds one worker looks for batches the broker lost (in flight, yet in no
    # queue, not unacked, not running) and sends them again (``workers.lost``); 0 turns it off.
    lost_batch_sweep_s: float = 60.0
    # A training job's lock lives this long without a heartbeat (renewed every quarter of it):
    # how soon a killed train host's job shows as dead and can be resubmitted.
    train_lock_ttl_s: float = 120.0
    # Socket timeouts towards Redis (broker, results, ledger): without them a connection that
    # went silent (a host cut off, Redis restarting) waits out TCP's retransmission backoff,
    # and workers resumed ~25 s after Redis came back instead of ~1 s (benchmarks/multihost.py).
    redis_socket_timeout_s: float = 10.0
    # Alias table (`tickertag aliases build`) that links each tagged company to its ticker in
    # `predict`, `serve` and the ner workers; unset: entities carry no ticker.
    aliases: str | None = None
    backoff_base_s: float = 0.5
    backoff_max_s: float = 30.0

    # Throughput controls. The rate limits are global (shared by all workers through Redis);
    # the concurrency cap is per worker process.
    batch_size: int = 128
    max_batches_in_flight: int = 64
    concurrency: int = 32
    rate_limit_rps: float = 0.0  # 0 = unlimited
    rate_limit_tpm: float = 0.0  # tokens per minute, 0 = unlimited
    visibility_timeout_s: int = 3600
    cache_ttl_s: int = 30 * 24 * 3600
    # CPU threads per ner worker process for the compact model (None: one per core). Several
    # 1-thread processes beat one many-thread process on small batches.
    ner_threads: int | None = None
    # The matrix-product kernel spaCy pipelines tag with (training/spacy_ops.py): "auto" times
    # thinc's bundled BLIS against numpy's BLAS once per process and keeps the faster.
    spacy_gemm: Literal["auto", "numpy", "blis"] = "auto"

    # Start curation (queue "curate") automatically when an annotation run is complete.
    auto_curate: bool = True
    # Curation's split ranges, inclusive: years or date prefixes, e.g.
    # TICKERTAG_CURATE_SPLITS='{"train": [2024, 2024], "valid": ["2025-01", "2025-03"], "test":
    # ["2025-04", "2025-06"]}'. Unset: FNSPID's 2010-16 / 2017-18 / 2019-20 when the run fills each,
    # else chronological 70/15/15% ranges from the run's own dates (workers.curate.sampling).
    curate_splits: dict[str, tuple[int | str, int | str]] | None = None

    # Cost model for the summary: price per hour of the LLM endpoint (annotation runs) and of
    # the host running the compact model's `ner` workers (tagging runs; the case study's CPU).
    endpoint_price_per_hour: float = 8.0
    ner_price_per_hour: float = 0.10
    # Per-token prices of the LLM (USD per million tokens), what a pay-per-token endpoint bills
    # and what the cascade's "$ spent vs the whole pool" uses. The defaults are the case study's
    # price in token terms: a $8/h endpoint labelling ~31 headlines/s (900k in ~8 h) with this
    # prompt (465 prompt tokens a headline by SmolLM2's tokenizer on the bundled sample,
    # `tickertag produce --estimate`, + ~24 completion: 8 / (31.25 * 3600 * 489) * 1e6) costs
    # ~$0.15 per million tokens.
    price_input_per_mtok: float = 0.15
    price_output_per_mtok: float = 0.15
    # Stop spending at this many USD per run (at the per-token prices): the producer stops
    # sending (the rest stays resumable) and workers dead-letter batches as ``budget`` instead of
    # calling the LLM (`tickertag requeue --error-type budget` once the budget is raised).
    budget_usd: float | None = None

    # How the annotate stage asks the LLM: ``online`` (one chat completion per headline, as
    # they come) or ``batch`` (each task's headlines as one provider batch: an input file of
    # chat completion requests, answered within a completion window at ``batch_discount`` times
    # the per-token prices; ``workers.annotate.batch_api``). A run keeps the mode its producer
    # gave it (`tickertag produce --batch-api`); workers follow the run.
    llm_mode: Literal["online", "batch"] = "online"
    # The Batch API's base URL (``/v1/files``, ``/v1/batches``); unset: ``llm_base_url``.
    batch_base_url: str | None = None
    batch_discount: float = 0.5  # batch price = this x the per-token prices
    batch_completion_window: str = "24h"
    batch_poll_s: float = 30.0  # how often a worker asks whether its batch is done
    # Headlines a batch did not answer (it expired, was cancelled or failed, or a request
    # failed): asked ``online`` at the full price, or ``dead``-lettered for `tickertag requeue`.
    batch_fallback: Literal["online", "dead"] = "online"

    # Local llama.cpp server (`tickertag llm serve`).
    llm_gguf: str | None = None
    llm_port: int = 8088
    llm_ctx: int = 2048

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        toml = TomlConfigSettingsSource(settings_cls, toml_file=_config_file())
        return (init_settings, env_settings, toml, file_secret_settings)

    def redis_dsn(self) -> str:
        """The Redis URL every client is built from. A ``rediss://`` URL that does not say how
        to check the server certificate gets ``ssl_cert_reqs=required``: Celery's broker would
        otherwise connect without verifying it and its result backend refuses to start."""
        url = self.redis_url.get_secret_value()
        if url.startswith("rediss://") and "ssl_cert_reqs=" not in url:
            url += ("&" if "?" in url else "?") + "ssl_cert_reqs=required"
        return url


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """Process-wide settings, read once (workers read them at import)."""
    return Settings()
