"""Prometheus metrics of one `ccm serve` process, at GET /metrics.

Counters count what this process did since it started (Prometheus sums servers and survives restarts);
the queue depth is read from the database at scrape time, so every server reports the shared queue.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class _Queue(Collector):
    """ccm_queue_depth{queue=...}: read when scraped."""

    def __init__(self, read: Callable[[], dict[str, int]]) -> None:
        self.read = read

    def collect(self) -> Iterator[GaugeMetricFamily]:
        family = GaugeMetricFamily(
            "ccm_queue_depth",
            "Work waiting: nights due, sync requests, sends due, jobs in this server",
            labels=["queue"],
        )
        try:
            depths = self.read()
        except Exception:  # a scrape must not fail because the database blinked; the gauge is left out
            depths = {}
        for queue, depth in sorted(depths.items()):
            family.add_metric([queue], depth)
        yield family


class Metrics:
    """The process's counters, on a registry of its own."""

    def __init__(self, queue: Callable[[], dict[str, int]] | None = None) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.runs = Counter("ccm_runs", "Tenant runs finished", ["kind", "outcome"], registry=r)
        self.failures = Counter("ccm_run_failures", "Tenant runs that failed", ["kind"], registry=r)
        self.api_calls = Counter("ccm_api_calls", "Calls made to the ledgers", ["ledger"], registry=r)
        self.throttled = Counter("ccm_rate_limited", "Ledger answers that were 429s", ["ledger"], registry=r)
        self.reminders = Counter("ccm_reminders_sent", "Reminders that went out", registry=r)
        self.webhooks = Counter("ccm_webhooks", "Webhook deliveries", ["ledger", "result"], registry=r)
        self.seconds = Histogram(
            "ccm_run_seconds",
            "How long tenant runs took",
            ["kind"],
            registry=r,
            buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 1800),
        )
        self.busy = Gauge("ccm_workers_busy", "Tenant runs in progress in this server", registry=r)
        if queue is not None:
            r.register(_Queue(queue))

    def render(self) -> bytes:
        return generate_latest(self.registry)
