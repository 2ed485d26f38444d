"""Dependencies of the calendar routes: Google clients built on the app's shared pieces, and the
ownership check for a calendar id."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Path, Request
from sqlalchemy import select

from ai_workflow_engine.auth.deps import CurrentUser
from ai_workflow_engine.calendar.google.client import GoogleCalendarApi
from ai_workflow_engine.calendar.google.oauth import GoogleOAuth
from ai_workflow_engine.calendar.google.tokens import TokenProvider
from ai_workflow_engine.calendar.models import Calendar
from ai_workflow_engine.core.config import Settings
from ai_workflow_engine.core.crypto import TokenCipher
from ai_workflow_engine.core.db import SessionDep
from ai_workflow_engine.core.errors import NotFound
from ai_workflow_engine.core.schemas import MAX_ID

CalendarIdPath = Annotated[int, Path(ge=1, le=MAX_ID, description="The calendar's id.")]


def token_cipher(request: Request) -> TokenCipher:
    cipher: TokenCipher = request.app.state.token_cipher
    return cipher


def google_oauth(request: Request) -> GoogleOAuth:
    settings: Settings = request.app.state.settings
    return GoogleOAuth(settings.google, request.app.state.google_http)


def google_calendar_api(request: Request) -> GoogleCalendarApi:
    settings: Settings = request.app.state.settings
    return GoogleCalendarApi(request.app.state.google_http, settings.google)


TokenCipherDep = Annotated[TokenCipher, Depends(token_cipher)]
GoogleOAuthDep = Annotated[GoogleOAuth, Depends(google_oauth)]
GoogleCalendarApiDep = Annotated[GoogleCalendarApi, Depends(google_calendar_api)]


def token_provider(
    request: Request, oauth: GoogleOAuthDep, cipher: TokenCipherDep
) -> TokenProvider:
    settings: Settings = request.app.state.settings
    return TokenProvider(oauth, cipher, settings.google)


TokenProviderDep = Annotated[TokenProvider, Depends(token_provider)]


async def owned_calendar(
    calendar_id: CalendarIdPath, user: CurrentUser, session: SessionDep
) -> Calendar:
    """The current user's calendar with this id; 404 for any other, whoever owns it."""
    calendar = await session.scalar(
        select(Calendar).where(Calendar.id == calendar_id, Calendar.user_id == user.id)
    )
    if calendar is None:
        raise NotFound("No such calendar")
    return calendar


OwnedCalendar = Annotated[Calendar, Depends(owned_calendar)]
