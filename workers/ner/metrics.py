"""The NER service's Prometheus metrics, in one process or summed over uvicorn's workers.

With ``tickertag serve --workers N`` each worker process counts its own requests; Prometheus'
multiprocess mode (``PROMETHEUS_MULTIPROC_DIR``, set before the workers start) has each write
its values to files there, and ``/metrics``, whichever worker answers it, reads them all: a
scrape sees the service, not the one process the load balancer happened to pick."""

from __future__ import annotations

import os

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"


def service_metrics() -> tuple[CollectorRegistry, dict]:
    """A registry of this process and the service's metrics in it, by short name."""
    reg = CollectorRegistry()
    metrics = {
        "requests": Counter("tickertag_ner_requests_total", "HTTP requests", ["status"],
                            registry=reg),
        "headlines": Counter("tickertag_ner_headlines_total", "Headlines tagged", registry=reg),
        "latency": Histogram("tickertag_ner_request_seconds", "Request latency", registry=reg,
                             buckets=(0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5)),
        "batch": Histogram("tickertag_ner_batch_size", "Texts per model call", registry=reg,
                           buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256)),
    }
    return reg, metrics


def exposition(reg: CollectorRegistry) -> bytes:
    """The text ``/metrics`` answers: this process's registry, or every worker's values when
    the service runs in Prometheus' multiprocess mode."""
    if not os.environ.get(MULTIPROC_ENV):
        return generate_latest(reg)
    from prometheus_client import multiprocess

    merged = CollectorRegistry()
    multiprocess.MultiProcessCollector(merged)
    return generate_latest(merged)
