"""events.list and calendarList.list: parameter rules, paging, full and incremental sync.

Paging never snapshots the result set. A page token carries the position after the last item it
returned (creation order for a plain full sync, change sequence for an incremental one, the sort
key with orderBy), so paging N items costs O(N) overall. A run's nextSyncToken is the calendar's
change sequence when the run's first page was served: anything that changed while the client was
paging is delivered (again) by the next incremental sync.
"""

from __future__ import annotations

import bisect
import datetime as dt
import hashlib
import json
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

from tests.google_standin.common import (
    ApiError,
    StandinConfig,
    TokenCodec,
    When,
    bad_parameter,
    format_timestamp,
    parse_rfc3339,
    zone,
)
from tests.google_standin.store import (
    CalendarListEntry,
    CalendarState,
    EventRecord,
    Occurrence,
    User,
    event_etag,
    html_link,
)

# Parameters that do not change which items a query returns (not part of a page token's binding).
_NOT_BOUND = frozenset(
    {
        "pageToken",
        "maxResults",
        "syncToken",
        "fields",
        "prettyPrint",
        "alt",
        "key",
        "quotaUser",
        "access_token",
        "oauth_token",
        "userIp",
        "callback",
        "$.xgafv",
        "upload_protocol",
        "uploadType",
    }
)
SYNC_INCOMPATIBLE = (
    "iCalUID",
    "orderBy",
    "privateExtendedProperty",
    "q",
    "sharedExtendedProperty",
    "timeMin",
    "timeMax",
    "updatedMin",
)
_ROLE_RANK = {"freeBusyReader": 0, "reader": 1, "writer": 2, "owner": 3}
Key = tuple[Any, ...]
Item = tuple[Key, EventRecord, Occurrence | None]


class Query:
    def __init__(self, items: list[tuple[str, str]]) -> None:
        self.items = items
        self._first: dict[str, str] = {}
        for name, value in items:
            self._first.setdefault(name, value)

    def get(self, name: str) -> str | None:
        return self._first.get(name)

    def has(self, name: str) -> bool:
        return name in self._first

    def fingerprint(self, scope: str) -> str:
        bound = sorted((n, v) for n, v in self.items if n not in _NOT_BOUND)
        text = json.dumps([scope, bound], separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def boolean(self, name: str, default: bool = False) -> bool:
        value = self.get(name)
        if value is None:
            return default
        if value.lower() in ("true", "1"):
            return True
        if value.lower() in ("false", "0"):
            return False
        raise bad_parameter(name, f"Invalid boolean value: '{value}'.")

    def integer(self, name: str, default: int, low: int, high: int) -> int:
        value = self.get(name)
        if value is None:
            return default
        try:
            number = int(value)
        except ValueError:
            raise bad_parameter(
                name, f"Invalid value '{value}'. Values must be integers."
            ) from None
        if number < low:
            raise bad_parameter(name, f"Invalid value '{value}'. Values must be >= {low}.")
        return min(number, high)

    def timestamp(self, name: str) -> dt.datetime | None:
        value = self.get(name)
        if value is None:
            return None
        try:
            return parse_rfc3339(value)
        except ValueError:
            raise ApiError(
                400, "badRequest", "Bad Request", location=name, location_type="parameter"
            ) from None


def _sync_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()[:16]


def _invalid_page_token() -> ApiError:
    return ApiError(
        400, "invalid", "Invalid page token value.", location="pageToken", location_type="parameter"
    )


def full_sync_required() -> ApiError:
    return ApiError(
        410, "fullSyncRequired", "Sync token is no longer valid, a full sync is required."
    )


# ---------------------------------------------------------------------------------------------
# events.list


@dataclass
class EventsContext:
    single: bool
    show_deleted: bool
    incremental: bool
    time_min: dt.datetime | None
    time_max: dt.datetime | None
    updated_min: dt.datetime | None
    q_terms: list[str]
    ical_uid: str | None
    zone: ZoneInfo
    upper: dt.datetime  # expansion bound
    limit: int
    user_email: str
    order_by: str | None

    @property
    def windowed(self) -> bool:
        return self.time_min is not None or self.time_max is not None


def _in_window(record_start: When, record_end: When, ctx: EventsContext) -> bool:
    if ctx.time_min is not None and record_end.as_instant(ctx.zone) <= ctx.time_min:
        return False
    return ctx.time_max is None or record_start.as_instant(ctx.zone) < ctx.time_max


def _items_for(
    cal: CalendarState, rec: EventRecord, ctx: EventsContext
) -> list[tuple[int, EventRecord, Occurrence | None]]:
    if not ctx.incremental:
        if ctx.ical_uid is not None and rec.ical_uid != ctx.ical_uid:
            return []
        if ctx.updated_min is not None and rec.updated < ctx.updated_min:
            return []
        if ctx.q_terms:
            text = rec.search_text()
            if not all(term in text for term in ctx.q_terms):
                return []
    show_deleted = ctx.show_deleted
    if rec.recurring_event_id is not None:  # an exception: moved or cancelled instance
        if rec.cancelled and not show_deleted:
            # "Cancelled instances of recurring events (but not the underlying recurring event)
            # will still be included if showDeleted and singleEvents are both False."
            master = cal.events.get(rec.recurring_event_id)
            if ctx.single or master is None or master.cancelled:
                return []
        if not ctx.incremental and not _in_window(rec.start, rec.end, ctx):
            return []
        return [(0, rec, None)]
    if rec.recurrence is None:  # a single event
        if rec.cancelled and not show_deleted:
            return []
        if not ctx.incremental and not _in_window(rec.start, rec.end, ctx):
            return []
        return [(0, rec, None)]
    # a series master
    if rec.cancelled and not show_deleted:
        return []
    if not ctx.single:
        if not ctx.incremental and ctx.windowed:
            occurrences = cal.occurrences(rec, ctx.upper, ctx.limit)
            if not any(_in_window(o.start, o.end, ctx) for o in occurrences):
                return []
        return [(0, rec, None)]
    overridden = rec.exceptions or {}
    return [
        (o.key, rec, o)
        for o in cal.occurrences(rec, ctx.upper, ctx.limit)
        if o.id not in overridden and (ctx.incremental or _in_window(o.start, o.end, ctx))
    ]


def _default_stream(cal: CalendarState, ctx: EventsContext, cursor: Key | None) -> Iterator[Item]:
    start_ord = int(cursor[0]) if cursor else 0
    for index in range(start_ord, len(cal.order)):
        for sub, rec, occ in _items_for(cal, cal.order[index], ctx):
            if cursor is not None and index == start_ord and sub <= cursor[1]:
                continue
            yield (index, sub), rec, occ


def _incremental_stream(
    cal: CalendarState, ctx: EventsContext, base: int, snapshot: int, cursor: Key | None
) -> Iterator[Item]:
    position = cal.log_start(int(cursor[0]) - 1 if cursor else base)
    for j in range(position, len(cal.log_seqs)):
        seq = cal.log_seqs[j]
        if seq > snapshot:
            break
        rec = cal.log_records[j]
        if rec.seq != seq:  # superseded by a later change
            continue
        for sub, item, occ in _items_for(cal, rec, ctx):
            if cursor is not None and seq == cursor[0] and sub <= cursor[1]:
                continue
            yield (seq, sub), item, occ


def _micros(instant: dt.datetime) -> int:
    return int(instant.timestamp()) * 1_000_000 + instant.microsecond


def _ordered_stream(
    cal: CalendarState, ctx: EventsContext, fingerprint: str, cursor: Key | None
) -> Iterator[Item]:
    cache: OrderedDict[tuple[Any, ...], Any] = cal.order_cache
    cache_key = (fingerprint, cal.seq, cal.generation, ctx.upper.date())
    cached: tuple[list[Key], list[Item]] | None = cache.get(cache_key)
    if cached is None:
        entries: list[Item] = []
        for _, rec, occ in _default_stream(cal, ctx, None):
            item_id = occ.id if occ is not None else rec.id
            if ctx.order_by == "startTime":
                start = occ.start if occ is not None else rec.start
                key: Key = (_micros(start.as_instant(ctx.zone)), item_id)
            else:
                key = (_micros(rec.updated), item_id)
            entries.append((key, rec, occ))
        entries.sort(key=lambda e: e[0])
        cached = ([e[0] for e in entries], entries)
        cache[cache_key] = cached
        while len(cache) > 4:
            cache.popitem(last=False)
    keys, entries = cached
    position = bisect.bisect_right(keys, tuple(cursor)) if cursor else 0
    yield from entries[position:]


def render_event(
    cal: CalendarState,
    rec: EventRecord,
    occ: Occurrence | None,
    tz: ZoneInfo,
    user_email: str,
) -> dict[str, Any]:
    if rec.cancelled:
        if occ is not None:
            return {
                "kind": "calendar#event",
                "etag": event_etag(rec),
                "id": occ.id,
                "status": "cancelled",
                "recurringEventId": rec.id,
                "originalStartTime": occ.original.render(tz),
            }
        out: dict[str, Any] = {
            "kind": "calendar#event",
            "etag": event_etag(rec),
            "id": rec.id,
            "status": "cancelled",
        }
        if rec.recurring_event_id is not None and rec.original_start is not None:
            out["recurringEventId"] = rec.recurring_event_id
            out["originalStartTime"] = rec.original_start.render(tz)
        return out
    item_id = occ.id if occ is not None else rec.id
    out = {
        "kind": "calendar#event",
        "etag": event_etag(rec),
        "id": item_id,
        "status": rec.status,
        "htmlLink": html_link(item_id, cal.id),
        "created": format_timestamp(rec.created),
        "updated": format_timestamp(rec.updated),
    }
    if rec.summary is not None:
        out["summary"] = rec.summary
    if rec.description is not None:
        out["description"] = rec.description
    if rec.location is not None:
        out["location"] = rec.location
    creator: dict[str, Any] = {"email": rec.creator}
    if rec.creator == user_email:
        creator["self"] = True
    organizer: dict[str, Any] = {"email": cal.id}
    if cal.id != cal.owner:
        organizer["displayName"] = cal.summary
    if cal.owner == user_email:
        organizer["self"] = True
    out["creator"] = creator
    out["organizer"] = organizer
    if occ is not None:
        out["start"] = occ.start.render(tz)
        out["end"] = occ.end.render(tz)
        out["recurringEventId"] = rec.id
        out["originalStartTime"] = occ.original.render(tz)
    else:
        out["start"] = rec.start.render(tz)
        out["end"] = rec.end.render(tz)
        if rec.recurrence is not None:
            out["recurrence"] = list(rec.recurrence)
        if rec.recurring_event_id is not None and rec.original_start is not None:
            out["recurringEventId"] = rec.recurring_event_id
            out["originalStartTime"] = rec.original_start.render(tz)
    if rec.extra:
        out.update(rec.extra)
    out["iCalUID"] = rec.ical_uid
    out["sequence"] = rec.sequence
    out.setdefault("reminders", {"useDefault": True})
    out.setdefault("eventType", "default")
    return out


def list_events(
    cal: CalendarState,
    entry: CalendarListEntry,
    user: User,
    query: Query,
    *,
    codec: TokenCodec,
    config: StandinConfig,
    now: dt.datetime,
) -> dict[str, Any]:
    """The events.list response body, or raise ``ApiError``."""
    page_token = query.get("pageToken")
    sync_token = query.get("syncToken")
    if sync_token is not None:
        for name in SYNC_INCOMPATIBLE:
            if query.has(name):
                raise ApiError(
                    400,
                    "badRequest",
                    f"The parameter {name} cannot be used together with syncToken.",
                    location=name,
                    location_type="parameter",
                )
    single = query.boolean("singleEvents")
    show_deleted = query.boolean("showDeleted")
    order_by = query.get("orderBy")
    if order_by is not None and order_by not in ("startTime", "updated"):
        raise bad_parameter("orderBy", f"Invalid value '{order_by}' for orderBy.")
    if order_by == "startTime" and not single:
        raise ApiError(
            400, "badRequest", "The requested ordering is not available for the particular query."
        )
    time_min = query.timestamp("timeMin")
    time_max = query.timestamp("timeMax")
    if time_min is not None and time_max is not None and time_max <= time_min:
        raise ApiError(
            400,
            "timeRangeEmpty",
            "The specified time range is empty.",
            domain="calendar",
            location="timeMax",
            location_type="parameter",
        )
    updated_min = query.timestamp("updatedMin")
    max_results = query.integer("maxResults", 250, 1, 2500)
    tz_name = query.get("timeZone") or cal.time_zone
    try:
        tz = zone(tz_name)
    except ValueError:
        raise bad_parameter("timeZone", f"Invalid time zone definition: {tz_name}") from None
    for name in ("alwaysIncludeEmail", "showHiddenInvitations"):
        query.boolean(name)
    query.integer("maxAttendees", 0, 1, 1_000_000)

    fingerprint = query.fingerprint(f"events:{cal.id}")
    page = 1
    cursor: Key | None = None
    if page_token is not None:
        state = codec.decode(page_token)
        if state is None or state.get("t") != "events" or state.get("f") != fingerprint:
            raise _invalid_page_token()
        mode = str(state["m"])
        if mode == "inc":
            if sync_token is not None and _sync_hash(sync_token) != state.get("h"):
                raise _invalid_page_token()
            if state["g"] != cal.generation:
                raise full_sync_required()
        elif sync_token is not None:
            raise _invalid_page_token()
        snapshot = int(state["s"])
        base = int(state.get("b", 0))
        page = int(state["p"])
        cursor = tuple(state["k"])
        token_hash = state.get("h")
    elif sync_token is not None:
        token = codec.decode(sync_token)
        if (
            token is None
            or token.get("t") != "sync"
            or token.get("c") != cal.id
            or token.get("g") != cal.generation
            or int(token.get("s", -1)) > cal.seq
        ):
            raise full_sync_required()
        mode = "inc"
        base = int(token["s"])
        snapshot = cal.seq
        token_hash = _sync_hash(sync_token)
    else:
        mode = "ord" if order_by else "full"
        base = 0
        snapshot = cal.seq
        token_hash = None

    incremental = mode == "inc"
    ctx = EventsContext(
        single=single,
        show_deleted=show_deleted or incremental or updated_min is not None,
        incremental=incremental,
        time_min=time_min,
        time_max=time_max,
        updated_min=updated_min,
        q_terms=(query.get("q") or "").lower().split(),
        ical_uid=query.get("iCalUID"),
        zone=tz,
        upper=time_max or (now + config.expansion_horizon),
        limit=config.max_instances_per_series,
        user_email=user.email,
        order_by=order_by,
    )
    if incremental:
        stream = _incremental_stream(cal, ctx, base, snapshot, cursor)
    elif mode == "ord":
        stream = _ordered_stream(cal, ctx, fingerprint, cursor)
    else:
        stream = _default_stream(cal, ctx, cursor)
    page_size = min(max_results, config.max_page_size or max_results)

    items: list[dict[str, Any]] = []
    last: Key | None = None
    more = False
    for key, rec, occ in stream:
        if len(items) >= page_size:
            more = True
            break
        items.append(render_event(cal, rec, occ, tz, user.email))
        last = key

    body: dict[str, Any] = {
        "kind": "calendar#events",
        "etag": cal.etag(),
        "summary": cal.summary,
        "description": cal.description or "",
        "updated": format_timestamp(cal.updated),
        "timeZone": cal.time_zone,
        "accessRole": entry.access_role,
        "defaultReminders": [{"method": "popup", "minutes": 10}] if entry.primary else [],
    }
    if more:
        assert last is not None
        state_out: dict[str, Any] = {
            "t": "events",
            "f": fingerprint,
            "m": mode,
            "s": snapshot,
            "p": page + 1,
            "k": list(last),
        }
        if incremental:
            state_out.update(b=base, g=cal.generation, h=token_hash)
        body["nextPageToken"] = codec.encode(state_out)
    else:
        body["nextSyncToken"] = codec.encode(
            {"t": "sync", "c": cal.id, "g": cal.generation, "s": snapshot}
        )
    body["items"] = items
    return body


def page_number(codec: TokenCodec, page_token: str | None) -> int:
    """The 1-based page a request asks for (for fault rules and the request log)."""
    if page_token is None:
        return 1
    state = codec.decode(page_token)
    if state is None or not isinstance(state.get("p"), int):
        return 0
    return int(state["p"])


# ---------------------------------------------------------------------------------------------
# calendarList.list


def render_entry(cal: CalendarState, entry: CalendarListEntry) -> dict[str, Any]:
    etag = f'"{int(cal.updated.timestamp() * 1000)}{entry.seq:04d}"'
    if entry.deleted:
        return {"kind": "calendar#calendarListEntry", "etag": etag, "id": cal.id, "deleted": True}
    out: dict[str, Any] = {
        "kind": "calendar#calendarListEntry",
        "etag": etag,
        "id": cal.id,
        "summary": cal.summary,
    }
    if cal.description:
        out["description"] = cal.description
    out.update(
        timeZone=cal.time_zone,
        colorId=entry.color_id,
        backgroundColor="#9fe1e7",
        foregroundColor="#000000",
    )
    if entry.hidden:
        out["hidden"] = True
    if entry.selected:
        out["selected"] = True
    out["accessRole"] = entry.access_role
    out["defaultReminders"] = [{"method": "popup", "minutes": 10}] if entry.primary else []
    if entry.primary:
        out["notificationSettings"] = {
            "notifications": [
                {"type": "eventCreation", "method": "email"},
                {"type": "eventChange", "method": "email"},
                {"type": "eventCancellation", "method": "email"},
                {"type": "eventResponse", "method": "email"},
            ]
        }
        out["primary"] = True
    out["conferenceProperties"] = {"allowedConferenceSolutionTypes": ["hangoutsMeet"]}
    return out


def list_calendars(
    user: User,
    calendars: dict[str, CalendarState],
    query: Query,
    *,
    codec: TokenCodec,
) -> dict[str, Any]:
    page_token = query.get("pageToken")
    sync_token = query.get("syncToken")
    min_role = query.get("minAccessRole")
    if min_role is not None and min_role not in _ROLE_RANK:
        raise bad_parameter("minAccessRole", f"Invalid value '{min_role}' for minAccessRole.")
    if sync_token is not None and min_role is not None:
        raise ApiError(
            400,
            "badRequest",
            "The parameter minAccessRole cannot be used together with syncToken.",
            location="minAccessRole",
            location_type="parameter",
        )
    show_deleted = query.boolean("showDeleted")
    show_hidden = query.boolean("showHidden")
    max_results = query.integer("maxResults", 100, 1, 250)
    fingerprint = query.fingerprint(f"calendarList:{user.email}")
    page = 1
    cursor = -1
    if page_token is not None:
        state = codec.decode(page_token)
        if state is None or state.get("t") != "calendarList" or state.get("f") != fingerprint:
            raise _invalid_page_token()
        incremental = bool(state["i"])
        if incremental and state["g"] != user.list_generation:
            raise full_sync_required()
        base, snapshot, page, cursor = (int(state[k]) for k in ("b", "s", "p", "k"))
    elif sync_token is not None:
        token = codec.decode(sync_token)
        if (
            token is None
            or token.get("t") != "calendarListSync"
            or token.get("u") != user.email
            or token.get("g") != user.list_generation
        ):
            raise full_sync_required()
        incremental, base, snapshot = True, int(token["s"]), user.list_seq
    else:
        incremental, base, snapshot = False, 0, user.list_seq

    items: list[dict[str, Any]] = []
    more = False
    last = cursor
    for index in range(cursor + 1, len(user.entries)):
        entry = user.entries[index]
        if incremental:
            if not base < entry.seq <= snapshot:
                continue
        else:
            if entry.deleted and not show_deleted:
                continue
            if entry.hidden and not show_hidden:
                continue
            if min_role is not None and _ROLE_RANK[entry.access_role] < _ROLE_RANK[min_role]:
                continue
        if len(items) >= max_results:
            more = True
            break
        items.append(render_entry(calendars[entry.calendar_id], entry))
        last = index
    body: dict[str, Any] = {"kind": "calendar#calendarList", "etag": f'"p3{user.list_seq:014d}"'}
    if more:
        body["nextPageToken"] = codec.encode(
            {
                "t": "calendarList",
                "f": fingerprint,
                "i": incremental,
                "g": user.list_generation,
                "b": base,
                "s": snapshot,
                "p": page + 1,
                "k": last,
            }
        )
    else:
        body["nextSyncToken"] = codec.encode(
            {"t": "calendarListSync", "u": user.email, "g": user.list_generation, "s": snapshot}
        )
    body["items"] = items
    return body
