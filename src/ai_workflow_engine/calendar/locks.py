"""One calendar sync per user at a time, across every process of the deployment.

- With Redis configured: a Redis lock (SET NX with an expiry, released only by its owner).
- Without: a lease row in `sync_locks`, written and removed by statements of their own, outside
  the sync's transaction (in autocommit: one round trip each, no BEGIN and COMMIT), so that other
  processes see it while the sync's own transaction is still open. A lease whose process died
  expires and is taken over.
- On SQLite every transaction begins IMMEDIATE (core/db.py): the sync's transaction holds the
  database's write lock from its start to its end, which already excludes any other sync, and a
  lease written by a second transaction would only wait for the sync's own. There, holding the
  lock means making sure the caller's transaction has begun.

A lock that cannot be taken answers `SyncInProgress` (409 with Retry-After); Redis being
unreachable answers 503 before the sync starts. A lock that cannot be released because Redis went
away meanwhile is left to expire: the finished sync is kept. The lock is released
when the sync returns, just before its caller commits; a sync that starts in that instant waits on
the first one's rows and upserts over them (google/sync.py). Whatever happens to locks, the unique
key (calendar, Google event id) keeps any event from being stored twice.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import cast

import structlog
from redis.asyncio import Redis
from redis.exceptions import LockError, RedisError
from sqlalchemy import Table, delete, update
from sqlalchemy.dialects import postgresql
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from ai_workflow_engine.calendar.errors import SyncInProgress
from ai_workflow_engine.calendar.models import SyncLock
from ai_workflow_engine.core.db import utcnow
from ai_workflow_engine.core.metrics import REDIS_ERRORS, count_redis_errors

log = structlog.get_logger(__name__)

LOCKS = cast("Table", SyncLock.__table__)

# how long a client should wait before asking again while another sync runs
RETRY_AFTER_SECONDS = 5
# a lease outlives the longest possible sync by this much (a crashed holder frees it by then)
LEASE_MARGIN_SECONDS = 30.0


class UserSyncLock:
    """Hands out the per-user sync lock; see the module docstring for how it is held."""

    def __init__(
        self,
        *,
        redis: Redis | None,
        sessionmaker: async_sessionmaker[AsyncSession],
        key_prefix: str,
        sync_deadline_seconds: float,
    ) -> None:
        self._redis = redis
        self._sessionmaker = sessionmaker
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
            async with self._lease_row(user_id):
                yield

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

    @asynccontextmanager
    async def _lease_row(self, user_id: int) -> AsyncIterator[None]:
        owner = str(uuid.uuid4())
        async with self._autocommit() as session:
            now = utcnow()
            expires_at = now + timedelta(seconds=self._lease)
            taken = await session.scalar(
                postgresql.insert(LOCKS)
                .values(user_id=user_id, owner=owner, expires_at=expires_at)
                .on_conflict_do_nothing(index_elements=["user_id"])
                .returning(LOCKS.c.owner)
            )
            if taken is None:
                # somebody holds it, or held it and died: only an expired lease is taken over
                taken = await session.scalar(
                    update(LOCKS)
                    .where(LOCKS.c.user_id == user_id, LOCKS.c.expires_at <= now)
                    .values(owner=owner, expires_at=expires_at)
                    .returning(LOCKS.c.owner)
                )
            if taken is None:
                raise SyncInProgress(RETRY_AFTER_SECONDS)
        try:
            yield
        finally:
            async with self._autocommit() as session:
                await session.execute(
                    delete(LOCKS).where(LOCKS.c.user_id == user_id, LOCKS.c.owner == owner)
                )

    @asynccontextmanager
    async def _autocommit(self) -> AsyncIterator[AsyncSession]:
        """A session whose statements each commit on their own (each one is atomic, and the
        lease needs no more)."""
        async with self._sessionmaker() as session:
            await session.connection(execution_options={"isolation_level": "AUTOCOMMIT"})
            yield session
