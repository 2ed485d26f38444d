"""Bodies of the synced-events routes: an event, the events query, and a sync's result."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, AwareDatetime, BaseModel, BeforeValidator, Field

from ai_workflow_engine.core.errors import InvalidInput

MAX_ID = 2**31 - 1
DEFAULT_RANGE = timedelta(days=7)
MAX_RANGE = timedelta(days=366)


def _as_utc(value: datetime) -> datetime:
    try:
        return value.astimezone(UTC)
    except OverflowError as exc:  # e.g. 9999-12-31T23:00:00-05:00 is past year 9999 in UTC
        raise ValueError("Timestamp out of range") from exc


_RFC3339 = re.compile(
    r"\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?([Zz]|[+-]\d{2}:?\d{2})"
)


def _rfc3339_text(value: Any) -> Any:
    # without this, a bare number would be read as seconds since 1970
    if isinstance(value, str) and not _RFC3339.fullmatch(value):
        raise ValueError("Expected an RFC 3339 timestamp with an offset, e.g. 2026-12-01T09:00:00Z")
    return value


Timestamp = Annotated[AwareDatetime, BeforeValidator(_rfc3339_text), AfterValidator(_as_utc)]


class EventRead(BaseModel):
    """One event instance (a recurring series appears as its instances)."""

    id: int
    calendar_id: int
    google_event_id: str = Field(description="Google's id of this event or instance.")
    recurring_event_id: str | None = Field(description="Google's id of the series, if any.")
    title: str | None = Field(description="Null when the event has no title at Google.")
    description: str | None
    location: str | None
    status: Literal["confirmed", "tentative"]
    all_day: bool
    start: datetime = Field(
        description="An instant; for an all-day event, midnight of start_date in your timezone."
    )
    end: datetime = Field(
        description="An instant; for an all-day event, midnight of end_date in your timezone."
    )
    start_date: date | None = Field(description="All-day events: Google's first day.")
    end_date: date | None = Field(
        description="All-day events: the day after the last (exclusive), as Google gives it."
    )
    category_id: int | None
    updated_at: datetime


class EventListQuery(BaseModel):
    """The range and filters of the events list."""

    start: Timestamp | None = Field(
        default=None,
        description="RFC 3339 with an offset; default now.",
        examples=["2026-12-01T00:00:00Z"],
    )
    end: Timestamp | None = Field(
        default=None,
        description="RFC 3339 with an offset, after `start`, at most 366 days after it; "
        "default `start` + 7 days.",
    )
    calendar_id: int | None = Field(
        default=None, ge=1, le=MAX_ID, description="Only this calendar's events."
    )
    category_id: int | None = Field(
        default=None, ge=1, le=MAX_ID, description="Only events of this category."
    )

    def resolved_range(self, now: datetime) -> tuple[datetime, datetime]:
        """[start, end) with the defaults applied; 422 naming `end` when it is not valid."""
        start = self.start or now
        try:
            end = self.end or start + DEFAULT_RANGE
        except OverflowError as exc:
            raise InvalidInput(["query", "start"], "Timestamp out of range") from exc
        if end <= start:
            raise InvalidInput(["query", "end"], "end must be after start")
        if end - start > MAX_RANGE:
            raise InvalidInput(["query", "end"], "The range may span at most 366 days")
        return start, end


class SyncResult(BaseModel):
    """What one sync run did, counted in stored event instances."""

    status: Literal["ok"] = "ok"
    full_sync: bool = Field(description="At least one calendar was synced in full.")
    calendars: int = Field(description="Selected calendars synced.")
    created: int
    updated: int = Field(description="Events with any field changed, moved instances included.")
    deleted: int = Field(description="Events removed, cancelled instances included.")
    finished_at: datetime
