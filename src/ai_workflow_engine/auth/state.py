"""Authentication state every server process must agree on: revoked sessions and login failures.

With `REDIS_URL` set it lives in Redis; otherwise in the database, written through the request's
own session (the caller raises its error with `keep_changes=True` so the write is kept).

Revocations are also written to the database when Redis holds them, because a revoked token must
stay revoked whatever happens to Redis: a Redis that restarts without persistence, is flushed, or
fails over to an empty replica comes back without the marker key this store writes, and before
any token is accepted again the revocations still in force are copied back from the database.
Redis keeps answering every check on the hot path. Login-failure counts live in Redis only: losing
them restarts an account's failure window, nothing more. A Redis call that fails raises (the
request answers 503): no token is accepted and no login is tried while nothing can be checked.
"""

from __future__ import annotations

import asyncio
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
from ai_workflow_engine.core.metrics import count_redis_errors

# revocations copied back into Redis per round trip
_RELOAD_BATCH = 1000
# the marker expires, so the copy is also refreshed once a day (restoring any revocation key
# lost some other way) and a Redis shared by many deployments keeps no key of theirs forever
_LOADED_MARKER_SECONDS = 24 * 3600


class AuthStateStore(Protocol):
    def __hash__(self) -> int: ...  # statements built for a store are cached by it

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
        self._durable = DatabaseAuthState(max_failures, window)
        self._loaded_key = f"{prefix}revoked-sessions-loaded"
        self._reload_lock = asyncio.Lock()

    def _session_key(self, session_id: str) -> str:
        return f"{self._prefix}revoked-session:{session_id}"

    def _failures_key(self, user_id: int) -> str:
        return f"{self._prefix}login-failures:{user_id}"

    async def revoke_session(self, db: AsyncSession, session_id: str, until: datetime) -> None:
        await self._durable.revoke_session(db, session_id, until)
        ttl = max(1, math.ceil((until - utcnow()).total_seconds()))
        with count_redis_errors("auth_state"):
            await self._redis.set(self._session_key(session_id), b"1", ex=ttl)

    async def is_session_revoked(self, db: AsyncSession, session_id: str) -> bool:
        with count_redis_errors("auth_state"):
            loaded, revoked = await self._redis.mget(
                [self._loaded_key, self._session_key(session_id)]
            )
        if loaded is None:  # Redis has lost what it held (or never held it): the database has it
            await self._reload_revocations(db)
            return await self._durable.is_session_revoked(db, session_id)
        return revoked is not None

    async def _reload_revocations(self, db: AsyncSession) -> None:
        """Copy the revocations in force from the database into Redis, then mark them loaded."""
        async with self._reload_lock:  # one reload per process; the others wait for it
            with count_redis_errors("auth_state"):
                if await self._redis.exists(self._loaded_key):
                    return
            now = utcnow()
            rows = (
                await db.execute(
                    select(RevokedSession.session_id, RevokedSession.expires_at).where(
                        RevokedSession.expires_at > now
                    )
                )
            ).all()
            with count_redis_errors("auth_state"):
                for first in range(0, len(rows), _RELOAD_BATCH):
                    async with self._redis.pipeline(transaction=False) as pipe:
                        for session_id, until in rows[first : first + _RELOAD_BATCH]:
                            ttl = max(1, math.ceil((until - now).total_seconds()))
                            pipe.set(self._session_key(session_id), b"1", ex=ttl)
                        await pipe.execute()
                await self._redis.set(self._loaded_key, b"1", ex=_LOADED_MARKER_SECONDS)

    def revoked_condition(self) -> ColumnElement[bool] | None:
        return None

    async def lockout_remaining(self, db: AsyncSession, user_id: int) -> int:
        key = self._failures_key(user_id)
        with count_redis_errors("auth_state"):
            async with self._redis.pipeline(transaction=True) as pipe:
                pipe.get(key)
                pipe.ttl(key)
                count, ttl = await pipe.execute()
        if count is not None and int(count) >= self._max_failures and ttl > 0:
            return int(ttl)
        return 0

    async def record_login_failure(self, db: AsyncSession, user_id: int) -> None:
        key = self._failures_key(user_id)
        with count_redis_errors("auth_state"):
            async with self._redis.pipeline(transaction=True) as pipe:
                pipe.incr(key)
                # the window starts at the first failure and is not extended by later ones
                pipe.expire(key, self._window_seconds, nx=True)
                await pipe.execute()

    async def reset_login_failures(self, db: AsyncSession, user_id: int) -> None:
        with count_redis_errors("auth_state"):
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
