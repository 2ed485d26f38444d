"""Google event resources → stored fields: instants, all-day dates, titles, deletions."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from ai_workflow_engine.calendar.google.normalize import (
    Deletion,
    MalformedEvent,
    NormalizedEvent,
    normalize_event,
)

UTC_ZONE = ZoneInfo("UTC")
NEW_YORK = ZoneInfo("America/New_York")
TOKYO = ZoneInfo("Asia/Tokyo")
BERLIN = ZoneInfo("Europe/Berlin")


def normalize(
    item: dict[str, Any], user_zone: ZoneInfo = UTC_ZONE, default_zone: ZoneInfo = UTC_ZONE
) -> NormalizedEvent:
    result = normalize_event(item, user_zone=user_zone, default_zone=default_zone)
    assert isinstance(result, NormalizedEvent)
    return result


def timed(event_id: str = "e1", **fields: Any) -> dict[str, Any]:
    return {
        "id": event_id,
        "status": "confirmed",
        "summary": "Standup",
        "start": {"dateTime": "2026-12-01T09:00:00+01:00"},
        "end": {"dateTime": "2026-12-01T09:15:00+01:00"},
        "updated": "2026-11-20T10:00:00.000Z",
        **fields,
    }


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)


def test_timed_event_with_offset_becomes_utc_instants() -> None:
    event = normalize(timed())
    assert event.start_at == at("2026-12-01T08:00:00+00:00")
    assert event.end_at == at("2026-12-01T08:15:00+00:00")
    assert event.start_at.tzinfo is UTC
    assert (event.all_day, event.start_date, event.end_date) == (False, None, None)
    assert event.title == "Standup"
    assert event.google_updated_at == at("2026-11-20T10:00:00+00:00")


def test_z_suffix_is_utc() -> None:
    event = normalize(
        timed(start={"dateTime": "2026-12-01T09:00:00Z"}, end={"dateTime": "2026-12-01T10:00:00Z"})
    )
    assert event.start_at == at("2026-12-01T09:00:00+00:00")


@pytest.mark.parametrize(
    ("wall", "expected"),
    [
        # the day before and after the spring change in New York (EST -5 → EDT -4)
        ("2026-03-07T09:00:00", "2026-03-07T14:00:00+00:00"),
        ("2026-03-09T09:00:00", "2026-03-09T13:00:00+00:00"),
        # autumn change (EDT → EST)
        ("2026-10-31T09:00:00", "2026-10-31T13:00:00+00:00"),
        ("2026-11-02T09:00:00", "2026-11-02T14:00:00+00:00"),
    ],
)
def test_wall_time_with_a_time_zone_is_dst_correct(wall: str, expected: str) -> None:
    event = normalize(
        timed(
            start={"dateTime": wall, "timeZone": "America/New_York"},
            end={"dateTime": wall, "timeZone": "America/New_York"},
        )
    )
    assert event.start_at == at(expected)


def test_offset_wins_over_time_zone() -> None:
    # Google sends both: the offset already is the zone's offset for that instant
    event = normalize(
        timed(start={"dateTime": "2026-07-01T09:00:00+02:00", "timeZone": "Europe/Berlin"})
    )
    assert event.start_at == at("2026-07-01T07:00:00+00:00")


def test_wall_time_without_zone_uses_the_calendar_zone() -> None:
    event = normalize(
        timed(start={"dateTime": "2026-07-01T09:00:00"}, end={"dateTime": "2026-07-01T10:00:00"}),
        default_zone=BERLIN,
    )
    assert event.start_at == at("2026-07-01T07:00:00+00:00")
    assert event.end_at == at("2026-07-01T08:00:00+00:00")


def test_end_in_another_zone_than_start() -> None:
    # a flight: leaves Berlin 10:00 local, lands New York 12:30 local
    event = normalize(
        timed(
            start={"dateTime": "2026-07-01T10:00:00", "timeZone": "Europe/Berlin"},
            end={"dateTime": "2026-07-01T12:30:00", "timeZone": "America/New_York"},
        )
    )
    assert event.start_at == at("2026-07-01T08:00:00+00:00")
    assert event.end_at == at("2026-07-01T16:30:00+00:00")


@pytest.mark.parametrize(
    ("zone", "start", "end"),
    [
        (UTC_ZONE, "2026-12-24T00:00:00+00:00", "2026-12-27T00:00:00+00:00"),
        (NEW_YORK, "2026-12-24T05:00:00+00:00", "2026-12-27T05:00:00+00:00"),
        (TOKYO, "2026-12-23T15:00:00+00:00", "2026-12-26T15:00:00+00:00"),
    ],
)
def test_all_day_keeps_dates_and_starts_at_local_midnight(
    zone: ZoneInfo, start: str, end: str
) -> None:
    item = {
        "id": "holiday",
        "status": "confirmed",
        "summary": "Holidays",
        "start": {"date": "2026-12-24"},
        "end": {"date": "2026-12-27"},
    }
    event = normalize(item, user_zone=zone, default_zone=BERLIN)
    assert event.all_day
    assert (event.start_date, event.end_date) == (date(2026, 12, 24), date(2026, 12, 27))
    assert (event.start_at, event.end_at) == (at(start), at(end))


def test_all_day_across_a_dst_change_uses_each_days_offset() -> None:
    item = {"id": "a", "start": {"date": "2026-03-07"}, "end": {"date": "2026-03-09"}}
    event = normalize(item, user_zone=NEW_YORK)
    assert event.start_at == at("2026-03-07T05:00:00+00:00")
    assert event.end_at == at("2026-03-09T04:00:00+00:00")


def test_missing_summary_is_a_null_title_and_unknown_status_is_confirmed() -> None:
    item = timed(status="unexpected")
    del item["summary"]
    event = normalize(item)
    assert event.title is None
    assert event.status == "confirmed"
    assert normalize(timed(status="tentative")).status == "tentative"
    assert normalize(timed(summary="")).title is None


def test_instance_keeps_its_series_id() -> None:
    event = normalize(timed("series_20261201T080000Z", recurringEventId="series"))
    assert event.recurring_event_id == "series"


@pytest.mark.parametrize(
    "item",
    [
        {"id": "gone", "status": "cancelled"},
        {"id": "gone"},
        {
            "id": "series_20261201T080000Z",
            "status": "cancelled",
            "recurringEventId": "series",
            "originalStartTime": {"dateTime": "2026-12-01T09:00:00+01:00"},
        },
        # a cancelled event that still carries its body (full sync with showDeleted)
        {**timed("gone"), "status": "cancelled"},
    ],
)
def test_cancelled_items_are_deletions(item: dict[str, Any]) -> None:
    result = normalize_event(item, user_zone=UTC_ZONE, default_zone=UTC_ZONE)
    assert result == Deletion(item["id"])


@pytest.mark.parametrize(
    "item",
    [
        {"status": "confirmed"},
        timed(start={"dateTime": "not a time"}),
        {"id": "x", "start": {"date": "2026-02-30"}, "end": {"date": "2026-03-01"}},
        {"id": "x", "start": {"timeZone": "UTC"}},
    ],
)
def test_malformed_items_raise_a_specific_error(item: dict[str, Any]) -> None:
    with pytest.raises(MalformedEvent):
        normalize_event(item, user_zone=UTC_ZONE, default_zone=UTC_ZONE)


def test_content_hash_is_deterministic_and_tracks_stored_fields() -> None:
    first, again = normalize(timed()), normalize(timed())
    assert first.content_hash == again.content_hash
    assert len(first.content_hash) == 64
    # Google's `updated` alone (attendees, reminders) is not a change of what we store
    assert normalize(timed(updated="2026-11-21T00:00:00Z")).content_hash == first.content_hash
    moved = timed(
        start={"dateTime": "2026-12-01T10:00:00+01:00"},
        end={"dateTime": "2026-12-01T10:15:00+01:00"},
    )
    for changed in (timed(summary="Other"), timed(location="Room 2"), moved):
        assert normalize(changed).content_hash != first.content_hash
