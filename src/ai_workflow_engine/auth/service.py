"""Login, refresh-token rotation with reuse detection, and logout."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import structlog
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from ai_workflow_engine.auth.models import RefreshToken
from ai_workflow_engine.auth.schemas import TokenPair
from ai_workflow_engine.auth.state import AuthStateStore
from ai_workflow_engine.core.errors import InvalidInput, TooManyRequests, Unauthorized
from ai_workflow_engine.core.security import InvalidToken, PasswordHasher, TokenCodec
from ai_workflow_engine.users.models import User
from ai_workflow_engine.users.service import find_user_by_login

log = structlog.get_logger(__name__)

_BAD_CREDENTIALS = "Incorrect username or password"


async def issue_token_pair(
    session: AsyncSession, codec: TokenCodec, user_id: int, session_id: str
) -> TokenPair:
    access, _ = codec.issue(user_id, session_id, "access")
    refresh, claims = codec.issue(user_id, session_id, "refresh")
    session.add(
        RefreshToken(
            jti=claims.jti,
            user_id=user_id,
            session_id=session_id,
            issued_at=claims.issued_at,
            expires_at=claims.expires_at,
        )
    )
    await session.flush()
    return TokenPair(
        access_token=access,
        refresh_token=refresh,
        expires_in=int(codec.lifetime("access").total_seconds()),
    )


async def login(
    session: AsyncSession,
    codec: TokenCodec,
    hasher: PasswordHasher,
    store: AuthStateStore,
    login_name: str,
    password: str,
) -> TokenPair:
    """Check the credentials and open a new login session.

    A locked account answers 429 whatever the password; an unknown user costs the same password
    check as a known one, and gets the same 401.
    """
    user = await find_user_by_login(session, login_name)
    if user is not None:
        structlog.contextvars.bind_contextvars(user_id=user.id)
        remaining = await store.lockout_remaining(session, user.id)
        if remaining > 0:
            raise TooManyRequests(
                "Too many failed logins for this account; try again later", retry_after=remaining
            )
    # the one commit in a service, on purpose: it ends a read-only transaction so that no pooled
    # connection (nor, on SQLite, the write lock) is held during the deliberately slow verify
    await session.commit()
    verified = await hasher.verify(password, user.password_hash if user else None)
    if user is None or not verified:
        if user is not None:
            await store.record_login_failure(session, user.id)
            log.info("login_failed", user_id=user.id)
        raise Unauthorized(_BAD_CREDENTIALS, keep_changes=True)
    if not user.is_active:
        raise Unauthorized(_BAD_CREDENTIALS)
    await store.reset_login_failures(session, user.id)
    return await issue_token_pair(session, codec, user.id, str(uuid.uuid4()))


async def refresh(
    session: AsyncSession, codec: TokenCodec, store: AuthStateStore, refresh_token: str
) -> TokenPair:
    """Spend a refresh token for a new pair. Presenting a spent one revokes its whole session."""
    try:
        claims = codec.decode(refresh_token, "refresh")
    except InvalidToken as exc:
        raise Unauthorized("Invalid or expired refresh token") from exc
    structlog.contextvars.bind_contextvars(user_id=claims.user_id)
    if await store.is_session_revoked(session, claims.session_id):
        raise Unauthorized("This session has been revoked")
    spent = await session.execute(
        update(RefreshToken)
        .where(
            RefreshToken.jti == claims.jti,
            RefreshToken.user_id == claims.user_id,
            RefreshToken.used_at.is_(None),
        )
        .values(used_at=datetime.now(UTC))
    )
    if spent.rowcount != 1:  # type: ignore[attr-defined]
        known = await session.scalar(select(RefreshToken.jti).where(RefreshToken.jti == claims.jti))
        if known is not None:
            # reuse: someone holds a copy of a spent token; end the session for everyone
            await store.revoke_session(
                session, claims.session_id, datetime.now(UTC) + codec.lifetime("refresh")
            )
            log.warning("refresh_token_reuse", user_id=claims.user_id)
            raise Unauthorized(
                "Refresh token already used; the session has been revoked", keep_changes=True
            )
        raise Unauthorized("Unknown refresh token")
    user = await session.get(User, claims.user_id)
    if user is None or not user.is_active:
        raise Unauthorized("The token's user no longer exists")
    return await issue_token_pair(session, codec, user.id, claims.session_id)


async def logout(
    session: AsyncSession,
    codec: TokenCodec,
    store: AuthStateStore,
    user_id: int,
    session_id: str,
    refresh_token: str | None,
) -> None:
    """End this login session (its access and refresh tokens), and the one of `refresh_token`."""
    sessions = {session_id}
    if refresh_token is not None:
        try:
            claims = codec.decode_ignoring_expiry(refresh_token, "refresh")
        except InvalidToken as exc:
            raise InvalidInput(
                ["body", "refresh_token"], "Not a refresh token of this user"
            ) from exc
        if claims.user_id != user_id:
            raise InvalidInput(["body", "refresh_token"], "Not a refresh token of this user")
        sessions.add(claims.session_id)
    until = datetime.now(UTC) + codec.lifetime("refresh")
    for sid in sessions:
        await store.revoke_session(session, sid, until)
