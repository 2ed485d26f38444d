"""Prometheus metrics. Defined once per process (the client's registry is process-wide)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from prometheus_client import Counter, Gauge, Histogram
from redis.exceptions import RedisError
from sqlalchemy.pool import AsyncAdaptedQueuePool, Pool, QueuePool

REQUESTS = Counter("http_requests_total", "HTTP requests answered", ["method", "route", "status"])
REQUEST_SECONDS = Histogram(
    "http_request_duration_seconds",
    "Time to answer an HTTP request",
    ["method", "route", "status"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
DB_POOL_CHECKED_OUT = Gauge("db_pool_connections_in_use", "Database connections checked out")
DB_POOL_SIZE = Gauge("db_pool_size", "Database connections the pool keeps")
DB_POOL_OVERFLOW = Gauge(
    "db_pool_overflow_connections", "Database connections open beyond the pool size"
)
DB_POOL_WAITING = Gauge(
    "db_pool_waiting_requests",
    "Callers waiting for a database connection because the pool and its overflow are in use",
)
REDIS_ERRORS = Counter(
    "redis_errors_total",
    "Redis calls that failed (unreachable, timed out, or an error answer), by component",
    ["component"],
)


class MeasuredAsyncQueuePool(AsyncAdaptedQueuePool):
    """SQLAlchemy's asyncio queue pool, counting the callers that wait for a connection."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.waiting = 0

    def _do_get(self) -> Any:
        # the pool waits only when no connection is idle and the overflow is used up
        will_wait = (
            self._max_overflow > -1 and self._overflow >= self._max_overflow and self._pool.empty()
        )
        if not will_wait:
            return super()._do_get()
        self.waiting += 1
        try:
            return super()._do_get()
        finally:
            self.waiting -= 1


def observe_pool(pool: Pool) -> None:
    """Copy the state of the database pool into the gauges (called when /metrics is read)."""
    if not isinstance(pool, QueuePool):
        return  # SQLite in memory and the like: no pool to speak of
    DB_POOL_CHECKED_OUT.set(pool.checkedout())
    DB_POOL_SIZE.set(pool.size())
    DB_POOL_OVERFLOW.set(max(0, pool.overflow()))
    DB_POOL_WAITING.set(pool.waiting if isinstance(pool, MeasuredAsyncQueuePool) else 0)


@contextmanager
def count_redis_errors(component: str) -> Iterator[None]:
    """Count a Redis failure inside the block under `component`, and let it propagate."""
    try:
        yield
    except RedisError:
        REDIS_ERRORS.labels(component=component).inc()
        raise
