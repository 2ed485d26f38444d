"""``GoogleStandin``: the whole simulated Google state plus the Python control API tests use.

Every method is thread-safe (the server runs in another thread) and every data change advances
the calendar's change sequence, so an incremental sync sees it.
"""

from __future__ import annotations

import datetime as dt
import random
import secrets
import threading
from collections.abc import Sequence
from typing import Any

from tests.google_standin import rrule
from tests.google_standin.common import (
    UTC,
    Clock,
    StandinConfig,
    TimeInput,
    TokenCodec,
    When,
    random_event_id,
    to_when,
    valid_event_id,
    zone,
)
from tests.google_standin.faults import FaultPlan, RecordedRequest, RequestLog
from tests.google_standin.listing import render_event
from tests.google_standin.oauth import (
    DEFAULT_SCOPES,
    ConsentPlan,
    OAuthClient,
    OAuthServer,
)
from tests.google_standin.store import (
    CANCELLED,
    CalendarState,
    EventRecord,
    Occurrence,
    User,
    instance_suffix,
)

DEFAULT_CLIENT_ID = "standin-client.apps.googleusercontent.com"
DEFAULT_CLIENT_SECRET = "standin-client-secret"
DEFAULT_EMAIL = "user@example.com"
_STATUSES = ("confirmed", "tentative", "cancelled")


class _Unset:
    def __repr__(self) -> str:
        return "UNSET"


UNSET: Any = _Unset()


class GoogleStandin:
    def __init__(self, config: StandinConfig | None = None, *, seed: bool = True) -> None:
        self.config = config or StandinConfig()
        self.clock = Clock()
        self.lock = threading.RLock()
        self.users: dict[str, User] = {}
        self.calendars: dict[str, CalendarState] = {}
        self.oauth = OAuthServer(self.config, self.clock, self.users)
        self.faults = FaultPlan()
        self.log = RequestLog()
        self.codec = TokenCodec()
        self._subs = 100000000000000000000
        if seed:
            self.add_client(DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET)
            self.add_user(DEFAULT_EMAIL)

    # -- accounts and OAuth --------------------------------------------------------------------

    def add_client(
        self,
        client_id: str | None = None,
        client_secret: str | None = None,
        redirect_uris: Sequence[str] = (),
    ) -> OAuthClient:
        """Register an OAuth client. No ``redirect_uris``: any http(s) URI is accepted."""
        with self.lock:
            client = OAuthClient(
                client_id or f"{secrets.randbelow(10**12)}-standin.apps.googleusercontent.com",
                client_secret or "GOCSPX-" + secrets.token_urlsafe(21),
                tuple(redirect_uris),
            )
            self.oauth.clients[client.client_id] = client
            return client

    def add_user(
        self,
        email: str,
        *,
        time_zone: str = "UTC",
        display_name: str | None = None,
    ) -> User:
        """A Google account with its primary calendar (id = the email)."""
        with self.lock:
            if email in self.users:
                raise ValueError(f"user {email} exists")
            zone(time_zone)
            self._subs += 1
            user = User(email, str(self._subs), time_zone, display_name)
            self.users[email] = user
            if self.oauth.default_email is None:
                self.oauth.default_email = email
            cal = CalendarState(email, email, time_zone, email, self.clock.now())
            self.calendars[email] = cal
            user.put_entry(email, "owner", primary=True)
            return user

    def set_default_user(self, email: str) -> None:
        """The account that answers the consent screen when nothing else says otherwise."""
        with self.lock:
            self._user(email)
            self.oauth.default_email = email

    def queue_consent(
        self,
        *,
        email: str | None = None,
        deny: bool = False,
        error: str = "access_denied",
        granted_scopes: Sequence[str] | None = None,
    ) -> None:
        """How the next consent screen is answered (one use; later ones use the default)."""
        with self.lock:
            self.oauth.consent_plans.append(
                ConsentPlan(email, deny, error, list(granted_scopes) if granted_scopes else None)
            )

    def set_default_consent(
        self,
        *,
        email: str | None = None,
        deny: bool = False,
        error: str = "access_denied",
        granted_scopes: Sequence[str] | None = None,
    ) -> None:
        with self.lock:
            self.oauth.default_consent = ConsentPlan(
                email, deny, error, list(granted_scopes) if granted_scopes else None
            )

    @property
    def consent_requests(self) -> list[dict[str, str]]:
        """The query parameters of every consent-screen request, in order."""
        with self.lock:
            return [dict(r) for r in self.oauth.consent_requests]

    def mint_tokens(
        self,
        email: str | None = None,
        *,
        client_id: str = DEFAULT_CLIENT_ID,
        scopes: Sequence[str] = DEFAULT_SCOPES,
    ) -> dict[str, Any]:
        """The token response of a completed offline consent, without the browser step."""
        with self.lock:
            return dict(self.oauth.mint(client_id, email or self._default_email(), list(scopes)))

    def expire_access_tokens(self, email: str | None = None) -> int:
        """Expire every live access token (of ``email``) now; returns how many."""
        with self.lock:
            now = self.clock.now()
            count = 0
            for token in self.oauth.access_tokens.values():
                if (email is None or token.email == email) and token.expires_at > now:
                    token.expires_at = now
                    count += 1
            return count

    def expire_refresh_tokens(self, email: str | None = None) -> int:
        """Expire refresh tokens (as Google does after 7 days for apps in testing mode)."""
        with self.lock:
            now = self.clock.now()
            count = 0
            for token in self.oauth.refresh_tokens.values():
                grant = self.oauth.grants[token.grant_id]
                if email is None or grant.email == email:
                    token.expires_at = now
                    count += 1
            return count

    def revoke_grant(self, email: str, client_id: str | None = None) -> int:
        """The user removes the app's access: every token of the grant stops working."""
        with self.lock:
            count = 0
            for grant in list(self.oauth.grants.values()):
                if (
                    grant.email == email
                    and not grant.revoked
                    and (client_id is None or grant.client_id == client_id)
                ):
                    self.oauth.revoke_grant(grant)
                    count += 1
            return count

    # -- calendars -----------------------------------------------------------------------------

    def add_calendar(
        self,
        email: str,
        summary: str,
        *,
        time_zone: str | None = None,
        calendar_id: str | None = None,
        description: str | None = None,
    ) -> str:
        """A secondary calendar owned by ``email``; returns its id."""
        with self.lock:
            user = self._user(email)
            cal_id = calendar_id or f"c_{secrets.token_hex(16)}@group.calendar.google.com"
            if cal_id in self.calendars:
                raise ValueError(f"calendar {cal_id} exists")
            cal = CalendarState(
                cal_id, summary, time_zone or user.time_zone, email, self.clock.now(), description
            )
            self.calendars[cal_id] = cal
            user.put_entry(cal_id, "owner")
            return cal_id

    def share_calendar(self, calendar_id: str, email: str, access_role: str = "reader") -> None:
        """Put the calendar into another user's calendar list with ``access_role``."""
        if access_role not in ("freeBusyReader", "reader", "writer", "owner"):
            raise ValueError(f"invalid access role {access_role!r}")
        with self.lock:
            self._calendar(calendar_id)
            self._user(email).put_entry(calendar_id, access_role)

    def remove_from_calendar_list(self, email: str, calendar_id: str) -> None:
        with self.lock:
            self._user(email).remove_entry(self._calendar(calendar_id).id)

    def set_calendar_hidden(self, email: str, calendar_id: str, hidden: bool = True) -> None:
        with self.lock:
            user = self._user(email)
            entry = user.entry_by_id[self._calendar(calendar_id).id]
            user.list_seq += 1
            entry.hidden = hidden
            entry.selected = not hidden
            entry.seq = user.list_seq

    def primary_calendar_id(self, email: str | None = None) -> str:
        return email or self._default_email()

    def invalidate_sync_tokens(self, calendar_id: str) -> None:
        """Every sync token of the calendar issued so far answers 410 fullSyncRequired."""
        with self.lock:
            self._calendar(calendar_id).generation += 1

    def invalidate_calendar_list_sync_tokens(self, email: str) -> None:
        with self.lock:
            self._user(email).list_generation += 1

    def change_sequence(self, calendar_id: str) -> int:
        with self.lock:
            return self._calendar(calendar_id).seq

    # -- events --------------------------------------------------------------------------------

    def add_event(
        self,
        calendar_id: str,
        start: TimeInput,
        end: TimeInput,
        *,
        summary: str | None = None,
        time_zone: str | None = None,
        description: str | None = None,
        location: str | None = None,
        status: str = "confirmed",
        event_id: str | None = None,
        recurrence: Sequence[str] | None = None,
        extra: dict[str, Any] | None = None,
    ) -> str:
        """A single event (or, with ``recurrence``, a series). ``start``/``end``: aware datetimes
        (or naive ones in ``time_zone``, else the calendar's zone) for timed events, dates for
        all-day events (``end`` exclusive), RFC 3339 strings or Google's start/end objects.
        Returns the event id."""
        with self.lock:
            cal = self._calendar(calendar_id)
            if status not in ("confirmed", "tentative"):
                raise ValueError(f"invalid status {status!r}")
            event_id = event_id or random_event_id()
            if not valid_event_id(event_id):
                raise ValueError(f"invalid event id {event_id!r} (base32hex, 5-1024 characters)")
            if event_id in cal.events:
                raise ValueError(f"event {event_id} exists")
            first, last = self._times(cal, start, end, time_zone, recurrence is not None)
            recurrence_lines = self._recurrence(first, recurrence)
            now = self.clock.now()
            record = EventRecord(
                id=event_id,
                ord=0,
                seq=0,
                status=status,
                summary=summary,
                description=description,
                location=location,
                start=first,
                end=last,
                created=now,
                updated=now,
                ical_uid=f"{event_id}@google.com",
                creator=cal.owner,
                recurrence=recurrence_lines,
                extra=dict(extra or {}),
                exceptions={} if recurrence_lines is not None else None,
            )
            cal.insert(record, now)
            return event_id

    def add_recurring_event(
        self,
        calendar_id: str,
        start: TimeInput,
        end: TimeInput,
        rule: str | Sequence[str],
        *,
        summary: str | None = None,
        time_zone: str | None = None,
        description: str | None = None,
        location: str | None = None,
        event_id: str | None = None,
        extra: dict[str, Any] | None = None,
    ) -> str:
        """A series. ``rule``: ``"RRULE:FREQ=WEEKLY;BYDAY=MO"`` (the ``RRULE:`` prefix is optional)
        or a list of RRULE/EXDATE/RDATE lines. Timed series expand in ``time_zone`` (default: the
        calendar's)."""
        lines = [rule] if isinstance(rule, str) else list(rule)
        lines = [line if ":" in line else f"RRULE:{line}" for line in lines]
        return self.add_event(
            calendar_id,
            start,
            end,
            summary=summary,
            time_zone=time_zone,
            description=description,
            location=location,
            event_id=event_id,
            recurrence=lines,
            extra=extra,
        )

    def update_event(
        self,
        calendar_id: str,
        event_id: str,
        *,
        summary: str | None = UNSET,
        description: str | None = UNSET,
        location: str | None = UNSET,
        start: TimeInput = UNSET,
        end: TimeInput = UNSET,
        time_zone: str | None = UNSET,
        status: str = UNSET,
        recurrence: Sequence[str] | None = UNSET,
        extra: dict[str, Any] = UNSET,
    ) -> None:
        """Change fields of an event, a series master or one instance (an instance id
        ``<series>_<suffix>`` becomes an exception of its series)."""
        with self.lock:
            cal = self._calendar(calendar_id)
            record, pending = self._record_or_instance(cal, event_id)
            if status is not UNSET and status not in _STATUSES:
                raise ValueError(f"invalid status {status!r}")
            if record.recurring_event_id is not None and recurrence not in (UNSET, None):
                raise ValueError("an instance cannot have a recurrence")
            if summary is not UNSET:
                record.summary = summary
            if description is not UNSET:
                record.description = description
            if location is not UNSET:
                record.location = location
            if extra is not UNSET:
                record.extra = dict(extra)
            tz_name = record.start.tz if time_zone is UNSET else time_zone
            if start is not UNSET or end is not UNSET or time_zone is not UNSET:
                new_start = record.start if start is UNSET else start
                new_end = record.end if end is UNSET else end
                record.start, record.end = self._times(
                    cal,
                    _as_input(new_start, tz_name),
                    _as_input(new_end, tz_name),
                    tz_name,
                    record.recurrence is not None,
                )
                record.sequence += 1
            if recurrence is not UNSET:
                if recurrence is None and record.exceptions:
                    raise ValueError("remove the exceptions before turning a series into one event")
                record.recurrence = self._recurrence(record.start, recurrence)
                record.exceptions = {} if record.recurrence is not None else None
                record.sequence += 1
            if status is not UNSET:
                if status == CANCELLED:
                    self._cancel(cal, record, pending)
                    return
                record.status = status
            self._commit(cal, record, pending)

    def delete_event(self, calendar_id: str, event_id: str) -> None:
        """Delete an event; a series master takes its exceptions with it; an instance id cancels
        that one instance."""
        with self.lock:
            cal = self._calendar(calendar_id)
            record, pending = self._record_or_instance(cal, event_id)
            if record.cancelled and not pending:
                raise ValueError(f"event {event_id} is already deleted")
            self._cancel(cal, record, pending)

    def move_instance(
        self,
        calendar_id: str,
        series_id: str,
        original_start: TimeInput,
        start: TimeInput,
        end: TimeInput,
        *,
        summary: str | None = UNSET,
        time_zone: str | None = UNSET,
    ) -> str:
        """Move one instance of a series (``original_start``: where the rule puts it). The
        instance keeps its id and originalStartTime. Returns the instance id."""
        instance = self.instance_id(calendar_id, series_id, original_start)
        self.update_event(
            calendar_id, instance, start=start, end=end, summary=summary, time_zone=time_zone
        )
        return instance

    def cancel_instance(self, calendar_id: str, series_id: str, original_start: TimeInput) -> str:
        """Cancel one instance of a series; returns the instance id."""
        instance = self.instance_id(calendar_id, series_id, original_start)
        self.delete_event(calendar_id, instance)
        return instance

    def instance_id(self, calendar_id: str, series_id: str, original_start: TimeInput) -> str:
        """``<seriesId>_<YYYYMMDDTHHMMSSZ>`` (timed) or ``<seriesId>_<YYYYMMDD>`` (all-day)."""
        with self.lock:
            cal = self._calendar(calendar_id)
            master = self._master(cal, series_id)
            when = to_when(original_start, master.start.tz, cal.time_zone)
            if master.start.all_day != when.all_day:
                raise ValueError("original_start must be a date for all-day series and vice versa")
            return f"{master.id}_{instance_suffix(when)}"

    def touch_event(self, calendar_id: str, event_id: str) -> None:
        """Bump ``updated`` (and the change sequence) without changing content."""
        with self.lock:
            cal = self._calendar(calendar_id)
            record, pending = self._record_or_instance(cal, event_id)
            self._commit(cal, record, pending)

    def generate_events(
        self,
        calendar_id: str,
        count: int,
        *,
        start: dt.datetime | None = None,
        spacing: dt.timedelta | None = None,
        duration: dt.timedelta = dt.timedelta(minutes=30),
        summary_prefix: str = "Event",
        all_day_every: int = 0,
        id_prefix: str = "gen",
    ) -> list[str]:
        """``count`` simple events, cheaply (100,000 take well under a second or two). By default
        they are spread evenly over a year starting 30 days ago; every ``all_day_every``-th event
        is all-day. Returns their ids in creation order."""
        with self.lock:
            cal = self._calendar(calendar_id)
            now = self.clock.now()
            if start is None:
                start = (now - dt.timedelta(days=30)).replace(minute=0, second=0, microsecond=0)
            elif start.tzinfo is None:
                start = start.replace(tzinfo=cal.zone)
            start = start.astimezone(UTC)
            if spacing is None:
                minutes = max(1, int(365 * 24 * 60 / max(count, 1)))
                spacing = dt.timedelta(minutes=minutes)
            base = cal.generated
            ids: list[str] = []
            for n in range(count):
                event_id = f"{id_prefix}{base + n:08d}"
                if event_id in cal.events:
                    raise ValueError(f"event {event_id} exists")
                begin = start + spacing * n
                if all_day_every and n % all_day_every == 0:
                    day = begin.astimezone(cal.zone).date()
                    first, last = When(date=day), When(date=day + dt.timedelta(days=1))
                else:
                    first, last = When(instant=begin), When(instant=begin + duration)
                record = EventRecord(
                    id=event_id,
                    ord=0,
                    seq=0,
                    status="confirmed",
                    summary=f"{summary_prefix} {base + n}",
                    description=None,
                    location=None,
                    start=first,
                    end=last,
                    created=now,
                    updated=now,
                    ical_uid=f"{event_id}@google.com",
                    creator=cal.owner,
                )
                cal.insert(record, now)
                ids.append(event_id)
            cal.generated += count
            return ids

    def churn_events(
        self,
        calendar_id: str,
        *,
        updates: int = 10,
        deletes: int = 0,
        adds: int = 0,
        seed: int | None = None,
    ) -> dict[str, list[str]]:
        """Change random live single events (summary edited), delete some, add some near now."""
        with self.lock:
            cal = self._calendar(calendar_id)
            rng = random.Random(seed)
            chosen: set[str] = set()
            live = (
                [
                    r
                    for r in cal.order
                    if not r.cancelled and r.recurrence is None and r.recurring_event_id is None
                ]
                if len(cal.order) < 1000
                else None
            )
            wanted = updates + deletes
            attempts = 0
            while len(chosen) < wanted and attempts < 100 * (wanted + 1):
                attempts += 1
                pool = live if live is not None else cal.order
                if not pool:
                    break
                candidate = rng.choice(pool)
                if (
                    candidate.cancelled
                    or candidate.recurrence is not None
                    or candidate.recurring_event_id is not None
                ):
                    continue
                chosen.add(candidate.id)
            picked = sorted(chosen)
            rng.shuffle(picked)
            updated_ids, deleted_ids = picked[:updates], picked[updates:]
            now = self.clock.now()
            for event_id in updated_ids:
                record = cal.events[event_id]
                record.summary = f"{record.summary or ''} (edited)"
                cal.changed(record, now)
            for event_id in deleted_ids:
                self._cancel(cal, cal.events[event_id], False)
            added = (
                self.generate_events(
                    calendar_id,
                    adds,
                    start=now.replace(microsecond=0) + dt.timedelta(hours=1),
                    id_prefix="new",
                )
                if adds
                else []
            )
            return {"updated": updated_ids, "deleted": deleted_ids, "added": added}

    def event_resource(
        self, calendar_id: str, event_id: str, *, time_zone: str | None = None
    ) -> dict[str, Any]:
        """The event as events.list would render it (singleEvents=false for masters)."""
        with self.lock:
            cal = self._calendar(calendar_id)
            tz = zone(time_zone or cal.time_zone)
            if event_id in cal.events:
                return render_event(cal, cal.events[event_id], None, tz, cal.owner)
            master, occ = self._find_occurrence(cal, event_id)
            return render_event(cal, master, occ, tz, cal.owner)

    def events(self, calendar_id: str) -> list[EventRecord]:
        """The stored records (single events, masters, exceptions) in creation order."""
        with self.lock:
            return list(self._calendar(calendar_id).order)

    # -- observation -----------------------------------------------------------------------------

    def requests(self, endpoint: str | None = None) -> list[RecordedRequest]:
        """Every request served (endpoint: auth, token, revoke, calendarList, events)."""
        return self.log.all(endpoint)

    def clear_requests(self) -> None:
        self.log.clear()

    # -- internals -------------------------------------------------------------------------------

    def _default_email(self) -> str:
        if self.oauth.default_email is None:
            raise ValueError("no user: call add_user first")
        return self.oauth.default_email

    def _user(self, email: str) -> User:
        try:
            return self.users[email]
        except KeyError:
            raise KeyError(f"unknown user {email!r}") from None

    def _calendar(self, calendar_id: str) -> CalendarState:
        if calendar_id == "primary":
            calendar_id = self._default_email()
        try:
            return self.calendars[calendar_id]
        except KeyError:
            raise KeyError(f"unknown calendar {calendar_id!r}") from None

    def _master(self, cal: CalendarState, series_id: str) -> EventRecord:
        master = cal.events.get(series_id)
        if master is None or master.recurrence is None or master.exceptions is None:
            raise KeyError(f"no recurring event {series_id!r} in {cal.id}")
        return master

    def _times(
        self,
        cal: CalendarState,
        start: TimeInput,
        end: TimeInput,
        time_zone: str | None,
        recurring: bool,
    ) -> tuple[When, When]:
        first = to_when(start, time_zone, cal.time_zone)
        last = to_when(end, time_zone, cal.time_zone)
        if recurring and not first.all_day and first.tz is None:
            # Google requires a time zone on recurring events; default to the calendar's
            first = When(instant=first.instant, tz=cal.time_zone)
            last = When(instant=last.instant, tz=last.tz or cal.time_zone)
        if first.all_day != last.all_day:
            raise ValueError("start and end must both be dates or both be date-times")
        if first.as_instant(cal.zone) >= last.as_instant(cal.zone):
            raise ValueError("the end must be after the start (all-day end dates are exclusive)")
        return first, last

    def _recurrence(self, start: When, recurrence: Sequence[str] | None) -> tuple[str, ...] | None:
        if recurrence is None:
            return None
        lines = tuple(recurrence)
        rrule.parse_recurrence(lines, None if start.all_day else zone(start.tz or "UTC"))
        return lines

    def _find_occurrence(self, cal: CalendarState, instance: str) -> tuple[EventRecord, Occurrence]:
        series_id, sep, suffix = instance.rpartition("_")
        if not sep:
            raise KeyError(f"no event {instance!r} in {cal.id}")
        master = self._master(cal, series_id)
        if len(suffix) == 8:
            when = When(date=dt.datetime.strptime(suffix, "%Y%m%d").date())
            bound = dt.datetime.combine(when.date or dt.date.min, dt.time(), UTC)
        else:
            instant = dt.datetime.strptime(suffix, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
            bound = instant
        for occ in cal.occurrences(
            master, bound + dt.timedelta(days=2), self.config.max_instances_per_series * 10
        ):
            if occ.id == instance:
                return master, occ
        raise KeyError(f"{instance!r} is not an instance of {series_id!r}")

    def _record_or_instance(self, cal: CalendarState, event_id: str) -> tuple[EventRecord, bool]:
        """The stored record, or a new (not yet stored) exception for an instance id."""
        record = cal.events.get(event_id)
        if record is not None:
            return record, False
        master, occ = self._find_occurrence(cal, event_id)
        assert master.exceptions is not None
        now = self.clock.now()
        exception = EventRecord(
            id=occ.id,
            ord=0,
            seq=0,
            status=master.status,
            summary=master.summary,
            description=master.description,
            location=master.location,
            start=occ.start,
            end=occ.end,
            created=master.created,
            updated=now,
            ical_uid=master.ical_uid,
            creator=master.creator,
            sequence=master.sequence,
            recurring_event_id=master.id,
            original_start=occ.original,
            extra=dict(master.extra),
        )
        return exception, True

    def _commit(self, cal: CalendarState, record: EventRecord, pending: bool) -> None:
        now = self.clock.now()
        if pending:
            assert record.recurring_event_id is not None
            master = cal.events[record.recurring_event_id]
            assert master.exceptions is not None
            master.exceptions[record.id] = record
            cal.insert(record, now)
        else:
            cal.changed(record, now)

    def _cancel(self, cal: CalendarState, record: EventRecord, pending: bool) -> None:
        record.status = CANCELLED
        self._commit(cal, record, pending)
        now = self.clock.now()
        for exception in (record.exceptions or {}).values():
            if not exception.cancelled:
                exception.status = CANCELLED
                cal.changed(exception, now)


def _as_input(value: TimeInput | When, tz_name: str | None) -> TimeInput:
    """Turn a stored boundary back into an input (for partial start/end updates)."""
    if not isinstance(value, When):
        return value
    if value.date is not None:
        return value.date
    assert value.instant is not None
    return value.instant.astimezone(zone(tz_name)) if tz_name else value.instant
