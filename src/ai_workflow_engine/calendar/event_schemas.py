"""Bodies of the synced-events routes: an event, the events query, and a sync's result."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Literal

from pydantic import BaseModel, Field

from ai_workflow_engine.core.errors import InvalidInput
from ai_workflow_engine.core.schemas import MAX_ID, Timestamp

DEFAULT_RANGE = timedelta(days=7)
MAX_RANGE = timedelta(days=366)


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
