"""One calendar sync per user at a time, across every process of the deployment.

- With Redis configured: a Redis lock (SET NX with an expiry, released only by its owner).
- Without, on PostgreSQL: a transaction-level advisory lock (`pg_try_advisory_xact_lock`) taken
  in the sync's own transaction: one round trip, nothing written. Every session of the server sees
  it at once, and the server releases it when that transaction ends (commit, rollback, or the
  connection going away with a crashed process), so it never outlives the sync's writes. A
  transaction-level lock is what pgbouncer's transaction pooling allows (a session-level one
  would stay with a server connection that other clients get next).
- On SQLite every transaction begins IMMEDIATE (core/db.py): the sync's transaction holds the
  database's write lock from its start to its end, which already excludes any other sync. There,
  holding the lock means making sure the caller's transaction has begun.

A lock that cannot be taken answers `SyncInProgress` (409 with Retry-After); Redis being
unreachable answers 503 before the sync starts. A lock that cannot be released because Redis went
away meanwhile is left to expire: the finished sync is kept. The Redis lock is released when the
sync returns, just before its caller commits; a sync that starts in that instant waits on the
first one's rows and takes them over (google/sync.py). Whatever happens to locks, the unique key
(calendar, Google event id) keeps any event from being stored twice.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import structlog
from redis.asyncio import Redis
from redis.exceptions import LockError, RedisError
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from ai_workflow_engine.calendar.errors import SyncInProgress
from ai_workflow_engine.core.metrics import REDIS_ERRORS, count_redis_errors

log = structlog.get_logger(__name__)

# how long a client should wait before asking again while another sync runs
RETRY_AFTER_SECONDS = 5
# a Redis lock outlives the longest possible sync by this much (a crashed holder frees it by then)
LEASE_MARGIN_SECONDS = 30.0
# the first key of PostgreSQL advisory locks on calendar syncs (the second is the user id), so
# that they cannot collide with advisory locks taken for anything else
ADVISORY_LOCK_CLASS = 0x63616C31  # "cal1"


class UserSyncLock:
    """Hands out the per-user sync lock; see the module docstring for how it is held."""

    def __init__(
        self,
        *,
        redis: Redis | None,
        key_prefix: str,
        sync_deadline_seconds: float,
    ) -> None:
        self._redis = redis
        self._key_prefix = key_prefix
        self._lease = sync_deadline_seconds + LEASE_MARGIN_SECONDS

    @asynccontextmanager
    async def hold(self, session: AsyncSession, user_id: int) -> AsyncIterator[None]:
        """Hold the lock of `user_id` for the block; `SyncInProgress` if another sync has it.

        `session` is the one the sync writes through.
        """
        if self._redis is not None:
            async with self._redis_lock(self._redis, user_id):
                yield
        elif session.get_bind().dialect.name == "sqlite":
            await session.connection()  # BEGIN IMMEDIATE: the write lock, until commit/rollback
            yield
        else:
            taken = await session.scalar(
                select(func.pg_try_advisory_xact_lock(ADVISORY_LOCK_CLASS, user_id))
            )
            if not taken:
                raise SyncInProgress(RETRY_AFTER_SECONDS)
            yield  # released when the session's transaction ends

    @asynccontextmanager
    async def _redis_lock(self, redis: Redis, user_id: int) -> AsyncIterator[None]:
        lock = redis.lock(
            f"{self._key_prefix}calendar-sync:{user_id}",
            timeout=self._lease,
            blocking=False,
        )
        with count_redis_errors("sync_lock"):  # Redis down: the sync does not start (503)
            acquired = await lock.acquire(blocking=False)
        if not acquired:
            raise SyncInProgress(RETRY_AFTER_SECONDS)
        try:
            yield
        finally:
            try:
                await lock.release()
            except LockError:  # expired meanwhile (and perhaps taken by another sync)
                log.warning("calendar_sync_lock_lost", user_id=user_id)
            except RedisError as exc:
                # the sync itself completed and is kept; the lock expires on its own after the
                # lease, and until then this user's next sync answers 409
                REDIS_ERRORS.labels(component="sync_lock").inc()
                log.warning(
                    "calendar_sync_lock_release_failed",
                    user_id=user_id,
                    error_class=type(exc).__name__,
                )
