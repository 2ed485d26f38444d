"""Connecting Google Calendar (OAuth consent and callback), the connection's status, disconnecting,
and the user's calendars with their sync selection."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Query, Request, Response, status

from ai_workflow_engine.auth.deps import AUTH_RESPONSES, CurrentUser
from ai_workflow_engine.calendar import service
from ai_workflow_engine.calendar.deps import (
    GoogleCalendarApiDep,
    GoogleOAuthDep,
    OwnedCalendar,
    TokenCipherDep,
)
from ai_workflow_engine.calendar.schemas import (
    AuthorizationUrl,
    CalendarRead,
    CalendarSelection,
    ConnectionResult,
    ConnectionStatus,
)
from ai_workflow_engine.core.config import Settings
from ai_workflow_engine.core.db import SessionDep
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

VALIDATION: Responses = {
    422: {"model": Problem, "description": "Invalid input; `errors` names each field"}
}
NOT_CONFIGURED: Responses = {
    503: {"model": Problem, "description": "Google is not configured on this server"}
}
GOOGLE_FAILED: Responses = {
    502: {"model": Problem, "description": "Google answered something unusable (Retry-After)"},
    503: {
        "model": Problem,
        "description": "Google unavailable or not configured on this server (Retry-After)",
    },
    504: {"model": Problem, "description": "Google did not answer in time (Retry-After)"},
}
NOT_FOUND: Responses = {404: {"model": Problem, "description": "No such calendar (or not yours)"}}

OptionalQuery = Annotated[str | None, Query()]


@router.get(
    "/oauth/authorize",
    response_model=AuthorizationUrl,
    responses={**AUTH_RESPONSES, **NOT_CONFIGURED},
)
async def authorize_google(
    request: Request,
    user: CurrentUser,
    session: SessionDep,
    oauth: GoogleOAuthDep,
    cipher: TokenCipherDep,
) -> AuthorizationUrl:
    """Google's consent URL (PKCE S256, offline access). Its `state` is single-use, bound to you,
    and expires after GOOGLE_OAUTH_STATE_MINUTES."""
    settings: Settings = request.app.state.settings
    url = await service.start_authorization(
        session, oauth, cipher, user.id, settings.google.google_oauth_state_minutes
    )
    return AuthorizationUrl(authorization_url=url)


@router.get(
    "/oauth/callback",
    response_model=ConnectionResult,
    responses={
        400: {
            "model": Problem,
            "description": "Missing, unknown, used or expired state; missing code; access "
            "declined; or a code Google refused",
        },
        **GOOGLE_FAILED,
    },
)
async def complete_google_authorization(
    session: SessionDep,
    oauth: GoogleOAuthDep,
    api: GoogleCalendarApiDep,
    cipher: TokenCipherDep,
    code: OptionalQuery = None,
    state: OptionalQuery = None,
    error: OptionalQuery = None,
) -> ConnectionResult:
    """Google redirects the browser here (no bearer token: the `state` names the user). Stores
    the tokens encrypted and fetches the calendar list, so `/calendar/calendars` answers next."""
    await service.complete_authorization(
        session, oauth, api, cipher, state=state, code=code, error=error
    )
    return ConnectionResult()


@router.get("/status", response_model=ConnectionStatus, responses=AUTH_RESPONSES)
async def read_connection_status(user: CurrentUser, session: SessionDep) -> ConnectionStatus:
    """Whether Google is connected, whether it must be reconnected, and how the last sync went."""
    return await service.connection_status(session, user.id)


@router.delete(
    "/connection",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    responses=AUTH_RESPONSES,
)
async def disconnect_google(
    user: CurrentUser, session: SessionDep, oauth: GoogleOAuthDep, cipher: TokenCipherDep
) -> Response:
    """Revoke the grant at Google (when it answers) and delete the tokens and everything synced.
    Also 204 when not connected."""
    await service.disconnect(session, oauth, cipher, user.id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get(
    "/calendars", response_model=Page[CalendarRead], responses={**AUTH_RESPONSES, **VALIDATION}
)
async def list_calendars(
    user: CurrentUser,
    session: SessionDep,
    codec: CursorCodecDep,
    limit: LimitQuery = DEFAULT_LIMIT,
    cursor: CursorQuery = None,
) -> Page[CalendarRead]:
    """Your Google calendars. The primary one starts selected, the others not."""
    return await service.list_calendars(session, codec, user.id, limit, cursor)


@router.patch(
    "/calendars/{calendar_id}",
    response_model=CalendarRead,
    responses={**AUTH_RESPONSES, **NOT_FOUND, **VALIDATION},
)
async def select_calendar(
    data: CalendarSelection, calendar: OwnedCalendar, session: SessionDep
) -> CalendarRead:
    """Select a calendar for sync, or deselect it (which removes its stored events)."""
    updated = await service.set_calendar_selected(session, calendar, data.selected)
    return CalendarRead.model_validate(updated)
