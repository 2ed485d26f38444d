"""Connecting a Google account, its status, disconnecting, and choosing which calendars to sync.

Google is called before anything is written, so a connection is stored whole (tokens, account and
calendar list) or not at all; only the consumed `state` is kept when Google fails.
"""

from __future__ import annotations

import hashlib
import re
from datetime import timedelta
from typing import Literal

import structlog
from sqlalchemy import delete, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from ai_workflow_engine.calendar.google.calendar_list import (
    delete_calendars,
    fetch_calendar_list,
    store_calendar_list,
)
from ai_workflow_engine.calendar.google.client import GoogleCalendarApi
from ai_workflow_engine.calendar.google.oauth import GoogleOAuth, GrantedTokens
from ai_workflow_engine.calendar.models import Calendar, CalendarEvent, GoogleConnection, OAuthState
from ai_workflow_engine.calendar.schemas import CalendarRead, ConnectionStatus
from ai_workflow_engine.core.crypto import DecryptionFailed, TokenCipher
from ai_workflow_engine.core.db import utcnow
from ai_workflow_engine.core.errors import AppError, BadRequest, InvalidInput
from ai_workflow_engine.core.pagination import CursorCodec, Page

log = structlog.get_logger(__name__)

_CURSOR_SCOPE = "calendars"
_MAX_EMAIL = 320  # google_connections.account_email
_OAUTH_ERROR_CODE = re.compile(r"^[a-z_]{1,64}$")
_START_AGAIN = "start the connection again"


def hash_state(state: str) -> str:
    """How a `state` is stored: a leaked table cannot be replayed against the callback."""
    return hashlib.sha256(state.encode()).hexdigest()


async def start_authorization(
    session: AsyncSession, oauth: GoogleOAuth, cipher: TokenCipher, user_id: int, minutes: int
) -> str:
    """Google's consent URL for this user; its single-use state is stored for `minutes`."""
    request = await oauth.authorization_request()
    now = utcnow()
    await session.execute(delete(OAuthState).where(OAuthState.expires_at <= now))
    session.add(
        OAuthState(
            state_hash=hash_state(request.state),
            user_id=user_id,
            code_verifier_encrypted=cipher.encrypt(request.code_verifier),
            expires_at=now + timedelta(minutes=minutes),
        )
    )
    await session.flush()
    return request.url


async def complete_authorization(
    session: AsyncSession,
    oauth: GoogleOAuth,
    api: GoogleCalendarApi,
    cipher: TokenCipher,
    *,
    state: str | None,
    code: str | None,
    error: str | None,
) -> None:
    """Handle Google's redirect: consume the state, exchange the code, store the connection and
    the calendar list.

    Every failure after the state was found keeps it consumed (the error's keep_changes).
    """
    if not state:
        raise BadRequest(f"The state parameter is missing; {_START_AGAIN}")
    pending = (
        await session.execute(
            delete(OAuthState)
            .where(OAuthState.state_hash == hash_state(state))
            .returning(
                OAuthState.user_id, OAuthState.code_verifier_encrypted, OAuthState.expires_at
            )
        )
    ).one_or_none()
    if pending is None or pending.expires_at <= utcnow():
        raise BadRequest(f"Unknown, used or expired state; {_START_AGAIN}", keep_changes=True)
    structlog.contextvars.bind_contextvars(user_id=pending.user_id)  # the state names the user
    if error:
        raise BadRequest(_describe_oauth_error(error), keep_changes=True)
    if not code:
        raise BadRequest(f"The code parameter is missing; {_START_AGAIN}", keep_changes=True)
    try:
        code_verifier = cipher.decrypt(pending.code_verifier_encrypted)
        granted = await oauth.exchange_code(code, code_verifier)
        if not _grants_calendar(granted.scopes):
            raise BadRequest(
                f"Access to Google Calendar was not granted; {_START_AGAIN} and allow it"
            )

        async def issued_token(_force_refresh: bool) -> str:
            return granted.access_token

        entries = await fetch_calendar_list(api, issued_token)
    except DecryptionFailed:
        raise BadRequest(
            f"This authorization can no longer be completed; {_START_AGAIN}", keep_changes=True
        ) from None
    except AppError as exc:
        exc.keep_changes = True  # the state stays consumed
        raise
    email = oauth.email_from_id_token(granted.id_token) if granted.id_token else None
    if email is None:
        primary = next((entry for entry in entries if entry.primary), None)
        if primary is not None and "@" in primary.google_calendar_id:
            email = primary.google_calendar_id
    if email is not None and len(email) > _MAX_EMAIL:
        email = None
    connection = await _lock_connection(session, pending.user_id)
    same_account = _same_account(connection.account_email, email)
    if not same_account:
        # a first connection, or another Google account: what the previous one synced goes
        await delete_calendars(session, await _calendar_ids(session, pending.user_id))
    _store_grant(connection, granted, email, cipher, same_account=same_account)
    await store_calendar_list(session, pending.user_id, entries)
    await session.flush()
    log.info("google_connected", user_id=pending.user_id, calendars=len(entries))


def _describe_oauth_error(error: str) -> str:
    if error == "access_denied":
        return f"Access to Google Calendar was declined; {_START_AGAIN} to connect"
    code = error if _OAUTH_ERROR_CODE.match(error) else "unknown error"
    return f"Google did not complete the authorization ({code}); {_START_AGAIN}"


def _grants_calendar(scopes: str | None) -> bool:
    """Whether a calendar scope was granted (a user can untick it on the consent screen)."""
    if scopes is None:
        return True  # Google did not say; the calendar list call will tell
    return any("/auth/calendar" in scope for scope in scopes.split())


def _same_account(stored: str | None, new: str | None) -> bool:
    return stored is not None and new is not None and stored.casefold() == new.casefold()


def _store_grant(
    connection: GoogleConnection,
    granted: GrantedTokens,
    email: str | None,
    cipher: TokenCipher,
    *,
    same_account: bool,
) -> None:
    connection.account_email = email
    connection.access_token_encrypted = cipher.encrypt(granted.access_token)
    if granted.refresh_token is not None:
        connection.refresh_token_encrypted = cipher.encrypt(granted.refresh_token)
    elif not same_account:
        connection.refresh_token_encrypted = None
    connection.token_expires_at = granted.expires_at
    connection.scopes = granted.scopes or ""
    connection.needs_reconnect = False
    # a failure recorded before the reconnect is no longer the connection's state
    connection.last_error = None
    if connection.last_sync_status == "failed":
        connection.last_sync_status = None
    if not same_account:
        connection.last_sync_at = None
        connection.last_sync_status = None


async def _lock_connection(session: AsyncSession, user_id: int) -> GoogleConnection:
    """The user's connection row, created if missing, locked for this transaction.

    Insert-if-missing then SELECT FOR UPDATE: two callbacks of one user cannot both create it,
    and the second waits for the first to finish.
    """
    insert = (
        postgresql.insert(GoogleConnection)
        if session.get_bind().dialect.name == "postgresql"
        else sqlite.insert(GoogleConnection)
    )
    await session.execute(insert.values(user_id=user_id).on_conflict_do_nothing())
    connection = await session.scalar(
        select(GoogleConnection)
        .where(GoogleConnection.user_id == user_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    assert connection is not None  # inserted above; only this transaction could delete it
    return connection


async def _calendar_ids(session: AsyncSession, user_id: int) -> list[int]:
    return list(await session.scalars(select(Calendar.id).where(Calendar.user_id == user_id)))


async def get_connection(session: AsyncSession, user_id: int) -> GoogleConnection | None:
    """The user's Google connection, if any."""
    connection: GoogleConnection | None = await session.scalar(
        select(GoogleConnection).where(GoogleConnection.user_id == user_id)
    )
    return connection


async def connection_status(session: AsyncSession, user_id: int) -> ConnectionStatus:
    """What `/calendar/status` shows."""
    connection = await get_connection(session, user_id)
    if connection is None:
        return ConnectionStatus(
            connected=False,
            needs_reconnect=False,
            account_email=None,
            token_expires_at=None,
            last_sync_at=None,
            last_sync_status=None,
            last_error=None,
        )
    sync_status: Literal["ok", "failed"] | None = None
    if connection.last_sync_status == "ok":
        sync_status = "ok"
    elif connection.last_sync_status == "failed":
        sync_status = "failed"
    return ConnectionStatus(
        connected=True,
        needs_reconnect=connection.needs_reconnect,
        account_email=connection.account_email,
        token_expires_at=connection.token_expires_at,
        last_sync_at=connection.last_sync_at,
        last_sync_status=sync_status,
        last_error=connection.last_error,
    )


async def disconnect(
    session: AsyncSession, oauth: GoogleOAuth, cipher: TokenCipher, user_id: int
) -> None:
    """Revoke the grant at Google when possible, then delete tokens, calendars and events.

    Idempotent; a failure to revoke (Google down, grant already gone) does not stop it.
    """
    connection = await get_connection(session, user_id)
    if connection is not None:
        await _revoke_quietly(oauth, cipher, connection)
        await session.execute(delete(GoogleConnection).where(GoogleConnection.id == connection.id))
    await delete_calendars(session, await _calendar_ids(session, user_id))
    await session.execute(delete(OAuthState).where(OAuthState.user_id == user_id))
    await session.flush()


async def _revoke_quietly(
    oauth: GoogleOAuth, cipher: TokenCipher, connection: GoogleConnection
) -> None:
    # revoking the refresh token ends the whole grant; the access token is the fallback
    stored = connection.refresh_token_encrypted or connection.access_token_encrypted
    if stored is None:
        return
    try:
        await oauth.revoke(cipher.decrypt(stored))
    except (AppError, DecryptionFailed) as exc:
        log.warning("google_revoke_failed", user_id=connection.user_id, error=type(exc).__name__)


async def list_calendars(
    session: AsyncSession, codec: CursorCodec, user_id: int, limit: int, cursor: str | None
) -> Page[CalendarRead]:
    """The user's calendars, in the order they were first seen, one page of them."""
    query = select(Calendar).where(Calendar.user_id == user_id)
    if cursor is not None:
        match codec.decode(_CURSOR_SCOPE, cursor):
            case [int() as last_id]:
                query = query.where(Calendar.id > last_id)
            case _:
                raise InvalidInput(["query", "cursor"], "Invalid cursor; use a next_cursor")
    rows = list(await session.scalars(query.order_by(Calendar.id).limit(limit + 1)))
    next_cursor = None
    if len(rows) > limit:
        rows = rows[:limit]
        next_cursor = codec.encode(_CURSOR_SCOPE, [rows[-1].id])
    return Page(items=[CalendarRead.model_validate(row) for row in rows], next_cursor=next_cursor)


async def set_calendar_selected(
    session: AsyncSession, calendar: Calendar, selected: bool
) -> Calendar:
    """Select or deselect a calendar for sync.

    Deselecting removes its stored events and forgets its sync token, so that it disappears from
    every answer and a later reselection starts with a full sync.
    """
    if not selected:
        await session.execute(delete(CalendarEvent).where(CalendarEvent.calendar_id == calendar.id))
        calendar.sync_token = None
    calendar.selected = selected
    await session.flush()
    return calendar


async def reencrypt_tokens(session: AsyncSession, cipher: TokenCipher) -> int:
    """Re-encrypt every stored token and PKCE verifier with the first configured key.

    Returns how many values were re-encrypted. A value no configured key opens is left as it is
    (and logged): its connection will ask the user to reconnect when it is next used.
    """
    count = 0

    def rotate(value: str, what: str) -> str:
        nonlocal count
        try:
            rotated = cipher.rotate(value)
        except DecryptionFailed:
            log.warning("reencrypt_skipped", value=what)
            return value
        count += 1
        return rotated

    for connection in await session.scalars(select(GoogleConnection)):
        if connection.access_token_encrypted is not None:
            connection.access_token_encrypted = rotate(
                connection.access_token_encrypted, f"connection {connection.id} access token"
            )
        if connection.refresh_token_encrypted is not None:
            connection.refresh_token_encrypted = rotate(
                connection.refresh_token_encrypted, f"connection {connection.id} refresh token"
            )
    for pending in await session.scalars(select(OAuthState)):
        pending.code_verifier_encrypted = rotate(
            pending.code_verifier_encrypted, f"oauth state of user {pending.user_id}"
        )
    await session.flush()
    return count
