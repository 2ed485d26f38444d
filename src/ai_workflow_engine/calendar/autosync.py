"""Background auto-sync: which users are due, and one user's run, outside any HTTP request."""

from __future__ import annotations

from datetime import datetime, timedelta

import structlog
from prometheus_client import Counter, Gauge
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from ai_workflow_engine.calendar.google.client import GoogleCalendarApi
from ai_workflow_engine.calendar.google.oauth import GoogleOAuth
from ai_workflow_engine.calendar.google.tokens import TokenProvider
from ai_workflow_engine.calendar.locks import UserSyncLock
from ai_workflow_engine.calendar.models import GoogleConnection
from ai_workflow_engine.calendar.sync_service import SyncClients, sync_user
from ai_workflow_engine.core.db import unit_of_work, utcnow
from ai_workflow_engine.core.errors import AppError
from ai_workflow_engine.core.resources import Resources
from ai_workflow_engine.settings.models import UserSettings
from ai_workflow_engine.settings.schemas import SettingsRead

log = structlog.get_logger(__name__)

AUTO_SYNC_JOBS = Counter(
    "calendar_autosync_jobs_total", "Background calendar auto-sync jobs, by outcome", ["outcome"]
)
NEEDS_RECONNECT = Gauge(
    "calendar_connections_needing_reconnect", "Google connections waiting for the user to reconnect"
)

_DEFAULT_AUTO_SYNC = bool(SettingsRead.model_fields["calendar_auto_sync"].default)
_DEFAULT_INTERVAL = int(SettingsRead.model_fields["calendar_sync_interval_minutes"].default)


def build_sync_clients(resources: Resources) -> SyncClients:
    settings = resources.settings
    oauth = GoogleOAuth(settings.google, resources.google_http)
    return SyncClients(
        api=GoogleCalendarApi(resources.google_http, settings.google),
        tokens=TokenProvider(oauth, resources.token_cipher, settings.google),
        lock=UserSyncLock(
            redis=resources.redis,
            key_prefix=settings.redis.redis_key_prefix,
            sync_deadline_seconds=settings.google.google_sync_deadline_seconds,
        ),
        settings=settings.google,
    )


async def due_user_ids(session: AsyncSession, now: datetime) -> list[int]:
    """Users with auto-sync on, a working connection, and no sync within their interval.

    Connections waiting for a reconnect are left alone: only the user can fix them.
    """
    auto_sync = func.coalesce(UserSettings.calendar_auto_sync, _DEFAULT_AUTO_SYNC)
    interval = func.coalesce(UserSettings.calendar_sync_interval_minutes, _DEFAULT_INTERVAL)
    rows = await session.execute(
        select(GoogleConnection.user_id, GoogleConnection.last_sync_at, interval)
        .outerjoin(UserSettings, UserSettings.user_id == GoogleConnection.user_id)
        .where(GoogleConnection.needs_reconnect.is_(False), auto_sync.is_(True))
        .order_by(GoogleConnection.last_sync_at.asc().nulls_first(), GoogleConnection.user_id)
    )
    return [
        user_id
        for user_id, last_sync_at, minutes in rows
        if last_sync_at is None or last_sync_at + timedelta(minutes=minutes) <= now
    ]


async def count_reconnects_needed(session: AsyncSession) -> int:
    count = await session.scalar(
        select(func.count()).where(GoogleConnection.needs_reconnect.is_(True))
    )
    return int(count or 0)


async def auto_sync_user(resources: Resources, user_id: int) -> str:
    """One user's background sync, in its own transaction. Never raises: returns the outcome.

    Idempotent: a job delivered twice, or for a user synced since it was queued, does nothing.
    """
    try:
        async with unit_of_work(resources.sessionmaker) as session:
            if user_id not in await due_user_ids(session, utcnow()):
                outcome = "not_due"
            else:
                result = await sync_user(session, build_sync_clients(resources), user_id)
                outcome = "ok"
                log.info(
                    "calendar_autosync_done",
                    user_id=user_id,
                    created=result.created,
                    updated=result.updated,
                    deleted=result.deleted,
                )
    except AppError as exc:  # Google down, reconnect needed, another sync running: recorded
        outcome = exc.slug
        log.warning("calendar_autosync_failed", user_id=user_id, problem=exc.slug)
    except Exception:  # one user's failure must not stop the others'
        outcome = "error"
        log.exception("calendar_autosync_error", user_id=user_id)
    AUTO_SYNC_JOBS.labels(outcome=outcome).inc()
    return outcome
