"""Syncing a user's selected calendars, and reading the synced events.

`sync_user` is what both `POST /calendar/sync/auto` and the background auto-sync call: it needs a
session and the Google clients, never an HTTP request.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncGenerator, Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any, cast
from zoneinfo import ZoneInfo

import structlog
from prometheus_client import Counter, Histogram
from sqlalchemy import (
    ColumnElement,
    Select,
    Table,
    and_,
    func,
    literal_column,
    or_,
    select,
    union_all,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from ai_workflow_engine.calendar.errors import GoogleTimeout, NotConnected, ReconnectRequired
from ai_workflow_engine.calendar.event_schemas import EventListQuery, EventRead, SyncResult
from ai_workflow_engine.calendar.google.client import GoogleCalendarApi, TokenSource
from ai_workflow_engine.calendar.google.events import FetchAheadDeclined, list_event_pages
from ai_workflow_engine.calendar.google.normalize import local_midnight, zone_or_utc
from ai_workflow_engine.calendar.google.sync import (
    CalendarState,
    PageSource,
    PreparedPage,
    PreparePage,
    SyncCounts,
    sync_calendar,
)
from ai_workflow_engine.calendar.google.tokens import TokenProvider
from ai_workflow_engine.calendar.locks import UserSyncLock
from ai_workflow_engine.calendar.models import (
    LONG_EVENT_SPAN,
    Calendar,
    CalendarEvent,
    GoogleConnection,
)
from ai_workflow_engine.core.config import GoogleSettings
from ai_workflow_engine.core.db import utcnow
from ai_workflow_engine.core.errors import AppError, InvalidInput
from ai_workflow_engine.core.pagination import CursorCodec, Page
from ai_workflow_engine.settings.service import read_timezone, timezone_setting

log = structlog.get_logger(__name__)

SYNC_RUNS = Counter("calendar_sync_runs_total", "Calendar sync runs, by result", ["result"])
SYNC_SECONDS = Histogram(
    "calendar_sync_duration_seconds",
    "Time a calendar sync run took (all of a user's selected calendars)",
    buckets=(0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 30.0, 60.0),
)

CONNECTIONS = cast("Table", GoogleConnection.__table__)
# a run may overrun its Google deadline by this much (a token refresh, the last page's writes)
# before it is cut off regardless
_DEADLINE_GRACE_SECONDS = 5.0
_MAX_ERROR_LENGTH = 500  # google_connections.last_error
_EVENTS_CURSOR_SCOPE = "calendar-events"
_BAD_CURSOR = "Invalid cursor; use a next_cursor from this listing"
# an all-day event's stored instants are local midnights; no zone is more than a day off UTC
_ZONE_SLACK = timedelta(days=2)


@dataclass(frozen=True, slots=True)
class SyncClients:
    """What a sync needs besides the session: Google's API and tokens, the per-user lock."""

    api: GoogleCalendarApi
    tokens: TokenProvider
    lock: UserSyncLock
    settings: GoogleSettings


async def sync_user(session: AsyncSession, clients: SyncClients, user_id: int) -> SyncResult:
    """Sync every selected calendar of the user, inside the caller's transaction.

    Raises `NotConnected` or `ReconnectRequired` (409) before touching anything, `SyncInProgress`
    (409) while another sync of this user runs, and, when Google fails or the run exceeds
    GOOGLE_SYNC_DEADLINE_SECONDS, `GoogleUnavailable`/`GoogleBadGateway`/`GoogleTimeout` with
    `keep_changes`: the run's event writes are undone, and the failure recorded on the connection
    is kept when the caller commits.
    """
    connection = await session.scalar(
        select(GoogleConnection).where(GoogleConnection.user_id == user_id)
    )
    if connection is None:
        raise NotConnected()
    if connection.needs_reconnect:
        raise ReconnectRequired()
    async with clients.lock.hold(session, user_id):
        started = time.monotonic()
        try:
            result = await _sync_connection(session, clients, connection, user_id)
        except BaseException:
            SYNC_RUNS.labels(result="failed").inc()
            raise
        finally:
            SYNC_SECONDS.observe(time.monotonic() - started)
        SYNC_RUNS.labels(result="ok").inc()
        return result


async def _sync_connection(
    session: AsyncSession, clients: SyncClients, connection: GoogleConnection, user_id: int
) -> SyncResult:
    settings = clients.settings
    connection_id = connection.id
    calendars, user_zone = await _selected_calendars(session, user_id)
    deadline = time.monotonic() + settings.google_sync_deadline_seconds
    token = clients.tokens.token_source(session, connection)
    counts = SyncCounts()
    full_sync = False
    # the event writes happen in a savepoint: a failure undoes them all while the connection's
    # bookkeeping (a refreshed token, needs_reconnect, the failed status) is kept
    savepoint = await session.begin_nested()
    try:
        async with asyncio.timeout(settings.google_sync_deadline_seconds + _DEADLINE_GRACE_SECONDS):
            for calendar in calendars:
                pages = _page_source(clients, token, calendar, deadline)
                outcome = await sync_calendar(session, calendar, pages, user_zone)
                counts.add(outcome.counts)
                full_sync = full_sync or outcome.full_sync
    except (AppError, TimeoutError) as exc:
        kept = _bookkeeping_of(connection)
        await savepoint.rollback()
        failure = _as_kept_failure(exc, settings.google_retry_after_seconds)
        await _record(session, connection_id, "failed", failure.detail, kept)
        log.warning("calendar_sync_failed", user_id=user_id, error=failure.slug)
        if failure is exc:
            raise
        raise failure from exc
    await savepoint.commit()
    finished_at = utcnow()
    await _record(session, connection_id, "ok", None, {}, at=finished_at)
    log.info(
        "calendar_sync_done",
        user_id=user_id,
        calendars=len(calendars),
        full_sync=full_sync,
        created=counts.created,
        updated=counts.updated,
        deleted=counts.deleted,
    )
    return SyncResult(
        full_sync=full_sync,
        calendars=len(calendars),
        created=counts.created,
        updated=counts.updated,
        deleted=counts.deleted,
        finished_at=finished_at,
    )


async def _selected_calendars(
    session: AsyncSession, user_id: int
) -> tuple[list[CalendarState], ZoneInfo]:
    """The user's selected calendars, and the zone of the user's `timezone` setting (which
    places all-day events), read together: one round trip less for every sync."""
    rows = list(
        await session.execute(
            select(
                Calendar.id,
                Calendar.google_calendar_id,
                Calendar.time_zone,
                Calendar.sync_token,
                Calendar.sync_generation,
                timezone_setting(user_id).label("user_timezone"),
            )
            .where(Calendar.user_id == user_id, Calendar.selected.is_(True))
            .order_by(Calendar.id)
        )
    )
    user_zone = zone_or_utc(rows[0].user_timezone if rows else None)  # no rows: not needed
    calendars = [
        CalendarState(
            id=row.id,
            user_id=user_id,
            google_calendar_id=row.google_calendar_id,
            time_zone=row.time_zone,
            sync_token=row.sync_token,
            sync_generation=row.sync_generation,
        )
        for row in rows
    ]
    return calendars, user_zone


def _page_source(
    clients: SyncClients, token: TokenSource, calendar: CalendarState, deadline: float
) -> PageSource:
    settings = clients.settings

    async def fetch(path: str, params: Mapping[str, str]) -> dict[str, Any]:
        return await clients.api.get_json(path, dict(params), token, deadline=deadline)

    async def fetch_ahead(path: str, params: Mapping[str, str]) -> asyncio.Task[Mapping[str, Any]]:
        # the token is obtained here, in the sync's own flow: refreshing it uses the session,
        # which the sync engine may be writing through while the request ahead is under way
        bearer = await token(False)

        async def same_token(force_refresh: bool) -> str:
            if force_refresh:  # Google refused it (401): refreshed when the page is fetched again
                raise FetchAheadDeclined()
            return bearer

        return asyncio.create_task(
            clients.api.get_json(path, dict(params), same_token, deadline=deadline)
        )

    def pages(sync_token: str | None, prepare: PreparePage) -> AsyncGenerator[PreparedPage, None]:
        return list_event_pages(
            fetch,
            calendar.google_calendar_id,
            prepare=prepare,
            page_size=settings.google_page_size,
            sync_token=sync_token,
            retry_after=settings.google_retry_after_seconds,
            fetch_ahead=fetch_ahead,
        )

    return pages


def _bookkeeping_of(connection: GoogleConnection) -> dict[str, Any]:
    """The connection's token state as the run left it (read before the savepoint is undone,
    which would also undo a token refreshed or a grant found revoked during the run)."""
    return {
        "access_token_encrypted": connection.access_token_encrypted,
        "refresh_token_encrypted": connection.refresh_token_encrypted,
        "token_expires_at": connection.token_expires_at,
        "scopes": connection.scopes,
        "needs_reconnect": connection.needs_reconnect,
    }


def _as_kept_failure(exc: AppError | TimeoutError, retry_after: int) -> AppError:
    """The problem to answer with, marked so that the session commits the recorded failure."""
    if isinstance(exc, TimeoutError):
        return GoogleTimeout(
            "The calendar sync took too long and was abandoned", retry_after, keep_changes=True
        )
    exc.keep_changes = True
    return exc


async def _record(
    session: AsyncSession,
    connection_id: int,
    status: str,
    error: str | None,
    kept: Mapping[str, Any],
    *,
    at: datetime | None = None,
) -> None:
    await session.execute(
        update(CONNECTIONS)
        .where(CONNECTIONS.c.id == connection_id)
        .values(
            **kept,
            last_sync_at=at or utcnow(),
            last_sync_status=status,
            last_error=error[:_MAX_ERROR_LENGTH] if error else None,
        )
    )


# Reading the synced events ----------------------------------------------------------------------


async def list_events(
    session: AsyncSession,
    codec: CursorCodec,
    user_id: int,
    query: EventListQuery,
    limit: int,
    cursor: str | None,
) -> Page[EventRead]:
    """One page of the user's events overlapping the range, by start then id.

    Only events of selected calendars are listed. An all-day event's `start`/`end` are midnight
    of its dates in the user's current time zone, and it overlaps the range when those instants
    do: both are derived from its dates here, so a change of time zone shows at once.
    """
    zone = zone_or_utc(await read_timezone(session, user_id))
    start, end = query.resolved_range(utcnow())
    statement = (
        select(CalendarEvent)
        .join(
            Calendar,
            and_(Calendar.id == CalendarEvent.calendar_id, Calendar.selected.is_(True)),
        )
        .where(CalendarEvent.user_id == user_id, _overlapping(start, end, zone))
    )
    if query.calendar_id is not None:
        statement = statement.where(CalendarEvent.calendar_id == query.calendar_id)
    if query.category_id is not None:
        statement = statement.where(CalendarEvent.category_id == query.category_id)
    if cursor is not None:
        after_start, after_id = _decode_cursor(codec, cursor)
        statement = statement.where(
            or_(
                CalendarEvent.start_at > after_start,
                and_(CalendarEvent.start_at == after_start, CalendarEvent.id > after_id),
            )
        )
    # one row more than the page tells whether another page follows, in the same query
    rows = list(await session.scalars(_by_start(session, statement, start, limit + 1)))
    next_cursor = None
    if len(rows) > limit:
        rows = rows[:limit]
        last = rows[-1]
        next_cursor = codec.encode(_EVENTS_CURSOR_SCOPE, [last.start_at.isoformat(), last.id])
    return Page(items=[_event_read(row, zone) for row in rows], next_cursor=next_cursor)


def _by_start(
    session: AsyncSession, statement: Select[CalendarEvent], start: datetime, size: int
) -> Select[CalendarEvent]:
    """The first `size` events of `statement`, by start then id, read from index ranges only.

    An event overlapping [start, end) that began long before `start` is a long event, so the
    events are read in two parts: those that began at most a short span (plus the zone slack)
    before `start`, a range of the start index however long the calendar's history; and the
    long ones that began earlier, from a partial index of long events by end, which holds only
    those still running at `start`. A page is the first `size` of both.
    """
    try:
        recent_from = start - LONG_EVENT_SPAN - _ZONE_SLACK
    except OverflowError:  # a range at the very start of the calendar: nothing is earlier
        return statement.order_by(CalendarEvent.start_at, CalendarEvent.id).limit(size)
    recent = statement.where(CalendarEvent.start_at >= recent_from)
    earlier = statement.where(
        CalendarEvent.start_at < recent_from,
        _long_event(session.get_bind().dialect.name),
        # a necessary bound for both kinds (an all-day event ends at most a zone slack before
        # the instant its end date begins in the user's zone), so the end index is a range
        CalendarEvent.end_at > start - _ZONE_SLACK,
    )
    parts = [
        part.order_by(CalendarEvent.start_at, CalendarEvent.id).limit(size).subquery()
        for part in (recent, earlier)
    ]
    page = union_all(*(select(*part.c) for part in parts)).subquery("page")
    event = aliased(CalendarEvent, page)
    return select(event).order_by(event.start_at, event.id).limit(size)


def _long_event(dialect: str) -> ColumnElement[bool]:
    """An event lasting longer than LONG_EVENT_SPAN, written as the partial index
    `ix_calendar_events_user_long_end` states it, so that the planner uses that index."""
    if dialect == "postgresql":
        span = CalendarEvent.end_at - CalendarEvent.start_at
        return span > literal_column(f"interval '{LONG_EVENT_SPAN.days} day'")
    days = func.julianday(CalendarEvent.end_at) - func.julianday(CalendarEvent.start_at)
    return days > literal_column(str(LONG_EVENT_SPAN.days))


def _overlapping(start: datetime, end: datetime, zone: ZoneInfo) -> ColumnElement[bool]:
    """Events with start < `end` and end > `start`; all-day ones by their local-midnight span."""
    # an all-day event overlaps if it ends after the day of `start` begins, and starts on a day
    # that begins before `end`
    first_day, _ = _local_day(start, zone)
    end_day, at_midnight = _local_day(end, zone)
    if not at_midnight:
        end_day = _next_day(end_day)
    condition = or_(
        and_(
            CalendarEvent.all_day.is_(False),
            CalendarEvent.start_at < end,
            CalendarEvent.end_at > start,
        ),
        and_(
            CalendarEvent.all_day.is_(True),
            CalendarEvent.start_date < end_day,
            CalendarEvent.end_date > first_day,
        ),
    )
    try:
        # a bound on the indexed start column for both kinds (stored all-day instants may be
        # midnights of another zone than the user's current one)
        return and_(CalendarEvent.start_at < end + _ZONE_SLACK, condition)
    except OverflowError:
        return condition


def _local_day(instant: datetime, zone: ZoneInfo) -> tuple[date, bool]:
    """The day `instant` falls on in `zone`, and whether it is that day's first moment."""
    try:
        local = instant.astimezone(zone)
    except OverflowError:  # past the end (or before the start) of the calendar
        return (date.max if instant.year > 1 else date.min), True
    return local.date(), local.time() == datetime.min.time()


def _next_day(day: date) -> date:
    return day if day == date.max else day + timedelta(days=1)


def _event_read(event: CalendarEvent, zone: ZoneInfo) -> EventRead:
    start, end = event.start_at, event.end_at
    if event.all_day and event.start_date is not None and event.end_date is not None:
        start, end = local_midnight(event.start_date, zone), local_midnight(event.end_date, zone)
    return EventRead(
        id=event.id,
        calendar_id=event.calendar_id,
        google_event_id=event.google_event_id,
        recurring_event_id=event.recurring_event_id,
        title=event.title,
        description=event.description,
        location=event.location,
        status="tentative" if event.status == "tentative" else "confirmed",
        all_day=event.all_day,
        start=start,
        end=end,
        start_date=event.start_date,
        end_date=event.end_date,
        category_id=event.category_id,
        updated_at=event.updated_at,
    )


def _decode_cursor(codec: CursorCodec, cursor: str) -> tuple[datetime, int]:
    match codec.decode(_EVENTS_CURSOR_SCOPE, cursor):
        case [str() as stamp, int() as event_id]:
            try:
                when = datetime.fromisoformat(stamp)
            except ValueError:
                pass
            else:
                if when.tzinfo is not None:
                    return when, event_id
    raise InvalidInput(["query", "cursor"], _BAD_CURSOR)
