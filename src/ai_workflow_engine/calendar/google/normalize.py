"""Google event resources → the fields we store, or a deletion.

Google describes a timed event's start and end as a local `dateTime` with an offset, or without
one plus a `timeZone`; an all-day event as `date`s whose end is exclusive. We store:

- timed events as UTC instants (`start_at`/`end_at`), converted with zoneinfo so that a wall time
  given with a `timeZone` gets the offset in force on that day (DST included);
- all-day events as Google's dates, never shifted, and as instants at local midnight of those
  dates in the user's time zone (so that they sort and overlap with timed events).

A cancelled item is a deletion: Google sends either just an `id` (an event that was deleted) or an
`id` with `recurringEventId` and `originalStartTime` (one cancelled instance of a series). Neither
is ever stored.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from typing import Any, NamedTuple
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import orjson

STORED_STATUSES = frozenset({"confirmed", "tentative"})
_UTC_ZONE = ZoneInfo("UTC")


class MalformedEvent(ValueError):
    """An event resource whose times cannot be read (Google never sends one; a proxy might)."""


@dataclass(frozen=True, slots=True)
class Deletion:
    google_event_id: str


class NormalizedEvent(NamedTuple):
    """An event as we store it (a tuple: a sync builds thousands a second)."""

    google_event_id: str
    recurring_event_id: str | None
    title: str | None
    description: str | None
    location: str | None
    status: str
    all_day: bool
    start_at: datetime
    end_at: datetime
    start_date: date | None
    end_date: date | None
    google_updated_at: datetime | None
    content_hash: str

    def stored_values(self) -> dict[str, Any]:
        """The column values of a `calendar_events` row (without its keys and bookkeeping)."""
        return {
            "recurring_event_id": self.recurring_event_id,
            "title": self.title,
            "description": self.description,
            "location": self.location,
            "status": self.status,
            "all_day": self.all_day,
            "start_at": self.start_at,
            "end_at": self.end_at,
            "start_date": self.start_date,
            "end_date": self.end_date,
            "google_updated_at": self.google_updated_at,
            "content_hash": self.content_hash,
        }


def zone_or_utc(name: str | None) -> ZoneInfo:
    """The named IANA zone; UTC for a missing or unknown name."""
    if not name:
        return _UTC_ZONE
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return _UTC_ZONE


def local_midnight(day: date, zone: ZoneInfo) -> datetime:
    """The instant (UTC) at which `day` begins in `zone`."""
    return datetime.combine(day, time(0), tzinfo=zone).astimezone(UTC)


def normalize_event(
    item: dict[str, Any], *, user_zone: ZoneInfo, default_zone: ZoneInfo
) -> NormalizedEvent | Deletion:
    """Read one item of an events.list page (a decoded JSON object).

    `user_zone` places all-day events; `default_zone` (the calendar's zone, which events.list
    reports as its `timeZone`) reads a wall time that comes with neither an offset nor a zone.
    Raises `MalformedEvent` for an item without a usable id or times that is not a deletion.

    A full sync runs this for every event of a calendar, so it reads the item with plain `dict`
    operations and type checks (what JSON decodes to) rather than helpers per field.
    """
    event_id = item.get("id")
    if type(event_id) is not str or not event_id:
        raise MalformedEvent("event without an id")
    start = item.get("start")
    status = item.get("status")
    if status == "cancelled" or type(start) is not dict:
        # a deletion carries only the id (and, for an instance, the series and original start)
        return Deletion(event_id)
    end = item.get("end")
    if type(end) is not dict:
        end = start

    start_date: date | None = None
    end_date: date | None = None
    all_day = "date" in start and "dateTime" not in start
    if all_day:
        start_date = _parse_date(start.get("date"))
        end_date = _parse_date(end.get("date")) if "date" in end else start_date
        if end_date <= start_date:  # Google's end is exclusive: an all-day event lasts a day
            end_date = date.fromordinal(start_date.toordinal() + 1)
        start_at = local_midnight(start_date, user_zone)
        end_at = local_midnight(end_date, user_zone)
    else:
        start_zone = _zone_of(start, default_zone)
        start_at = _parse_instant(start.get("dateTime"), start_zone)
        end_zone = _zone_of(end, start_zone) if end is not start else start_zone
        end_at = _parse_instant(end.get("dateTime", start.get("dateTime")), end_zone)
        if end_at < start_at:
            end_at = start_at

    series, summary = item.get("recurringEventId"), item.get("summary")
    description, location = item.get("description"), item.get("location")
    fields: dict[str, Any] = {
        "google_event_id": event_id,
        "recurring_event_id": series if type(series) is str else None,
        "title": summary if type(summary) is str and summary else None,
        "description": description if type(description) is str else None,
        "location": location if type(location) is str else None,
        "status": status if status in STORED_STATUSES else "confirmed",
        "all_day": all_day,
        "start_at": start_at,
        "end_at": end_at,
        "start_date": start_date,
        "end_date": end_date,
    }
    updated = item.get("updated")
    return NormalizedEvent(
        event_id,
        fields["recurring_event_id"],
        fields["title"],
        fields["description"],
        fields["location"],
        fields["status"],
        all_day,
        start_at,
        end_at,
        start_date,
        end_date,
        _parse_optional_instant(updated) if updated is not None else None,
        content_hash(fields),
    )


def content_hash(fields: Mapping[str, Any]) -> str:
    """A digest of the stored fields, stable across processes and Python versions.

    Google's `updated` stamp is left out: it moves for changes we do not store (attendees,
    reminders), and those are not updates of the event we show.

    The body is compact JSON with sorted keys, dates and instants in ISO 8601 (`+00:00` for UTC)
    and text as UTF-8: byte for byte what `json.dumps(..., separators=(",", ":"),
    ensure_ascii=False, sort_keys=True)` of the ISO strings gives, so stored hashes stay valid.
    """
    return hashlib.sha256(orjson.dumps(fields, option=orjson.OPT_SORT_KEYS)).hexdigest()


def _zone_of(moment: dict[str, Any], fallback: ZoneInfo) -> ZoneInfo:
    name = moment.get("timeZone")
    return zone_or_utc(name) if type(name) is str and name else fallback


def _parse_date(value: Any) -> date:
    if not isinstance(value, str):
        raise MalformedEvent("all-day event without a date")
    try:
        return date.fromisoformat(value)
    except ValueError as exc:
        raise MalformedEvent(f"invalid date {value!r}") from exc


def _parse_instant(value: Any, zone: ZoneInfo) -> datetime:
    """An RFC 3339 timestamp as a UTC instant; a wall time without offset is read in `zone`."""
    if not isinstance(value, str):
        raise MalformedEvent("timed event without a dateTime")
    try:
        parsed = datetime.fromisoformat(value)  # RFC 3339 with `Z` or an offset, as Google sends
    except ValueError:
        try:  # RFC 3339 also allows a lower-case `z`
            parsed = datetime.fromisoformat(value.replace("z", "+00:00"))
        except ValueError as exc:
            raise MalformedEvent(f"invalid dateTime {value!r}") from exc
    if parsed.tzinfo is None:
        # fold=0: an ambiguous wall time (the repeated hour in autumn) is its first occurrence
        parsed = parsed.replace(tzinfo=zone)
    return parsed.astimezone(UTC)


def _parse_optional_instant(value: Any) -> datetime | None:
    try:
        return _parse_instant(value, _UTC_ZONE)
    except MalformedEvent:
        return None
