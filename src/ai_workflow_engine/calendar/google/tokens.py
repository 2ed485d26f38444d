"""Access tokens for a user's Google connection: decrypted on use, refreshed before they expire.

Refreshing is serialised per connection by re-reading its row `FOR UPDATE` (on SQLite the
write transaction, which begins IMMEDIATE, serialises it): of two concurrent callers the first
refreshes and the second finds the new token and uses it, so a refresh token Google rotates is
never overwritten by a stale one.
"""

from __future__ import annotations

from datetime import timedelta

from prometheus_client import Counter
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from ai_workflow_engine.calendar.errors import (
    GoogleTimeout,
    GoogleUnavailable,
    NotConnected,
    ReconnectRequired,
)
from ai_workflow_engine.calendar.google.client import TokenSource
from ai_workflow_engine.calendar.google.oauth import GoogleOAuth
from ai_workflow_engine.calendar.models import GoogleConnection
from ai_workflow_engine.core.config import GoogleSettings
from ai_workflow_engine.core.crypto import DecryptionFailed, TokenCipher
from ai_workflow_engine.core.db import utcnow
from ai_workflow_engine.core.errors import AppError

REFRESH_FAILURES = Counter(
    "google_oauth_refresh_failures_total",
    "Google access-token refreshes that failed, by reason",
    ["reason"],
)

RECONNECT_ERROR = "Google refused the stored grant (invalid_grant); reconnect Google Calendar"
UNDECRYPTABLE_ERROR = "The stored Google tokens cannot be decrypted; reconnect Google Calendar"
NO_REFRESH_TOKEN_ERROR = "No refresh token is stored; reconnect Google Calendar"  # noqa: S105


class TokenProvider:
    """Hands out a valid access token for a connection, refreshing it when needed."""

    def __init__(self, oauth: GoogleOAuth, cipher: TokenCipher, settings: GoogleSettings) -> None:
        self._oauth = oauth
        self._cipher = cipher
        self._margin = timedelta(seconds=settings.google_token_refresh_margin_seconds)

    async def access_token(
        self, session: AsyncSession, connection: GoogleConnection, *, force_refresh: bool = False
    ) -> str:
        """A bearer token for `connection`.

        Refreshes when the stored one expires within the configured margin, or when
        `force_refresh` (Google answered 401) and nobody refreshed since the caller read it.
        A refused grant sets `needs_reconnect` (flushed) and raises `ReconnectRequired`, whose
        keep_changes makes the request commit it; Google being down raises `GoogleUnavailable` or
        `GoogleTimeout`. Changes are flushed, never committed.
        """
        if connection.needs_reconnect:
            raise ReconnectRequired()
        if not force_refresh and not self._expiring(connection):
            return await self._decrypt_access(session, connection)
        seen = connection.access_token_encrypted
        locked = await session.scalar(
            select(GoogleConnection)
            .where(GoogleConnection.id == connection.id)
            .with_for_update()
            .execution_options(populate_existing=True)
        )
        if locked is None:
            raise NotConnected()
        if locked.needs_reconnect:
            raise ReconnectRequired()
        refreshed_meanwhile = locked.access_token_encrypted != seen
        if (refreshed_meanwhile or not force_refresh) and not self._expiring(locked):
            return await self._decrypt_access(session, locked)
        return await self._refresh(session, locked)

    def token_source(self, session: AsyncSession, connection: GoogleConnection) -> TokenSource:
        """`access_token` for this connection in the shape `GoogleCalendarApi.get_json` takes."""

        async def token(force_refresh: bool) -> str:
            return await self.access_token(session, connection, force_refresh=force_refresh)

        return token

    def _expiring(self, connection: GoogleConnection) -> bool:
        if connection.access_token_encrypted is None:
            return True
        expires_at = connection.token_expires_at
        return expires_at is not None and expires_at - self._margin <= utcnow()

    async def _decrypt_access(self, session: AsyncSession, connection: GoogleConnection) -> str:
        assert connection.access_token_encrypted is not None  # _expiring() said so
        try:
            return self._cipher.decrypt(connection.access_token_encrypted)
        except DecryptionFailed:
            raise await self._reconnect_required(
                session, connection, UNDECRYPTABLE_ERROR, "undecryptable"
            ) from None

    async def _refresh(self, session: AsyncSession, connection: GoogleConnection) -> str:
        if connection.refresh_token_encrypted is None:
            raise await self._reconnect_required(
                session, connection, NO_REFRESH_TOKEN_ERROR, "no_refresh_token"
            )
        try:
            refresh_token = self._cipher.decrypt(connection.refresh_token_encrypted)
        except DecryptionFailed:
            raise await self._reconnect_required(
                session, connection, UNDECRYPTABLE_ERROR, "undecryptable"
            ) from None
        try:
            granted = await self._oauth.refresh(refresh_token)
        except ReconnectRequired:
            raise await self._reconnect_required(
                session, connection, RECONNECT_ERROR, "invalid_grant"
            ) from None
        except AppError as exc:
            REFRESH_FAILURES.labels(reason=_reason(exc)).inc()
            raise
        connection.access_token_encrypted = self._cipher.encrypt(granted.access_token)
        if granted.refresh_token is not None:
            # Google may rotate it; the old one may stop working, so never drop the new one
            connection.refresh_token_encrypted = self._cipher.encrypt(granted.refresh_token)
        connection.token_expires_at = granted.expires_at
        if granted.scopes:
            connection.scopes = granted.scopes
        await session.flush()
        return granted.access_token

    async def _reconnect_required(
        self, session: AsyncSession, connection: GoogleConnection, error: str, reason: str
    ) -> ReconnectRequired:
        """Mark the connection as needing the user to reconnect; the error to raise."""
        REFRESH_FAILURES.labels(reason=reason).inc()
        connection.needs_reconnect = True
        connection.last_sync_status = "failed"
        connection.last_error = error
        await session.flush()
        return ReconnectRequired()


def _reason(exc: AppError) -> str:
    if isinstance(exc, GoogleTimeout):
        return "timeout"
    if isinstance(exc, GoogleUnavailable):
        return "unavailable"
    return "bad_gateway"
