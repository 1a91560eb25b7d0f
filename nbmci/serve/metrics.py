"""Prometheus collectors of one serving app, in their own registry (never the global one)."""

from __future__ import annotations

from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

from nbmci.serve.host import SwapEvent

_LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
                    5.0, 10.0)
_BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 1024, 4096)


class Metrics:
    content_type = CONTENT_TYPE_LATEST

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests = Counter("nbmci_requests", "Inference requests answered.",
                                ["model", "version", "protocol", "status"], registry=r)
        self.latency = Histogram("nbmci_request_seconds", "Inference request latency.",
                                 ["model", "version", "status"], buckets=_LATENCY_BUCKETS,
                                 registry=r)
        self.batch_rows = Histogram("nbmci_batch_rows", "Rows per predict call.", ["model"],
                                    buckets=_BATCH_BUCKETS, registry=r)
        self.swaps = Counter("nbmci_swaps", "Versions that went live.", ["model"], registry=r)
        self.failed_swaps = Counter("nbmci_failed_swaps",
                                    "Versions that failed to load or their smoke test.",
                                    ["model"], registry=r)
        self.live_version = Gauge("nbmci_live_version", "The version serving each model.",
                                  ["model"], registry=r)
        self.timeouts = Counter("nbmci_predict_timeouts", "Requests that hit the timeout.",
                                ["model"], registry=r)
        self._request_children: dict[tuple[str, str, str, int], tuple[Any, Any]] = {}
        self._batch_children: dict[str, Any] = {}

    def observe_request(self, model: str, version: str, protocol: str, status: int,
                        seconds: float) -> None:
        key = (model, version, protocol, status)
        children = self._request_children.get(key)
        if children is None:  # ``labels()`` takes a lock and builds keys: once per label set
            code = str(status)
            children = self._request_children[key] = (
                self.requests.labels(model, version, protocol, code),
                self.latency.labels(model, version, code))
        children[0].inc()
        children[1].observe(seconds)

    def observe_batch(self, model: str, rows: int) -> None:
        child = self._batch_children.get(model)
        if child is None:
            child = self._batch_children[model] = self.batch_rows.labels(model)
        child.observe(rows)

    def on_swap(self, event: SwapEvent) -> None:
        if event.kind == "swapped":
            self.swaps.labels(event.name).inc()
            self.live_version.labels(event.name).set(event.version or 0)
        elif event.kind == "failed":
            self.failed_swaps.labels(event.name).inc()

    def render(self) -> bytes:
        return generate_latest(self.registry)
