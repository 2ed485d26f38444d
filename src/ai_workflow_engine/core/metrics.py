"""Prometheus metrics. Defined once per process (the client's registry is process-wide)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

REQUESTS = Counter("http_requests_total", "HTTP requests answered", ["method", "route", "status"])
REQUEST_SECONDS = Histogram(
    "http_request_duration_seconds",
    "Time to answer an HTTP request",
    ["method", "route", "status"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
DB_POOL_CHECKED_OUT = Gauge("db_pool_connections_in_use", "Database connections checked out")
DB_POOL_SIZE = Gauge("db_pool_size", "Database connections the pool keeps")
