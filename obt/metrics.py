"""Prometheus metrics, with a registry per app (nothing global is created at import)."""

from __future__ import annotations

from collections import Counter as Tally
from collections.abc import Callable, Iterable
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector


class _Snapshot(Collector):
    """Gauges read at scrape time: projection lag and clients by status."""

    def __init__(self, read: Callable[[], tuple[dict[str, int], dict[str, int]]]) -> None:
        self._read = read

    def collect(self) -> Iterable[GaugeMetricFamily]:
        lags, statuses = self._read()
        lag = GaugeMetricFamily(
            "obt_projection_lag_events",
            "Events appended but not yet projected",
            labels=["projection"],
        )
        for name, value in lags.items():
            lag.add_metric([name], value)
        yield lag
        clients = GaugeMetricFamily("obt_clients", "Clients by status", labels=["status"])
        for status, count in statuses.items():
            clients.add_metric([status], count)
        yield clients


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.heartbeats = Counter("obt_heartbeats", "Heartbeats accepted", registry=self.registry)
        self.appends = Counter(
            "obt_appended_events", "Events appended to the log", ["type"], registry=self.registry
        )
        self.requests = Histogram(
            "obt_request_duration_seconds",
            "HTTP request duration",
            ["method", "route", "status"],
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
            registry=self.registry,
        )
        self._snapshot: dict[str, Any] = {"lags": {}, "statuses": {}}
        self.registry.register(_Snapshot(self._read_snapshot))

    def count_appends(self, events: Iterable[object]) -> None:
        for event in events:
            self.appends.labels(type(event).__name__).inc()

    def set_snapshot(self, lags: dict[str, int], statuses: Iterable[str]) -> None:
        self._snapshot = {"lags": lags, "statuses": dict(Tally(statuses))}

    def _read_snapshot(self) -> tuple[dict[str, int], dict[str, int]]:
        return self._snapshot["lags"], self._snapshot["statuses"]

    def render(self) -> bytes:
        return generate_latest(self.registry)
