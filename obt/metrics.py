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


class _Storage(Collector):
    """Gauges of what the log and the archive take, measured at most every few minutes."""

    def __init__(self, read: Callable[[], dict[str, int]]) -> None:
        self._read = read

    def collect(self) -> Iterable[GaugeMetricFamily]:
        sizes = self._read()
        for name, text in (
            ("obt_log_bytes", "Bytes the live event log takes in the store, indexes included"),
            ("obt_archive_bytes", "Bytes the archive of compacted events takes"),
        ):
            if name in sizes:
                yield GaugeMetricFamily(name, text, value=sizes[name])


# Measuring the log walks its pages (SQLite's dbstat): not on every scrape.
STORAGE_MEASURE_EVERY_S = 300.0


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
        self.compaction_seconds = Histogram(
            "obt_compaction_seconds",
            "How long each compaction run took",
            buckets=(0.1, 1, 5, 15, 60, 300, 900, 3600),
            registry=self.registry,
        )
        self._snapshot: dict[str, Any] = {"lags": {}, "statuses": {}}
        self.registry.register(_Snapshot(self._read_snapshot))
        self._sizes: dict[str, int] = {}
        self._sizes_at = float("-inf")
        self.registry.register(_Storage(lambda: self._sizes))

    def count_appends(self, events: Iterable[object]) -> None:
        for event in events:
            self.appends.labels(type(event).__name__).inc()

    def set_snapshot(self, lags: dict[str, int], statuses: Iterable[str]) -> None:
        self._snapshot = {"lags": lags, "statuses": dict(Tally(statuses))}

    def _read_snapshot(self) -> tuple[dict[str, int], dict[str, int]]:
        return self._snapshot["lags"], self._snapshot["statuses"]

    def sizes_due(self, now: float) -> bool:
        return now - self._sizes_at >= STORAGE_MEASURE_EVERY_S

    def set_sizes(self, now: float, sizes: dict[str, int]) -> None:
        self._sizes, self._sizes_at = sizes, now

    @property
    def sizes(self) -> dict[str, int]:
        """The last measured obt_log_bytes / obt_archive_bytes (empty before the first)."""
        return dict(self._sizes)

    def render(self) -> bytes:
        return generate_latest(self.registry)
