"""Calendar events written straight into the database, for tests of the read paths."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from sqlalchemy import insert

from ai_workflow_engine.calendar.models import Calendar, CalendarEvent
from ai_workflow_engine.core.db import utcnow


async def seed_events(app: FastAPI, user_id: int, events: list[dict[str, Any]]) -> None:
    """A selected primary calendar for the user, holding `events` (column values; the rest
    take a confirmed timed event's defaults, the Google id its title)."""
    now = utcnow()
    async with app.state.engine.begin() as connection:
        calendar_id = await connection.scalar(
            insert(Calendar)
            .values(
                user_id=user_id,
                google_calendar_id="primary@example.com",
                primary=True,
                selected=True,
                sync_generation=0,
                created_at=now,
                updated_at=now,
            )
            .returning(Calendar.id)
        )
        rows = [
            {
                "user_id": user_id,
                "calendar_id": calendar_id,
                "google_event_id": event["title"],
                "status": "confirmed",
                "all_day": False,
                "start_date": None,
                "end_date": None,
                "content_hash": "0" * 64,
                "sync_generation": 0,
                "created_at": now,
                "updated_at": now,
                **event,
            }
            for event in events
        ]
        await connection.execute(insert(CalendarEvent), rows)
