"""Users, calendars and events as Google stores them: series masters, exceptions (moved or cancelled
instances, stored as their own events) and single events, with a per-calendar change sequence."""

from __future__ import annotations

import base64
import bisect
import datetime as dt
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

from tests.google_standin import rrule
from tests.google_standin.common import UTC, When, zone

CANCELLED = "cancelled"


@dataclass(eq=False, slots=True)
class EventRecord:
    id: str
    ord: int  # position in the calendar's creation order
    seq: int  # change sequence number of the last change
    status: str
    summary: str | None
    description: str | None
    location: str | None
    start: When
    end: When
    created: dt.datetime
    updated: dt.datetime
    ical_uid: str
    creator: str
    sequence: int = 0
    recurrence: tuple[str, ...] | None = None
    recurring_event_id: str | None = None
    original_start: When | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    # series masters only: instance id -> exception record
    exceptions: dict[str, EventRecord] | None = None
    _occurrences: tuple[tuple[int, dt.date, int], list[Occurrence]] | None = None

    @property
    def cancelled(self) -> bool:
        return self.status == CANCELLED

    @property
    def is_master(self) -> bool:
        return self.recurrence is not None

    def search_text(self) -> str:
        parts = [self.summary or "", self.description or "", self.location or ""]
        for attendee in self.extra.get("attendees", ()):
            parts.append(str(attendee.get("email", "")))
            parts.append(str(attendee.get("displayName", "")))
        return " ".join(parts).lower()


@dataclass(frozen=True, slots=True)
class Occurrence:
    """One instance of a series as the recurrence rule places it."""

    id: str
    original: When
    start: When
    end: When
    key: int  # orders instances within the series


def instance_suffix(original: When) -> str:
    if original.date is not None:
        return original.date.strftime("%Y%m%d")
    assert original.instant is not None
    return original.instant.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")


def instance_key(original: When) -> int:
    if original.date is not None:
        return original.date.toordinal() * 86400
    assert original.instant is not None
    return int(original.instant.timestamp()) + 86400 * 719163


class CalendarState:
    def __init__(
        self,
        calendar_id: str,
        summary: str,
        time_zone: str,
        owner: str,
        now: dt.datetime,
        description: str | None = None,
    ) -> None:
        self.id = calendar_id
        self.summary = summary
        self.description = description
        self.time_zone = time_zone
        self.zone: ZoneInfo = zone(time_zone)
        self.owner = owner
        self.created = now
        self.updated = now
        self.events: dict[str, EventRecord] = {}
        self.order: list[EventRecord] = []
        # change log: parallel arrays so that an incremental sync can bisect to its start
        self.log_seqs: list[int] = []
        self.log_records: list[EventRecord] = []
        self.seq = 0
        self.generation = 0  # bumped to invalidate every sync token issued so far
        # sorted results of orderBy queries, keyed by query and change sequence
        self.generated = 0  # events made by generate_events (for their ids)
        self.order_cache: OrderedDict[tuple[Any, ...], Any] = OrderedDict()

    def etag(self) -> str:
        return f'"{int(self.updated.timestamp() * 1000)}{self.seq % 1000:03d}"'

    def insert(self, record: EventRecord, now: dt.datetime) -> None:
        record.ord = len(self.order)
        self.order.append(record)
        self.events[record.id] = record
        self.changed(record, now)

    def changed(self, record: EventRecord, now: dt.datetime) -> None:
        self.seq += 1
        record.seq = self.seq
        # updated never goes backwards, even when a test moves the clock back
        record.updated = max(now, record.updated)
        record._occurrences = None
        self.log_seqs.append(self.seq)
        self.log_records.append(record)
        self.updated = record.updated

    def log_start(self, after_seq: int) -> int:
        return bisect.bisect_right(self.log_seqs, after_seq)

    def occurrences(self, master: EventRecord, until: dt.datetime, limit: int) -> list[Occurrence]:
        """Instances of ``master`` starting no later than the UTC midnight after ``until``, at most
        ``limit``; cached per change of the master and per day of ``until``."""
        assert master.recurrence is not None
        # round the bound up to a UTC midnight so that cached expansions are stable within a day
        until = dt.datetime.combine(until.astimezone(UTC).date(), dt.time(), UTC) + dt.timedelta(
            days=1
        )
        cache_key = (master.seq, until.date(), limit)
        if master._occurrences is not None and master._occurrences[0] == cache_key:
            return master._occurrences[1]
        out: list[Occurrence] = []
        if master.start.date is not None:
            assert master.end.date is not None
            recurrence = rrule.parse_recurrence(master.recurrence, None)
            first = dt.datetime.combine(master.start.date, dt.time())
            length = master.end.date - master.start.date
            bound = until.astimezone(self.zone).replace(tzinfo=None)
            for local in rrule.expand(recurrence, first, zone=None, until=bound, limit=limit):
                original = When(date=local.date())
                out.append(
                    Occurrence(
                        id=f"{master.id}_{instance_suffix(original)}",
                        original=original,
                        start=original,
                        end=When(date=local.date() + length),
                        key=instance_key(original),
                    )
                )
        else:
            assert master.start.instant is not None
            assert master.end.instant is not None
            tz_name = master.start.tz or self.time_zone
            tz = zone(tz_name)
            recurrence = rrule.parse_recurrence(master.recurrence, tz)
            first = master.start.instant.astimezone(tz).replace(tzinfo=None)
            duration = master.end.instant - master.start.instant
            bound = until.astimezone(tz).replace(tzinfo=None)
            for local in rrule.expand(recurrence, first, zone=tz, until=bound, limit=limit):
                instant = local.replace(tzinfo=tz).astimezone(UTC)
                original = When(instant=instant, tz=master.start.tz)
                out.append(
                    Occurrence(
                        id=f"{master.id}_{instance_suffix(original)}",
                        original=original,
                        start=original,
                        end=When(instant=instant + duration, tz=master.end.tz),
                        key=instance_key(original),
                    )
                )
        master._occurrences = (cache_key, out)
        return out


@dataclass
class CalendarListEntry:
    calendar_id: str
    access_role: str
    primary: bool
    seq: int
    deleted: bool = False
    hidden: bool = False
    selected: bool = True
    color_id: str = "14"


class User:
    def __init__(self, email: str, sub: str, time_zone: str, display_name: str | None) -> None:
        self.email = email
        self.sub = sub
        self.time_zone = time_zone
        self.display_name = display_name
        self.entries: list[CalendarListEntry] = []
        self.entry_by_id: dict[str, CalendarListEntry] = {}
        self.list_seq = 0
        self.list_generation = 0

    def put_entry(
        self, calendar_id: str, access_role: str, *, primary: bool = False
    ) -> CalendarListEntry:
        self.list_seq += 1
        entry = self.entry_by_id.get(calendar_id)
        if entry is None:
            entry = CalendarListEntry(calendar_id, access_role, primary, self.list_seq)
            self.entries.append(entry)
            self.entry_by_id[calendar_id] = entry
        else:
            entry.access_role = access_role
            entry.deleted = False
            entry.seq = self.list_seq
        return entry

    def remove_entry(self, calendar_id: str) -> None:
        entry = self.entry_by_id[calendar_id]
        self.list_seq += 1
        entry.deleted = True
        entry.seq = self.list_seq


def html_link(event_id: str, calendar_id: str) -> str:
    eid = base64.urlsafe_b64encode(f"{event_id} {calendar_id}".encode()).decode().rstrip("=")
    return f"https://www.google.com/calendar/event?eid={eid}"


def event_etag(record: EventRecord) -> str:
    return f'"3{int(record.updated.timestamp() * 1000):013d}{record.seq % 1000:03d}"'
