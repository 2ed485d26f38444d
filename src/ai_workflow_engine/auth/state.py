"""Authentication state every server process must agree on: revoked sessions and login failures.

With `REDIS_URL` set it lives in Redis; otherwise in the database, written through the request's
own session (the caller raises its error with `keep_changes=True` so the write is kept).
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta
from typing import Protocol

from redis.asyncio import Redis
from sqlalchemy import ColumnElement, bindparam, delete, exists, select
from sqlalchemy.dialects.postgresql import Insert as PgInsert
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import Insert as SqliteInsert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from ai_workflow_engine.auth.models import LoginFailure, RevokedSession
from ai_workflow_engine.core.db import Base, utcnow


class AuthStateStore(Protocol):
    async def revoke_session(self, db: AsyncSession, session_id: str, until: datetime) -> None: ...

    async def is_session_revoked(self, db: AsyncSession, session_id: str) -> bool: ...

    def revoked_condition(self) -> ColumnElement[bool] | None:
        """A SQL condition, true when the login session bound as `session_id` is revoked, for a
        store that keeps revocations in the database: the per-request check then rides on the
        query that loads the user. None when the store keeps them elsewhere (ask
        `is_session_revoked`)."""
        ...

    async def lockout_remaining(self, db: AsyncSession, user_id: int) -> int:
        """Seconds the account stays locked, 0 when it may try to log in."""
        ...

    async def record_login_failure(self, db: AsyncSession, user_id: int) -> None: ...

    async def reset_login_failures(self, db: AsyncSession, user_id: int) -> None: ...


class RedisAuthState:
    def __init__(self, redis: Redis, prefix: str, max_failures: int, window: timedelta) -> None:
        self._redis = redis
        self._prefix = prefix
        self._max_failures = max_failures
        self._window_seconds = int(window.total_seconds())

    def _session_key(self, session_id: str) -> str:
        return f"{self._prefix}revoked-session:{session_id}"

    def _failures_key(self, user_id: int) -> str:
        return f"{self._prefix}login-failures:{user_id}"

    async def revoke_session(self, db: AsyncSession, session_id: str, until: datetime) -> None:
        ttl = max(1, math.ceil((until - utcnow()).total_seconds()))
        await self._redis.set(self._session_key(session_id), b"1", ex=ttl)

    async def is_session_revoked(self, db: AsyncSession, session_id: str) -> bool:
        return bool(await self._redis.exists(self._session_key(session_id)))

    def revoked_condition(self) -> ColumnElement[bool] | None:
        return None

    async def lockout_remaining(self, db: AsyncSession, user_id: int) -> int:
        key = self._failures_key(user_id)
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.get(key)
            pipe.ttl(key)
            count, ttl = await pipe.execute()
        if count is not None and int(count) >= self._max_failures and ttl > 0:
            return int(ttl)
        return 0

    async def record_login_failure(self, db: AsyncSession, user_id: int) -> None:
        key = self._failures_key(user_id)
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.incr(key)
            # the window starts at the first failure and is not extended by later ones
            pipe.expire(key, self._window_seconds, nx=True)
            await pipe.execute()

    async def reset_login_failures(self, db: AsyncSession, user_id: int) -> None:
        await self._redis.delete(self._failures_key(user_id))


class DatabaseAuthState:
    def __init__(self, max_failures: int, window: timedelta) -> None:
        self._max_failures = max_failures
        self._window = window

    @staticmethod
    def _insert(db: AsyncSession, table: type[Base]) -> PgInsert | SqliteInsert:
        """An INSERT that can say ON CONFLICT DO NOTHING, on either backend."""
        if db.get_bind().dialect.name == "postgresql":
            return pg_insert(table)
        return sqlite_insert(table)

    async def revoke_session(self, db: AsyncSession, session_id: str, until: datetime) -> None:
        statement = self._insert(db, RevokedSession).values(session_id=session_id, expires_at=until)
        await db.execute(statement.on_conflict_do_nothing())
        await db.execute(delete(RevokedSession).where(RevokedSession.expires_at < utcnow()))

    async def is_session_revoked(self, db: AsyncSession, session_id: str) -> bool:
        found = await db.scalar(
            select(RevokedSession.session_id).where(RevokedSession.session_id == session_id)
        )
        return found is not None

    def revoked_condition(self) -> ColumnElement[bool] | None:
        return exists().where(RevokedSession.session_id == bindparam("session_id"))

    async def lockout_remaining(self, db: AsyncSession, user_id: int) -> int:
        row = await db.get(LoginFailure, user_id)
        if row is None or row.failures < self._max_failures:
            return 0
        remaining = (row.window_started_at + self._window - utcnow()).total_seconds()
        return max(0, math.ceil(remaining))

    async def record_login_failure(self, db: AsyncSession, user_id: int) -> None:
        now = utcnow()
        await db.execute(
            self._insert(db, LoginFailure)
            .values(user_id=user_id, window_started_at=now, failures=0)
            .on_conflict_do_nothing()
        )
        row = await db.scalar(
            select(LoginFailure)
            .where(LoginFailure.user_id == user_id)
            .with_for_update()
            .execution_options(populate_existing=True)
        )
        assert row is not None  # inserted above, and only this store deletes it
        if row.window_started_at <= now - self._window:
            row.window_started_at, row.failures = now, 1  # the old window has passed
        else:
            row.failures += 1
        await db.flush()

    async def reset_login_failures(self, db: AsyncSession, user_id: int) -> None:
        await db.execute(delete(LoginFailure).where(LoginFailure.user_id == user_id))
