"""The user's list of calendars, fetched from Google and mirrored into `calendars` rows.

Rows are keyed (user_id, google_calendar_id), so a refresh keeps each calendar's id, selection and
sync token. A calendar first seen is selected when it is the primary one; a calendar Google no
longer lists is removed with its events.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from ai_workflow_engine.calendar.google.client import GoogleCalendarApi, TokenSource
from ai_workflow_engine.calendar.models import Calendar, CalendarEvent

# column sizes in calendar/models.py
_MAX_ID = 1024
_MAX_SUMMARY = 1024
_MAX_ZONE = 64


@dataclass(frozen=True, slots=True)
class CalendarListEntry:
    google_calendar_id: str
    summary: str | None
    time_zone: str | None
    primary: bool


def parse_calendar_list_entry(item: Mapping[str, Any]) -> CalendarListEntry | None:
    """One calendarList item; None for a deleted entry or one without a usable id."""
    calendar_id = item.get("id")
    if not isinstance(calendar_id, str) or not calendar_id or len(calendar_id) > _MAX_ID:
        return None
    if item.get("deleted") is True:
        return None
    summary = item.get("summaryOverride") or item.get("summary")
    time_zone = item.get("timeZone")
    return CalendarListEntry(
        google_calendar_id=calendar_id,
        summary=summary[:_MAX_SUMMARY] if isinstance(summary, str) else None,
        time_zone=time_zone if isinstance(time_zone, str) and len(time_zone) <= _MAX_ZONE else None,
        primary=item.get("primary") is True,
    )


async def fetch_calendar_list(
    api: GoogleCalendarApi, token: TokenSource
) -> list[CalendarListEntry]:
    """Every calendar in the user's calendarList, all pages."""
    entries: dict[str, CalendarListEntry] = {}
    async for page in api.calendar_list_pages(token):
        for item in page:
            entry = parse_calendar_list_entry(item)
            if entry is not None:
                entries[entry.google_calendar_id] = entry
    return list(entries.values())


async def store_calendar_list(
    session: AsyncSession, user_id: int, entries: Sequence[CalendarListEntry]
) -> list[Calendar]:
    """Make the user's `calendars` rows match `entries`; returns the rows, in Google's order."""
    existing = {
        calendar.google_calendar_id: calendar
        for calendar in await session.scalars(select(Calendar).where(Calendar.user_id == user_id))
    }
    stored: list[Calendar] = []
    for entry in entries:
        calendar = existing.pop(entry.google_calendar_id, None)
        if calendar is None:
            calendar = Calendar(
                user_id=user_id,
                google_calendar_id=entry.google_calendar_id,
                selected=entry.primary,
            )
            session.add(calendar)
        calendar.summary = entry.summary
        calendar.time_zone = entry.time_zone
        calendar.primary = entry.primary
        stored.append(calendar)
    if existing:
        await delete_calendars(session, [calendar.id for calendar in existing.values()])
    await session.flush()
    return stored


async def refresh_calendar_list(
    session: AsyncSession, api: GoogleCalendarApi, user_id: int, token: TokenSource
) -> list[Calendar]:
    """Fetch the calendar list from Google and store it (see `store_calendar_list`)."""
    return await store_calendar_list(session, user_id, await fetch_calendar_list(api, token))


async def delete_calendars(session: AsyncSession, calendar_ids: Sequence[int]) -> None:
    """Remove calendars and their stored events."""
    if not calendar_ids:
        return
    await session.execute(delete(CalendarEvent).where(CalendarEvent.calendar_id.in_(calendar_ids)))
    await session.execute(delete(Calendar).where(Calendar.id.in_(calendar_ids)))
