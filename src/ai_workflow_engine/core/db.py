"""The database layer: one async engine per application, one session per request.

The engine and sessionmaker are built in the application's lifespan (see `main.py`) and kept on
`app.state`; nothing here is global, so a worker, a CLI command or a test builds its own through
the same `create_engine` and cannot forget an "initialize" step.
"""

from __future__ import annotations

import asyncio
import select
import weakref
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Annotated, Any

import psycopg
from fastapi import Depends, Request
from sqlalchemy import DateTime, MetaData, Select, event, func, literal_column
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import Dialect, Engine
from sqlalchemy.exc import DBAPIError, DisconnectionError, StatementError
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import DeclarativeBase
from sqlalchemy.types import TypeDecorator
from sqlalchemy.util import greenlet_spawn

from ai_workflow_engine.core.config import DatabaseSettings
from ai_workflow_engine.core.errors import AppError
from ai_workflow_engine.core.metrics import MeasuredAsyncQueuePool

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_N_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class UTCDateTime(TypeDecorator[datetime]):
    """An aware UTC instant on every backend.

    PostgreSQL stores `timestamptz`; SQLite has no time zones, so values are stored as naive UTC
    (which also keeps its text comparison in instant order) and made aware again on load.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTCDateTime column")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def utcnow() -> datetime:
    return datetime.now(UTC)


def create_engine(settings: DatabaseSettings) -> AsyncEngine:
    """Build the async engine for the configured backend."""
    url = settings.url
    if url.get_backend_name() == "sqlite":
        if url.database and url.database != ":memory:":
            from pathlib import Path

            Path(url.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_async_engine(
            url,
            connect_args={"timeout": settings.database_busy_timeout_ms / 1000},
            pool_pre_ping=False,
            hide_parameters=True,  # error messages (and so logged tracebacks) carry no values
        )
        _configure_sqlite(engine, settings)
        return engine
    engine = create_async_engine(
        url,
        poolclass=MeasuredAsyncQueuePool,  # reports callers waiting for a connection
        hide_parameters=True,  # error messages (and so logged tracebacks) carry no values
        pool_size=settings.database_pool_size,
        max_overflow=settings.database_max_overflow,
        pool_timeout=settings.database_pool_timeout,
        pool_recycle=1800,
        connect_args={
            # Never rely on named prepared statements: pgbouncer in transaction pooling mode
            # hands each transaction a different server connection.
            "prepare_threshold": None,
            "connect_timeout": settings.database_connect_timeout,
            "cursor_factory": _bounded_cursor(settings.database_query_timeout),
        },
    )
    event.listen(engine.sync_engine.pool, "checkout", _discard_closed_connection)
    return engine


def _discard_closed_connection(dbapi_connection: Any, _record: Any, _proxy: Any) -> None:
    """Pessimistic disconnect handling without a round trip per checkout (pool_pre_ping's).

    A pooled connection is idle: the server sends it nothing unless it is going away (a backend
    terminated, a server or pgbouncer shut down), which leaves an error message and the end of
    the stream to read. So a socket with anything to read, or a connection libpq already knows
    is broken, is replaced with a fresh one before the request uses it.
    """
    pgconn = dbapi_connection.driver_connection.pgconn
    try:
        poller = select.poll()
        poller.register(pgconn.socket, select.POLLIN | select.POLLPRI)
        unusable = pgconn.status != psycopg.pq.ConnStatus.OK or bool(poller.poll(0))
    except (psycopg.Error, OSError, ValueError):
        unusable = True
    if unusable:
        raise DisconnectionError("the pooled connection was closed by the server")


def _bounded_cursor(timeout: float) -> type[psycopg.AsyncCursor[Any]]:
    """A cursor whose statements give up after `timeout` seconds with an OperationalError (a 503):
    a server that accepts connections but never answers (PostgreSQL gone behind pgbouncer) must
    not hang requests."""

    class BoundedCursor(psycopg.AsyncCursor[Any]):
        async def execute(self, query: Any, params: Any = None, **kwargs: Any) -> Any:
            try:
                # the first expiry makes psycopg send a cancel request; the second, a second
                # later, makes it close the connection instead of waiting for the cancel
                async with asyncio.timeout(timeout + 1), asyncio.timeout(timeout):
                    return await super().execute(query, params, **kwargs)
            except TimeoutError as exc:
                raise psycopg.OperationalError(
                    f"the database did not answer within {timeout:g}s"
                ) from exc

        async def executemany(self, query: Any, params_seq: Any, **kwargs: Any) -> None:
            try:
                async with asyncio.timeout(timeout + 1), asyncio.timeout(timeout):
                    await super().executemany(query, params_seq, **kwargs)
            except TimeoutError as exc:
                raise psycopg.OperationalError(
                    f"the database did not answer within {timeout:g}s"
                ) from exc

    return BoundedCursor


def _configure_sqlite(engine: AsyncEngine, settings: DatabaseSettings) -> None:
    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Take transaction control from the driver so that BEGIN is ours (below).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={int(settings.database_busy_timeout_ms)}")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(connection: Any) -> None:
        # IMMEDIATE takes the write lock up front: a deferred transaction that reads and then
        # writes can fail at once with "database is locked" instead of waiting busy_timeout.
        connection.exec_driver_sql("BEGIN IMMEDIATE")


def create_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False, autoflush=False)


@asynccontextmanager
async def unit_of_work(
    sessionmaker: async_sessionmaker[AsyncSession],
) -> AsyncIterator[AsyncSession]:
    """A session that commits once if the block ends normally and rolls back otherwise.

    An `AppError` raised with `keep_changes` is the exception: its bookkeeping is committed.
    """
    async with sessionmaker() as session:
        try:
            yield session
        except AppError as exc:
            await (session.commit() if exc.keep_changes else session.rollback())
            raise
        except BaseException:
            await session.rollback()
            raise
        else:
            await session.commit()


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    """One session per request, see `unit_of_work`."""
    async with unit_of_work(request.app.state.sessionmaker) as session:
        yield session


# scope="function": the commit runs when the endpoint returns and before the response is sent, so
# a commit that fails is answered as an error, never as a success whose data was lost.
SessionDep = Annotated[AsyncSession, Depends(get_session, scope="function")]


_autocommit_engines: weakref.WeakKeyDictionary[Engine, AsyncEngine] = weakref.WeakKeyDictionary()


def _autocommit_engine(engine: AsyncEngine) -> AsyncEngine:
    """The same engine (and pool) with connections in autocommit, made once per engine."""
    found = _autocommit_engines.get(engine.sync_engine)
    if found is None:
        found = engine.execution_options(isolation_level="AUTOCOMMIT")
        _autocommit_engines[engine.sync_engine] = found
    return found


async def read_only_session(session: SessionDep) -> None:
    """For routes that only read: run the request's statements in autocommit.

    A read needs no transaction of its own (under READ COMMITTED each statement of one sees its
    own snapshot anyway), and without one the request saves the BEGIN and COMMIT round trips.
    Declare it in the route decorator (`dependencies=[ReadOnly]`): FastAPI resolves those before
    the parameters, so the session has not connected yet. If it has, this does nothing.
    PostgreSQL only: SQLite's transactions are local and cheap, and it keeps BEGIN IMMEDIATE.
    """
    bind = session.bind
    if (
        isinstance(bind, AsyncEngine)
        and bind.dialect.name == "postgresql"
        and not session.in_transaction()
    ):
        session.bind = _autocommit_engine(bind)


ReadOnly = Depends(read_only_session)
"""Route dependency: the request only reads (see `read_only_session`)."""


_PSYCOPG = postgresql.psycopg.dialect()  # type: ignore[no-untyped-call]


class CompiledRead:
    """A SELECT for a hot read path, compiled to the driver's SQL once.

    `rows` runs it on a session's connection and `read` outside any session (see each). A
    statement with list parameters (IN), and SQLite, run the statement as usual.
    """

    def __init__(self, statement: Select[*tuple[Any, ...]]) -> None:
        self.statement = statement
        sql = str(statement.compile(dialect=_PSYCOPG))
        self._sql = None if "POSTCOMPILE" in sql else sql
        self._instants = tuple(
            index
            for index, column in enumerate(statement.selected_columns)
            if isinstance(column.type, UTCDateTime)
        )
        # for `read`: the instants as PostgreSQL's UTC wall-clock time (a `timestamp`), which the
        # driver loads as naive datetimes without any time zone work (a third of the cost of the
        # rows of a task page, more than the conversion costs the server)
        self._naive_sql = self._sql
        if self._sql is not None and self._instants:
            columns = [
                func.timezone(literal_column("'UTC'"), column).label(column.name)
                if index in self._instants
                else column
                for index, column in enumerate(statement.selected_columns)
            ]
            self._naive_sql = str(statement.with_only_columns(*columns).compile(dialect=_PSYCOPG))

    async def rows(self, session: AsyncSession, params: dict[str, Any]) -> list[tuple[Any, ...]]:
        """The rows, on the session's own connection: on PostgreSQL through `exec_driver_sql`,
        still SQLAlchemy's connection, transaction, events and error handling, but without the
        per-execution work on the statement (cache key, cache lookup, result processing) that
        costs more than a small query itself. Instants are aware UTC datetimes, as through the ORM.
        """
        connection = await session.connection()
        if self._sql is None or connection.dialect.name != "postgresql":
            return [tuple(row) for row in await session.execute(self.statement, params)]
        result = await connection.exec_driver_sql(self._sql, params)
        return self._in_utc([tuple(row) for row in result])

    async def read(self, engine: AsyncEngine, params: dict[str, Any]) -> list[tuple[Any, ...]]:
        """The rows, read outside any session: for a request whose only database work is this
        one statement. Instants are **naive** datetimes in UTC (orjson writes them with `Z` under
        `OPT_NAIVE_UTC`, see core/responses.py).

        On PostgreSQL the statement runs on a connection of the engine's pool, in autocommit (one
        round trip), through the driver itself: no session, transaction or result objects to
        build, which cost several times the query. The pool still checks the connection out (its
        checks, limits and metrics apply) and errors are SQLAlchemy's, as from a session.
        """
        if self._naive_sql is None or engine.dialect.name != "postgresql":
            async with engine.connect() as connection:
                result = await connection.execute(self.statement, params)
                return self._naive([tuple(row) for row in result])
        return await _read_in_autocommit(engine, self._naive_sql, params)

    def _in_utc(self, rows: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
        return self._instants_converted(rows, lambda value: value.astimezone(UTC))

    def _naive(self, rows: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
        return self._instants_converted(
            rows, lambda value: value.astimezone(UTC).replace(tzinfo=None)
        )

    def _instants_converted(
        self, rows: list[tuple[Any, ...]], convert: Callable[[datetime], datetime]
    ) -> list[tuple[Any, ...]]:
        if not self._instants:
            return rows
        converted = []
        for row in rows:
            values = list(row)
            for index in self._instants:
                if values[index] is not None:
                    values[index] = convert(values[index])
            converted.append(tuple(values))
        return converted


async def _read_in_autocommit(
    engine: AsyncEngine, sql: str, params: dict[str, Any]
) -> list[tuple[Any, ...]]:
    """Run `sql` on a pooled psycopg connection switched to autocommit for the statement."""
    # checkout and checkin may wait on the pool or talk to the server: SQLAlchemy does that
    # inside a greenlet; the statement in between is the driver's own coroutine
    try:
        pooled = await greenlet_spawn(engine.sync_engine.pool.connect)
    except psycopg.Error as exc:  # no connection could be made
        raise _as_sqlalchemy_error(exc, sql, invalidated=False) from exc
    connection: psycopg.AsyncConnection[Any] = pooled.driver_connection  # type: ignore[assignment]
    reusable = False
    try:
        await connection.set_autocommit(True)
        cursor = connection.cursor()
        await cursor.execute(sql, params)
        rows: list[tuple[Any, ...]] = await cursor.fetchall()
        await connection.set_autocommit(False)  # as the pool and the sessions expect it
        reusable = True
        return rows
    except psycopg.Error as exc:
        raise _as_sqlalchemy_error(exc, sql, invalidated=True) from exc
    finally:
        # a connection that failed, or was left mid-statement by a cancelled request, is closed
        # rather than handed to the next request
        await greenlet_spawn(pooled.close if reusable else pooled.invalidate)


def _as_sqlalchemy_error(exc: psycopg.Error, sql: str, *, invalidated: bool) -> StatementError:
    """The driver's error as SQLAlchemy raises it (OperationalError and so on), so that it is
    answered as any other database error is (see core/errors.py)."""
    return DBAPIError.instance(
        sql, None, exc, psycopg.Error, hide_parameters=True, connection_invalidated=invalidated
    )
