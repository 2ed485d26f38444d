"""The sync engine: makes the stored events of one calendar equal to Google's, page by page.

It knows nothing of HTTP: it consumes an async iterator of events.list pages and writes through
the caller's session (flushing, never committing), so a failure anywhere leaves the caller free to
roll the whole run back.

- A full run (no sync token) starts a new *generation* of the calendar, upserts every event it
  sees with that generation, and at its end deletes the calendar's rows of older generations:
  the events Google no longer has. Surviving events keep their row and id.
- An incremental run applies the changes since its sync token: new, changed and deleted events.
- Google answering 410 Gone to a sync token means it is no longer valid: it is forgotten and a
  full run follows. Changes an incremental run applied before the 410 are then simply seen again
  (unchanged) by the full run, so nothing is counted twice.
- The new sync token is stored only after the last page has been applied.

Writes are statements in bulk, one round of them per page (one SELECT of the page's ids and
hashes, one INSERT of new rows, one UPDATE of changed rows, one UPDATE marking unchanged rows of a
full run, one DELETE of cancelled rows): nothing enters the ORM identity map, so memory depends on
the page size, not on the size of the calendar. The INSERT, the bulk of a full run, goes to the
driver with its values already converted (see `_NewRows`); on PostgreSQL so does the UPDATE of
changed rows (one statement over arrays). Two shortcuts skip the SELECT:

- a full run into a calendar that held no events (the first sync, a calendar newly selected)
  inserts its pages as they come, on PostgreSQL with COPY, for as long as the unique key does not
  refuse a row (`_insert_into_empty`);
- a page of nothing but deletions deletes by Google id.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import AsyncGenerator, Callable, Iterable
from contextlib import aclosing
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any, TypeVar, cast
from zoneinfo import ZoneInfo

import psycopg
import structlog
from sqlalchemy import (
    Boolean,
    ColumnElement,
    Date,
    DateTime,
    Integer,
    Table,
    Text,
    Update,
    any_,
    bindparam,
    delete,
    exists,
    func,
    select,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import CursorResult, Result
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import ClauseElement
from sqlalchemy.types import TypeEngine

from ai_workflow_engine.calendar.google.client import SyncTokenExpired
from ai_workflow_engine.calendar.google.events import EventPage
from ai_workflow_engine.calendar.google.normalize import (
    Deletion,
    MalformedEvent,
    NormalizedEvent,
    normalize_event,
    zone_or_utc,
)
from ai_workflow_engine.calendar.models import Calendar, CalendarEvent
from ai_workflow_engine.core.db import utcnow

log = structlog.get_logger(__name__)

# Core tables: statements on them never load rows into the session's identity map
EVENTS = cast("Table", CalendarEvent.__table__)
CALENDARS = cast("Table", Calendar.__table__)


@dataclass(frozen=True, slots=True)
class PreparedPage:
    """An events page read into the engine's form: its changes by Google event id (an id listed
    twice counts as its last listing), and the run's next sync token on its last page."""

    changes: dict[str, NormalizedEvent | Deletion]
    next_sync_token: str | None
    last: bool


PreparePage = Callable[[EventPage], PreparedPage]
# (sync token (None: a full run), how to prepare a page) -> the prepared pages of that run
PageSource = Callable[[str | None, PreparePage], AsyncGenerator[PreparedPage, None]]

# the columns a changed event rewrites; its keys, category and created_at stay
_REWRITTEN = (
    "recurring_event_id",
    "title",
    "description",
    "location",
    "status",
    "all_day",
    "start_at",
    "end_at",
    "start_date",
    "end_date",
    "google_updated_at",
    "content_hash",
    "sync_generation",
    "updated_at",
)


@dataclass(frozen=True, slots=True)
class CalendarState:
    """What the engine needs of a stored calendar."""

    id: int
    user_id: int
    google_calendar_id: str
    time_zone: str | None
    sync_token: str | None
    sync_generation: int


@dataclass(slots=True)
class SyncCounts:
    """Stored event instances created, changed and removed."""

    created: int = 0
    updated: int = 0
    deleted: int = 0

    def add(self, other: SyncCounts) -> None:
        self.created += other.created
        self.updated += other.updated
        self.deleted += other.deleted


@dataclass(frozen=True, slots=True)
class CalendarSyncOutcome:
    full_sync: bool
    counts: SyncCounts


async def sync_calendar(
    session: AsyncSession,
    calendar: CalendarState,
    pages: PageSource,
    user_zone: ZoneInfo,
) -> CalendarSyncOutcome:
    """Bring one calendar's stored events in line with Google's.

    Incremental when the calendar has a sync token, full otherwise or when Google says the token
    expired (410). `user_zone` places all-day events (midnight of their dates).
    """
    counts = SyncCounts()
    if calendar.sync_token is not None:
        try:
            token = await _apply_run(
                session,
                calendar,
                pages(calendar.sync_token, _page_reader(calendar, user_zone)),
                calendar.sync_generation,
                counts,
                mark_seen=False,
            )
        except SyncTokenExpired:
            log.info("calendar_sync_token_expired", calendar_id=calendar.id)
        else:
            await _store_token(session, calendar.id, token)
            return CalendarSyncOutcome(full_sync=False, counts=counts)
    await sync_calendar_fully(session, calendar, pages, user_zone, counts)
    return CalendarSyncOutcome(full_sync=True, counts=counts)


async def sync_calendar_fully(
    session: AsyncSession,
    calendar: CalendarState,
    pages: PageSource,
    user_zone: ZoneInfo,
    counts: SyncCounts,
) -> None:
    """A full run: afterwards the calendar holds exactly the events Google listed."""
    started = await session.execute(
        update(CALENDARS)
        .where(CALENDARS.c.id == calendar.id)
        .values(sync_generation=CALENDARS.c.sync_generation + 1, sync_token=None)
        .returning(
            CALENDARS.c.sync_generation,
            ~exists().where(EVENTS.c.calendar_id == calendar.id),
        )
    )
    generation, empty = started.one()  # the caller holds the calendar's row
    token = await _apply_run(
        session,
        calendar,
        pages(None, _page_reader(calendar, user_zone)),
        generation,
        counts,
        mark_seen=True,
        into_empty=bool(empty),
    )
    vanished = await session.execute(
        delete(EVENTS).where(
            EVENTS.c.calendar_id == calendar.id, EVENTS.c.sync_generation < generation
        )
    )
    counts.deleted += _rowcount(vanished)
    await _store_token(session, calendar.id, token)


async def _apply_run(
    session: AsyncSession,
    calendar: CalendarState,
    pages: AsyncGenerator[PreparedPage, None],
    generation: int,
    counts: SyncCounts,
    *,
    mark_seen: bool,
    into_empty: bool = False,
) -> str | None:
    """Apply every page of one run; the run's next sync token (from its last page).

    A page arrives parsed (`_page_reader`), by the task that fetched it when the page source
    fetches ahead, so that the next page is parsed while this one is written. Its normalized
    events are let go once in the form the INSERT takes, so that the engine holds one page in one
    form at a time, besides the page under way.

    `into_empty`: a full run into a calendar that held no events when it started. Its pages are
    written without first reading which of their events are stored (`_insert_into_empty`) for as
    long as nothing contradicts that.
    """
    token: str | None = None
    # closed at once however the run ends, so that no request is left half-read
    async with aclosing(pages):
        async for page in pages:
            if page.last:
                token = page.next_sync_token
            if page.changes and into_empty:
                into_empty = await _insert_into_empty(
                    session, calendar, page.changes, generation, counts
                )
            if page.changes:
                # emptied by _apply_page as it goes
                await _apply_page(
                    session, calendar, page.changes, generation, counts, mark_seen=mark_seen
                )
            del page
    return token


def _page_reader(calendar: CalendarState, user_zone: ZoneInfo) -> PreparePage:
    """How the pages of `calendar` are read: `user_zone` places all-day events; the zone that
    events.list reports for the calendar reads wall times given without one."""

    def read(page: EventPage) -> PreparedPage:
        default_zone = zone_or_utc(page.time_zone or calendar.time_zone)
        changes = _latest_changes(calendar, page.items, user_zone, default_zone)
        return PreparedPage(changes, page.next_sync_token, page.last)

    return read


def _latest_changes(
    calendar: CalendarState,
    items: Iterable[dict[str, Any]],
    user_zone: ZoneInfo,
    default_zone: ZoneInfo,
) -> dict[str, NormalizedEvent | Deletion]:
    """The page's items by Google event id; an id listed twice counts as its last listing."""
    changes: dict[str, NormalizedEvent | Deletion] = {}
    for item in items:
        try:
            change = normalize_event(item, user_zone=user_zone, default_zone=default_zone)
        except MalformedEvent as exc:
            log.warning("google_event_skipped", calendar_id=calendar.id, reason=str(exc))
            continue
        changes[change.google_event_id] = change
    return changes


async def _apply_page(
    session: AsyncSession,
    calendar: CalendarState,
    changes: dict[str, NormalizedEvent | Deletion],
    generation: int,
    counts: SyncCounts,
    *,
    mark_seen: bool,
) -> None:
    """Write one page's changes; `changes` is emptied, its new events turned into the INSERT's
    values as it goes (so that only one form of them is held while the next page arrives)."""
    if all(type(change) is Deletion for change in changes.values()):
        # nothing to compare: the deletions go by their Google ids, without reading them first
        counts.deleted += await _delete_listed(session, calendar, changes)
        changes.clear()
        return
    rows = await session.execute(
        select(EVENTS.c.google_event_id, EVENTS.c.id, EVENTS.c.content_hash).where(
            EVENTS.c.calendar_id == calendar.id, _among(session, EVENTS.c.google_event_id, changes)
        )
    )
    stored: dict[str, tuple[int, str]] = {row[0]: (row[1], row[2]) for row in rows}
    now = utcnow()
    new = _NewRows(session, calendar, generation, now)
    changed: list[tuple[int, NormalizedEvent]] = []
    unchanged: list[int] = []
    cancelled: list[int] = []
    while changes:
        google_id, change = changes.popitem()
        found = stored.get(google_id)
        if isinstance(change, Deletion):
            if found is not None:
                cancelled.append(found[0])
        elif found is None:
            new.add(change)
        elif found[1] != change.content_hash:
            changed.append((found[0], change))
        else:
            unchanged.append(found[0])

    if new.count:
        await new.insert()
        counts.created += new.count
    if changed:
        await _update_changed(session, changed, generation, now)
        counts.updated += len(changed)
    if unchanged and mark_seen:
        # seen by this run, otherwise untouched (updated_at kept against the column's onupdate)
        await session.execute(
            update(EVENTS)
            .where(_among(session, EVENTS.c.id, unchanged))
            .values(sync_generation=generation, updated_at=EVENTS.c.updated_at)
        )
    if cancelled:
        result = await session.execute(delete(EVENTS).where(EVENTS.c.id.in_(cancelled)))
        counts.deleted += _rowcount(result)


async def _insert_into_empty(
    session: AsyncSession,
    calendar: CalendarState,
    changes: dict[str, NormalizedEvent | Deletion],
    generation: int,
    counts: SyncCounts,
) -> bool:
    """Write a page of a full run into a calendar that was empty when the run started: its events
    are inserted as they are (COPY on PostgreSQL), its deletions remove what an earlier page of
    the run stored. True, with `changes` emptied, when done so.

    An event stored already makes the unique key refuse the page, which is then undone (a
    savepoint) and left in `changes` for `_apply_page`, and False says to go on that way: an
    event Google listed on two pages of the run, or (PostgreSQL) another sync's events committed
    after the run found the calendar empty (see `_NewRows`). The new rows take no more memory
    than the page: on PostgreSQL they are the events themselves, and on SQLite the instants are
    short strings.
    """
    new = _NewRows(session, calendar, generation, utcnow())
    cancelled: list[str] = []
    for google_id, change in changes.items():
        if isinstance(change, Deletion):
            cancelled.append(google_id)
        else:
            new.add(change)
    deleted = 0
    try:
        async with session.begin_nested():
            if new.count:
                await new.insert(overwrite=False)
            if cancelled:
                deleted = await _delete_listed(session, calendar, cancelled)
    except (IntegrityError, psycopg.errors.UniqueViolation) as exc:
        if isinstance(exc, IntegrityError) and not _unique_violation(exc):
            raise
        log.info("calendar_sync_page_not_new", calendar_id=calendar.id)
        return False
    counts.created += new.count
    counts.deleted += deleted
    changes.clear()
    return True


async def _delete_listed(
    session: AsyncSession, calendar: CalendarState, google_ids: Iterable[str]
) -> int:
    """Delete the calendar's events with these Google ids; how many there were."""
    result = await session.execute(
        delete(EVENTS).where(
            EVENTS.c.calendar_id == calendar.id,
            _among(session, EVENTS.c.google_event_id, google_ids),
        )
    )
    return _rowcount(result)


def _unique_violation(exc: IntegrityError) -> bool:
    """Whether the database refused a row for a unique key (not, say, a foreign key)."""
    original = exc.orig
    if isinstance(original, sqlite3.IntegrityError):
        return original.sqlite_errorname == "SQLITE_CONSTRAINT_UNIQUE"
    return isinstance(original, psycopg.errors.UniqueViolation)


def _among(
    session: AsyncSession, column: ColumnElement[Any], values: Iterable[Any]
) -> ColumnElement[bool]:
    """`column IN values`; on PostgreSQL as `= ANY(array)`, one parameter however many values."""
    if session.get_bind().dialect.name == "postgresql":
        return column == any_(bindparam(None, list(values), type_=postgresql.ARRAY(column.type)))
    return column.in_(list(values))


class _NewRows:
    """The INSERT of a page's new events, collected in the form its statement takes.

    An event that exists after all is overwritten with this run's version. Under the per-user
    lock that cannot happen, except in the instant between a sync releasing the lock and its
    transaction committing: a second sync starting then did not see the first one's rows, waits
    on them here, and takes them over (marked with its own generation, so its end-of-run cleanup
    keeps them). The unique key means never a second copy.

    PostgreSQL gets the page as one statement whose rows come from `unnest` of one array per
    column (sent in psycopg's binary format), or, when none of them can be stored already, as
    one binary COPY; SQLite (in-process, where a statement per row costs little) the driver's
    executemany of values already in their stored form. Either way
    SQLAlchemy's per-value bind processing (`UTCDateTime` converting every instant of every row)
    is left out: the instants are aware UTC already (from `normalize_event` and `utcnow`).
    """

    def __init__(
        self, session: AsyncSession, calendar: CalendarState, generation: int, now: datetime
    ) -> None:
        self._session = session
        self._calendar = calendar
        self._generation = generation
        self._now = now
        self._postgresql = session.get_bind().dialect.name == "postgresql"
        self._rows: list[tuple[Any, ...]] = []
        self._stamp = _sqlite_instant(now)
        self.count = 0

    def add(self, event: NormalizedEvent) -> None:
        self.count += 1
        if self._postgresql:
            self._rows.append(event)  # its fields are the per-event columns, in their order
            return
        instant = _sqlite_instant
        self._rows.append(
            (
                self._calendar.user_id,
                self._calendar.id,
                event.google_event_id,
                event.recurring_event_id,
                event.title,
                event.description,
                event.location,
                event.status,
                event.all_day,
                instant(event.start_at),
                instant(event.end_at),
                _sqlite_day(event.start_date),
                _sqlite_day(event.end_date),
                event.content_hash,
                self._generation,
                instant(event.google_updated_at),
                self._stamp,
                self._stamp,
            )
        )

    async def insert(self, *, overwrite: bool = True) -> None:
        """Insert the rows; `overwrite=False`: none of them may be stored already, so they are
        inserted without conflict handling (one PostgreSQL COPY: no per-row speculative
        insertion, no arrays to unnest), and a stored one fails the statement."""
        if not overwrite:
            await self._insert_all_new()
            return
        if self._postgresql:
            shared = {
                "user_id": self._calendar.user_id,
                "calendar_id": self._calendar.id,
                "sync_generation": self._generation,
                "now": self._now,
            }
            columns = zip(*self._rows, strict=True)
            arrays = {
                name: list(values)
                for (name, _), values in zip(_PG_ARRAY_COLUMNS, columns, strict=True)
            }
            await _pg_execute(self._session, _PG_INSERT_NEW, {**shared, **arrays})
        else:
            connection = await self._session.connection()
            await connection.exec_driver_sql(_SQLITE_INSERT_NEW, self._rows)

    async def _insert_all_new(self) -> None:
        if not self._postgresql:
            connection = await self._session.connection()
            await connection.exec_driver_sql(_SQLITE_INSERT_ALL_NEW, self._rows)
            return
        driver = await _psycopg_connection(self._session)
        shared = (
            self._calendar.user_id,
            self._calendar.id,
            self._generation,
            self._now,
            self._now,
        )
        async with driver.cursor() as cursor, cursor.copy(_PG_COPY_NEW) as copy:
            copy.set_types(_PG_COPY_TYPES)
            for row in self._rows:
                await copy.write_row(shared + row)


_Insert = TypeVar("_Insert", postgresql.Insert, sqlite.Insert)


def _on_conflict_overwrite(statement: _Insert) -> _Insert:
    return statement.on_conflict_do_update(
        index_elements=["calendar_id", "google_event_id"],
        set_={name: statement.excluded[name] for name in _REWRITTEN},
    )


# the columns of `_SQLITE_INSERT_NEW`, in the order of its parameters (the table's)
_SQLITE_COLUMNS = (
    "user_id",
    "calendar_id",
    "google_event_id",
    "recurring_event_id",
    "title",
    "description",
    "location",
    "status",
    "all_day",
    "start_at",
    "end_at",
    "start_date",
    "end_date",
    "content_hash",
    "sync_generation",
    "google_updated_at",
    "created_at",
    "updated_at",
)


def _sqlite_insert_new(*, overwrite: bool) -> str:
    statement = sqlite.insert(EVENTS).values({name: bindparam(name) for name in _SQLITE_COLUMNS})
    if overwrite:
        statement = _on_conflict_overwrite(statement)
    compiled = statement.compile(dialect=sqlite.dialect())
    assert tuple(compiled.positiontup or ()) == _SQLITE_COLUMNS
    return str(compiled)


def _sqlite_instant(value: datetime | None) -> str | None:
    """An instant in UTC (as `normalize_event` and `utcnow` give them) as `UTCDateTime` stores
    it on SQLite: naive UTC in the text form of SQLAlchemy's SQLite DATETIME (microseconds always
    written, so text order is time order), i.e. its ISO form without the `+00:00`."""
    if value is None:
        return None
    assert value.utcoffset() == _NO_OFFSET
    return value.isoformat(" ", "microseconds")[:26]


def _sqlite_day(value: date | None) -> str | None:
    """A date as SQLAlchemy's SQLite DATE stores it."""
    return None if value is None else value.isoformat()


# the per-event columns of a new row and their PostgreSQL types, for the `unnest` INSERT; the
# instants are passed as they are (aware UTC, from `normalize_event` and `utcnow`), so the
# per-value conversion of `UTCDateTime` is not needed
_PG_ARRAY_COLUMNS: tuple[tuple[str, TypeEngine[Any]], ...] = (
    ("google_event_id", Text()),
    ("recurring_event_id", Text()),
    ("title", Text()),
    ("description", Text()),
    ("location", Text()),
    ("status", Text()),
    ("all_day", Boolean()),
    ("start_at", DateTime(timezone=True)),
    ("end_at", DateTime(timezone=True)),
    ("start_date", Date()),
    ("end_date", Date()),
    ("google_updated_at", DateTime(timezone=True)),
    ("content_hash", Text()),
)


# a NormalizedEvent is a PostgreSQL row of new values as it is: its fields are these columns
assert NormalizedEvent._fields == tuple(name for name, _ in _PG_ARRAY_COLUMNS)


def _pg_insert_new() -> postgresql.Insert:
    # rendered for psycopg, whose `%(name)s` parameters and `::type` casts it then carries
    """INSERT ... SELECT FROM unnest(<one array per column>), with the page's shared values
    (user, calendar, generation, timestamps) bound once."""
    names = [name for name, _ in _PG_ARRAY_COLUMNS]
    # the types make psycopg send each list as an array of that type
    rows = (
        func.unnest(
            *(bindparam(name, type_=postgresql.ARRAY(type_)) for name, type_ in _PG_ARRAY_COLUMNS)
        )
        .table_valued(*names)
        .render_derived(name="page_rows")
    )
    now = bindparam("now", type_=DateTime(timezone=True))
    shared: dict[str, ColumnElement[Any]] = {
        "user_id": bindparam("user_id", type_=Integer()),
        "calendar_id": bindparam("calendar_id", type_=Integer()),
        "sync_generation": bindparam("sync_generation", type_=Integer()),
        "created_at": now,
        "updated_at": now,
    }
    columns: list[ColumnElement[Any]] = [*shared.values(), *(rows.c[name] for name in names)]
    source = select(*columns)
    return _on_conflict_overwrite(postgresql.insert(EVENTS).from_select([*shared, *names], source))


_NO_OFFSET = timedelta(0)
_PSYCOPG = postgresql.psycopg.dialect()  # type: ignore[no-untyped-call]


def _for_psycopg_binary(statement: ClauseElement) -> str:
    """The statement in psycopg's SQL (`%(name)s` parameters, `::type` casts), with every
    parameter sent in binary format (`%(name)b`)."""
    return re.sub(r"%\((\w+)\)s", r"%(\1)b", str(statement.compile(dialect=_PSYCOPG)))


_PG_INSERT_NEW = _for_psycopg_binary(_pg_insert_new())
_SQLITE_INSERT_NEW = _sqlite_insert_new(overwrite=True)
_SQLITE_INSERT_ALL_NEW = _sqlite_insert_new(overwrite=False)

# PostgreSQL's names of the types of `_PG_ARRAY_COLUMNS`, as psycopg looks up their dumpers
_PG_TYPE_NAMES: dict[type[TypeEngine[Any]], str] = {
    Text: "text",
    Boolean: "bool",
    DateTime: "timestamptz",
    Date: "date",
}
# COPY of new rows: the shared values, then the per-event ones (a NormalizedEvent's fields)
_PG_COPY_COLUMNS = (
    ("user_id", "int4"),
    ("calendar_id", "int4"),
    ("sync_generation", "int4"),
    ("created_at", "timestamptz"),
    ("updated_at", "timestamptz"),
    *((name, _PG_TYPE_NAMES[type(type_)]) for name, type_ in _PG_ARRAY_COLUMNS),
)
_PG_COPY_TYPES = [type_ for _, type_ in _PG_COPY_COLUMNS]
_PG_COPY_NEW = (
    f"COPY {EVENTS.name} ({', '.join(name for name, _ in _PG_COPY_COLUMNS)}) "
    "FROM STDIN (FORMAT BINARY)"
)


async def _update_changed(
    session: AsyncSession,
    changed: list[tuple[int, NormalizedEvent]],
    generation: int,
    now: datetime,
) -> None:
    """Rewrite the changed events (row id, new version): on PostgreSQL one statement for all of
    them (arrays in binary, as the INSERT of new rows), on SQLite an UPDATE per event."""
    if session.get_bind().dialect.name == "postgresql":
        arrays: dict[str, Any] = {"row_id": [row_id for row_id, _ in changed]}
        columns = zip(*(event for _, event in changed), strict=True)
        for (name, _), values in zip(_PG_ARRAY_COLUMNS, columns, strict=True):
            if name in _REWRITTEN:
                arrays[name] = list(values)
        shared = {"sync_generation": generation, "now": now}
        await _pg_execute(session, _PG_UPDATE_CHANGED, {**shared, **arrays})
        return
    shared = {"new_sync_generation": generation, "new_updated_at": now}
    await session.execute(
        _UPDATE_CHANGED,
        [
            {
                **{f"new_{name}": value for name, value in event.stored_values().items()},
                **shared,
                "row_id": row_id,
            }
            for row_id, event in changed
        ],
    )


def _update_changed_one_by_one() -> Update:
    """UPDATE of one changed event per parameter set (`row_id` and `new_<column>` values)."""
    return (
        update(EVENTS)
        .where(EVENTS.c.id == bindparam("row_id"))
        .values({name: bindparam(f"new_{name}", type_=EVENTS.c[name].type) for name in _REWRITTEN})
    )


def _pg_update_changed() -> Update:
    """UPDATE ... FROM unnest(<row ids>, <one array per rewritten column>), with the shared
    values (generation, time) bound once."""
    arrays = [("row_id", Integer()), *(c for c in _PG_ARRAY_COLUMNS if c[0] in _REWRITTEN)]
    rows = (
        func.unnest(*(bindparam(name, type_=postgresql.ARRAY(type_)) for name, type_ in arrays))
        .table_valued(*(name for name, _ in arrays))
        .render_derived(name="page_rows")
    )
    values: dict[str, Any] = {name: rows.c[name] for name, _ in arrays[1:]}
    values["sync_generation"] = bindparam("sync_generation", type_=Integer())
    values["updated_at"] = bindparam("now", type_=DateTime(timezone=True))
    assert set(values) == set(_REWRITTEN)
    return update(EVENTS).where(EVENTS.c.id == rows.c.row_id).values(values)


_UPDATE_CHANGED = _update_changed_one_by_one()
_PG_UPDATE_CHANGED = _for_psycopg_binary(_pg_update_changed())


async def _psycopg_connection(session: AsyncSession) -> psycopg.AsyncConnection[Any]:
    """The psycopg connection under the session's (its transaction is the session's)."""
    connection = await session.connection()
    raw = await connection.get_raw_connection()
    return cast("psycopg.AsyncConnection[Any]", raw.driver_connection)


async def _pg_execute(session: AsyncSession, sql: str, params: dict[str, Any]) -> None:
    """A statement of `_for_psycopg_binary` run by psycopg directly, for its binary format:
    dumping the arrays as text would quote and escape every value."""
    driver = await _psycopg_connection(session)
    async with driver.cursor() as cursor:
        await cursor.execute(sql, params)


async def _store_token(session: AsyncSession, calendar_id: int, token: str | None) -> None:
    await session.execute(
        update(CALENDARS).where(CALENDARS.c.id == calendar_id).values(sync_token=token)
    )


def _rowcount(result: Result[Any]) -> int:
    """Rows a DELETE removed (DML results are cursor results on every driver we use)."""
    assert isinstance(result, CursorResult)
    return max(result.rowcount, 0)
