"""Google Calendar connection, the user's calendars, their synced events, and sync bookkeeping."""

from __future__ import annotations

from datetime import date, datetime, timedelta

from sqlalchemy import (
    Boolean,
    Date,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from ai_workflow_engine.core.db import Base, UTCDateTime, utcnow


class GoogleConnection(Base):
    """A user's grant. Tokens are stored encrypted (core/crypto.py), never in plaintext."""

    __tablename__ = "google_connections"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), unique=True)
    account_email: Mapped[str | None] = mapped_column(String(320))
    access_token_encrypted: Mapped[str | None] = mapped_column(Text)
    refresh_token_encrypted: Mapped[str | None] = mapped_column(Text)
    token_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    scopes: Mapped[str] = mapped_column(Text, default="")
    needs_reconnect: Mapped[bool] = mapped_column(Boolean, default=False)
    last_sync_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_sync_status: Mapped[str | None] = mapped_column(String(16))
    last_error: Mapped[str | None] = mapped_column(String(500))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class OAuthState(Base):
    """A pending consent: single-use `state` (stored hashed), its user and PKCE verifier."""

    __tablename__ = "oauth_states"

    state_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    code_verifier_encrypted: Mapped[str] = mapped_column(Text)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)


class Calendar(Base):
    __tablename__ = "calendars"
    __table_args__ = (
        UniqueConstraint("user_id", "google_calendar_id"),
        # the target of calendar_events' (calendar_id, user_id) key
        UniqueConstraint("id", "user_id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    google_calendar_id: Mapped[str] = mapped_column(String(1024))
    summary: Mapped[str | None] = mapped_column(String(1024))
    time_zone: Mapped[str | None] = mapped_column(String(64))
    primary: Mapped[bool] = mapped_column(Boolean, default=False)
    selected: Mapped[bool] = mapped_column(Boolean, default=False)
    # Google's nextSyncToken of the last complete run; null means the next run is a full sync
    sync_token: Mapped[str | None] = mapped_column(Text)
    # bumped by every full sync; events not seen by the current one are removed at its end
    sync_generation: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class CalendarEvent(Base):
    """One stored event instance (a recurring series is stored as its instances)."""

    __tablename__ = "calendar_events"
    __table_args__ = (
        UniqueConstraint("calendar_id", "google_event_id"),
        # one key for both: the event's calendar, and that calendar's user as the event's user
        # (user_id is kept on the event for the range index). One check per inserted row where
        # two foreign keys would cost two, and a full sync inserts thousands of rows.
        ForeignKeyConstraint(
            ["calendar_id", "user_id"], ["calendars.id", "calendars.user_id"], ondelete="CASCADE"
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(Integer)
    calendar_id: Mapped[int] = mapped_column(Integer)
    google_event_id: Mapped[str] = mapped_column(String(1024))
    recurring_event_id: Mapped[str | None] = mapped_column(String(1024))
    title: Mapped[str | None] = mapped_column(Text)
    description: Mapped[str | None] = mapped_column(Text)
    location: Mapped[str | None] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16))
    all_day: Mapped[bool] = mapped_column(Boolean, default=False)
    start_at: Mapped[datetime] = mapped_column(UTCDateTime)
    end_at: Mapped[datetime] = mapped_column(UTCDateTime)
    start_date: Mapped[date | None] = mapped_column(Date)
    end_date: Mapped[date | None] = mapped_column(Date)
    category_id: Mapped[int | None] = mapped_column(
        ForeignKey("categories.id", ondelete="SET NULL"), index=True
    )
    # digest of the stored fields: a re-delivered event that did not change is not an update
    content_hash: Mapped[str] = mapped_column(String(64))
    sync_generation: Mapped[int] = mapped_column(Integer, default=0)
    google_updated_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


# range queries: events of a user overlapping [start, end), ordered by start
Index(
    "ix_calendar_events_user_start", CalendarEvent.user_id, CalendarEvent.start_at, CalendarEvent.id
)
# Events longer than this are also indexed by end, for the range query's second part (see
# calendar/sync_service.py `_by_start`); the predicate is the migration's, word for word.
LONG_EVENT_SPAN = timedelta(days=1)
Index(
    "ix_calendar_events_user_long_end",
    CalendarEvent.user_id,
    CalendarEvent.end_at,
    postgresql_where=text("end_at - start_at > interval '1 day'"),
    sqlite_where=text("julianday(end_at) - julianday(start_at) > 1"),
)
Index(
    "ix_calendar_events_calendar_generation",
    CalendarEvent.calendar_id,
    CalendarEvent.sync_generation,
)
