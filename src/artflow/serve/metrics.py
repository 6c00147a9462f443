"""Prometheus metrics of the service, per endpoint, per variant and per outcome.

Plain `prometheus_client` objects (BentoML 1.4 deprecates `bentoml.metrics`); BentoML's
/metrics endpoint exports them with its own request metrics. They must be created after the
worker has set PROMETHEUS_MULTIPROC_DIR, i.e. inside the service's __init__, never at import:
`metrics()` builds them once, on first use.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import Any

# Latency buckets (s): 5 ms .. 60 s, covering a batched CNN call up to a bounded Gatys run.
BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)


@dataclass(frozen=True)
class Metrics:
    requests: Any  # Counter: artflow_requests_total{endpoint, variant, status}
    latency: Any  # Histogram: artflow_request_latency_seconds{endpoint, variant}
    predictions: Any  # Counter: artflow_predictions_total{variant, model_version, artist}
    rejected: Any  # Counter: artflow_rejected_inputs_total{endpoint, status}
    batch_size: Any  # Histogram: artflow_batch_size{variant}
    cancelled: Any  # Counter: artflow_cancelled_work_total{endpoint}

    def observe(self, endpoint: str, variant: str, status: int, seconds: float) -> None:
        self.requests.labels(endpoint=endpoint, variant=variant, status=str(status)).inc()
        if status < 400:
            self.latency.labels(endpoint=endpoint, variant=variant).observe(seconds)
        else:
            self.rejected.labels(endpoint=endpoint, status=str(status)).inc()


@cache
def metrics() -> Metrics:
    from prometheus_client import Counter, Histogram

    return Metrics(
        requests=Counter(
            "artflow_requests",
            "Requests answered, by endpoint, A/B variant and HTTP status.",
            ["endpoint", "variant", "status"],
        ),
        latency=Histogram(
            "artflow_request_latency_seconds",
            "Latency of successful requests, by endpoint and A/B variant.",
            ["endpoint", "variant"],
            buckets=BUCKETS,
        ),
        predictions=Counter(
            "artflow_predictions",
            "Classifications, by variant, model version and predicted artist.",
            ["variant", "model_version", "artist"],
        ),
        rejected=Counter(
            "artflow_rejected_inputs",
            "Requests refused before any model ran, by endpoint and HTTP status.",
            ["endpoint", "status"],
        ),
        batch_size=Histogram(
            "artflow_batch_size",
            "Images per classifier call (adaptive batching), by A/B variant.",
            ["variant"],
            buckets=(1, 2, 4, 8, 16, 32, 64),
        ),
        cancelled=Counter(
            "artflow_cancelled_work",
            "Computations stopped because their request timed out, by endpoint.",
            ["endpoint"],
        ),
    )


@cache
def ab_verdict_gauge() -> Any:
    """The latest `artflow ab report` verdict (read by every pod from the serving store)."""
    from prometheus_client import Gauge

    return Gauge(
        "artflow_ab_verdict",
        "Latest A/B report verdict (artflow ab report, from the serving store): 1 for its "
        "decision, 0 for the others.",
        ["decision"],
        multiprocess_mode="mostrecent",
    )
