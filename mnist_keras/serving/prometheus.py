"""Prometheus metrics per model and version, at monitoring.config's path (prometheus_client).

Names follow TF Serving's (:tensorflow:serving:request_count, request_latency), with
Prometheus-legal characters.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

DEFAULT_PATH = "/monitoring/prometheus/metrics"
# Latency buckets in seconds, from 0.5 ms to 2.5 s.
BUCKETS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)


class Metrics:
    """Request counts and latency histograms in their own registry (one per server)."""

    def __init__(self):
        from prometheus_client import CollectorRegistry, Counter, Histogram

        self.registry = CollectorRegistry()
        self.requests = Counter("tensorflow_serving_request_count", "Requests, by model, version, API and outcome.",
                                ["model_name", "model_version", "api", "status"], registry=self.registry)
        self.latency = Histogram("tensorflow_serving_request_latency_seconds",
                                 "Request latency, by model, version and API.",
                                 ["model_name", "model_version", "api"], buckets=BUCKETS, registry=self.registry)
        self.batch_size = Histogram("tensorflow_serving_batch_size", "Images per signature call.",
                                    ["model_name", "model_version"], buckets=(1, 2, 4, 8, 16, 32, 64, 128),
                                    registry=self.registry)

    @contextmanager
    def observe(self, model: str, version: int | str, api: str) -> Iterator[None]:
        """Counts the request in the body (status "error" if it raises) and times it."""
        start = time.perf_counter()
        status = "error"
        try:
            yield
            status = "ok"
        finally:
            self.requests.labels(model, str(version), api, status).inc()
            self.latency.labels(model, str(version), api).observe(time.perf_counter() - start)

    def exposition(self) -> tuple[bytes, str]:
        """The text Prometheus scrapes, and its content type."""
        from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

        return generate_latest(self.registry), CONTENT_TYPE_LATEST


def read_monitoring_path(path: Path | None) -> str | None:
    """monitoring.config -> the metrics path (None: Prometheus not enabled)."""
    from mnist_keras.serving.protos import monitoring_config, read_text_proto

    if path is None:
        return None
    config = read_text_proto(path, monitoring_config(), "monitoring_config_file")
    if not config.prometheus_config.enable:
        return None
    return config.prometheus_config.path or DEFAULT_PATH
