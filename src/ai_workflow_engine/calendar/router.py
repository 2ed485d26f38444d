"""Syncing the selected calendars now, and the synced events."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, Query, Request

from ai_workflow_engine.auth.deps import AUTH_RESPONSES, CurrentUser
from ai_workflow_engine.calendar import sync_service
from ai_workflow_engine.calendar.deps import (
    GoogleCalendarApiDep,
    TokenProviderDep,
)
from ai_workflow_engine.calendar.event_schemas import EventListQuery, EventRead, SyncResult
from ai_workflow_engine.calendar.locks import UserSyncLock
from ai_workflow_engine.calendar.sync_service import SyncClients
from ai_workflow_engine.core.config import Settings
from ai_workflow_engine.core.db import ReadOnly, SessionDep
from ai_workflow_engine.core.errors import Problem
from ai_workflow_engine.core.pagination import (
    DEFAULT_LIMIT,
    CursorCodecDep,
    CursorQuery,
    LimitQuery,
    Page,
)
from ai_workflow_engine.core.routing import PrefixRouter

router = PrefixRouter(prefix="/api/v1/calendar", tags=["calendar"])

Responses = dict[int | str, dict[str, Any]]

SYNC_RESPONSES: Responses = {
    409: {
        "model": Problem,
        "description": "Google Calendar is not connected; the connection must be reconnected "
        "(Google refused the grant); or a sync of yours is already running (Retry-After)",
    },
    502: {
        "model": Problem,
        "description": "Google answered something unusable or refused the request "
        "(Retry-After); stored events are unchanged",
    },
    503: {
        "model": Problem,
        "description": "Google (or a dependency of this server) is unavailable (Retry-After); "
        "stored events are unchanged",
    },
    504: {
        "model": Problem,
        "description": "Google did not answer in time, or the sync ran past its deadline "
        "(Retry-After); stored events are unchanged",
    },
}
VALIDATION: Responses = {
    422: {
        "model": Problem,
        "description": "Invalid input: a timestamp without offset, `end` not after `start`, a "
        "range over 366 days, a bad cursor; `errors` names the field",
    }
}


def sync_clients(
    request: Request, api: GoogleCalendarApiDep, tokens: TokenProviderDep
) -> SyncClients:
    settings: Settings = request.app.state.settings
    lock = UserSyncLock(
        redis=request.app.state.redis,
        key_prefix=settings.redis.redis_key_prefix,
        sync_deadline_seconds=settings.google.google_sync_deadline_seconds,
    )
    return SyncClients(api=api, tokens=tokens, lock=lock, settings=settings.google)


SyncClientsDep = Annotated[SyncClients, Depends(sync_clients)]


@router.post(
    "/sync/auto", response_model=SyncResult, responses={**AUTH_RESPONSES, **SYNC_RESPONSES}
)
async def sync_now(user: CurrentUser, session: SessionDep, clients: SyncClientsDep) -> SyncResult:
    """Sync your selected calendars with Google now: a full sync the first time (or when Google
    asks for one), otherwise only the changes since the last sync."""
    return await sync_service.sync_user(session, clients, user.id)


@router.get(
    "/events",
    response_model=Page[EventRead],
    responses={**AUTH_RESPONSES, **VALIDATION},
    dependencies=[ReadOnly],
)
async def list_events(
    query: Annotated[EventListQuery, Query()],
    user: CurrentUser,
    session: SessionDep,
    codec: CursorCodecDep,
    limit: LimitQuery = DEFAULT_LIMIT,
    cursor: CursorQuery = None,
) -> Page[EventRead]:
    """Your events overlapping [start, end) (default: the next 7 days), ordered by start, from
    selected calendars only. A recurring series appears as its instances."""
    return await sync_service.list_events(session, codec, user.id, query, limit, cursor)
