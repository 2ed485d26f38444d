"""TokenProvider against the stand-in: refresh before expiry and on demand, once under
concurrency, rotated refresh tokens kept, invalid_grant marking the connection; re-encryption."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import httpx
import pytest
from cryptography.fernet import Fernet
from fastapi import FastAPI
from prometheus_client import REGISTRY
from sqlalchemy import select, update

from ai_workflow_engine.calendar.errors import GoogleUnavailable, ReconnectRequired
from ai_workflow_engine.calendar.google.oauth import GoogleOAuth
from ai_workflow_engine.calendar.google.tokens import TokenProvider
from ai_workflow_engine.calendar.models import GoogleConnection, OAuthState
from ai_workflow_engine.calendar.service import reencrypt_tokens
from ai_workflow_engine.core.crypto import DecryptionFailed, TokenCipher
from ai_workflow_engine.core.db import utcnow
from tests.calendar.conftest import authorization_url, connected, only_connection, status_of
from tests.conftest import Users
from tests.google_standin import DEFAULT_EMAIL, Fault, RunningStandin

Headers = dict[str, str]


def provider(app: FastAPI, cipher: TokenCipher | None = None) -> TokenProvider:
    settings = app.state.settings.google
    oauth = GoogleOAuth(settings, app.state.google_http)
    return TokenProvider(oauth, cipher or app.state.token_cipher, settings)


def refreshes(standin: RunningStandin) -> int:
    """Refresh-token grants the stand-in answered successfully."""
    return sum(
        1
        for r in standin.control.requests("token")
        if r.form.get("grant_type") == ["refresh_token"] and r.status == 200
    )


def failures(reason: str) -> float:
    value = REGISTRY.get_sample_value("google_oauth_refresh_failures_total", {"reason": reason})
    return value or 0.0


@pytest.fixture
async def headers(client: httpx.AsyncClient, users: Users, standin: RunningStandin) -> Headers:
    """A user whose Google account is connected."""
    user_headers = await users.headers()
    await connected(client, user_headers, standin)
    return user_headers


async def expire_soon(app: FastAPI, seconds: int = 30) -> None:
    """Our record says the access token expires within the refresh margin (120 s)."""
    async with app.state.sessionmaker() as session, session.begin():
        await session.execute(
            update(GoogleConnection).values(token_expires_at=utcnow() + timedelta(seconds=seconds))
        )


async def access_token(app: FastAPI, *, force_refresh: bool = False) -> str:
    """A token as a request would get one: own session, committed at the end."""
    async with app.state.sessionmaker() as session, session.begin():
        connection = (await session.scalars(select(GoogleConnection))).one()
        return await provider(app).access_token(session, connection, force_refresh=force_refresh)


async def test_a_fresh_token_is_used_as_stored(
    app: FastAPI, headers: Headers, standin: RunningStandin
) -> None:
    stored = await only_connection(app)
    assert stored.access_token_encrypted is not None

    token = await access_token(app)

    assert token == app.state.token_cipher.decrypt(stored.access_token_encrypted)
    assert refreshes(standin) == 0
    assert standin.control.oauth.bearer(token) is not None


async def test_a_token_near_expiry_is_refreshed_and_stored(
    app: FastAPI, headers: Headers, standin: RunningStandin
) -> None:
    before = await only_connection(app)
    await expire_soon(app)

    token = await access_token(app)

    assert refreshes(standin) == 1
    assert standin.control.oauth.bearer(token) is not None
    after = await only_connection(app)
    assert after.access_token_encrypted is not None
    assert app.state.token_cipher.decrypt(after.access_token_encrypted) == token
    assert after.token_expires_at is not None
    assert after.token_expires_at > utcnow() + timedelta(minutes=50)
    assert after.refresh_token_encrypted == before.refresh_token_encrypted  # not rotated
    assert await access_token(app) == token
    assert refreshes(standin) == 1


async def test_force_refresh_gets_a_new_token(
    app: FastAPI, headers: Headers, standin: RunningStandin
) -> None:
    old = await access_token(app)

    new = await access_token(app, force_refresh=True)

    assert new != old
    assert refreshes(standin) == 1


async def test_concurrent_callers_refresh_once_and_share_the_new_token(
    app: FastAPI, headers: Headers, standin: RunningStandin
) -> None:
    await expire_soon(app)
    standin.control.faults.add("token", Fault.delay(0.2))  # keep the first refresh in flight

    tokens = await asyncio.gather(*(access_token(app) for _ in range(3)))

    assert refreshes(standin) == 1
    assert len(set(tokens)) == 1


async def test_concurrent_forced_refreshes_after_a_401_refresh_once(
    app: FastAPI, headers: Headers, standin: RunningStandin
) -> None:
    async def after_401() -> str:
        async with app.state.sessionmaker() as session:
            connection = (await session.scalars(select(GoogleConnection))).one()
            tokens = provider(app)
            await tokens.access_token(session, connection)  # the token that got the 401
            await session.commit()
            await asyncio.sleep(0.05)  # both callers have read the old token
            token = await tokens.access_token(session, connection, force_refresh=True)
            await session.commit()
            return token

    standin.control.faults.add("token", Fault.delay(0.2))
    first, second = await asyncio.gather(after_401(), after_401())

    assert first == second
    assert refreshes(standin) == 1


async def test_a_rotated_refresh_token_is_stored_and_used_next(
    app: FastAPI, headers: Headers, standin: RunningStandin
) -> None:
    google = standin.control
    google.config.rotate_refresh_tokens = True
    cipher = app.state.token_cipher
    before = await only_connection(app)
    assert before.refresh_token_encrypted is not None
    old_refresh = cipher.decrypt(before.refresh_token_encrypted)

    await access_token(app, force_refresh=True)

    after = await only_connection(app)
    assert after.refresh_token_encrypted is not None
    new_refresh = cipher.decrypt(after.refresh_token_encrypted)
    assert new_refresh != old_refresh
    assert google.oauth.refresh_tokens[old_refresh].revoked  # the old one no longer works
    await access_token(app, force_refresh=True)  # so this one used the new one
    assert refreshes(standin) == 2


async def test_invalid_grant_marks_the_connection_for_reconnect(
    app: FastAPI,
    client: httpx.AsyncClient,
    headers: Headers,
    standin: RunningStandin,
) -> None:
    standin.control.revoke_grant(DEFAULT_EMAIL)
    counted = failures("invalid_grant")

    # as the request's session does for a keep_changes error: commit, then answer the problem
    async with app.state.sessionmaker() as session:
        connection = (await session.scalars(select(GoogleConnection))).one()
        with pytest.raises(ReconnectRequired) as raised:
            await provider(app).access_token(session, connection, force_refresh=True)
        assert raised.value.keep_changes
        await session.commit()

    status = await status_of(client, headers)
    assert status["connected"] is True
    assert status["needs_reconnect"] is True
    assert status["last_sync_status"] == "failed"
    assert "reconnect" in status["last_error"]
    assert failures("invalid_grant") == counted + 1
    # from now on no call to Google until the user reconnects
    token_requests = len(standin.control.requests("token"))
    with pytest.raises(ReconnectRequired):
        await access_token(app, force_refresh=True)
    assert len(standin.control.requests("token")) == token_requests


async def test_reconnecting_clears_needs_reconnect(
    app: FastAPI, client: httpx.AsyncClient, headers: Headers, standin: RunningStandin
) -> None:
    standin.control.revoke_grant(DEFAULT_EMAIL)
    async with app.state.sessionmaker() as session:
        connection = (await session.scalars(select(GoogleConnection))).one()
        with pytest.raises(ReconnectRequired):
            await provider(app).access_token(session, connection, force_refresh=True)
        await session.commit()

    await connected(client, headers, standin)

    status = await status_of(client, headers)
    assert status["needs_reconnect"] is False
    assert status["last_error"] is None
    assert status["last_sync_status"] is None
    await access_token(app, force_refresh=True)


async def test_google_down_during_refresh_is_503_and_keeps_the_connection(
    app: FastAPI, client: httpx.AsyncClient, headers: Headers, standin: RunningStandin
) -> None:
    standin.control.faults.add("token", Fault.http(503), times=None)
    counted = failures("unavailable")

    with pytest.raises(GoogleUnavailable) as raised:
        await access_token(app, force_refresh=True)

    assert raised.value.headers["Retry-After"] == "7"
    assert failures("unavailable") == counted + 1
    status = await status_of(client, headers)
    assert status["needs_reconnect"] is False


async def test_a_token_no_key_can_decrypt_asks_for_reconnect(
    app: FastAPI, client: httpx.AsyncClient, headers: Headers
) -> None:
    other_keys = TokenCipher([Fernet.generate_key()])
    async with app.state.sessionmaker() as session:
        connection = (await session.scalars(select(GoogleConnection))).one()
        with pytest.raises(ReconnectRequired):
            await provider(app, other_keys).access_token(session, connection)
        await session.commit()

    status = await status_of(client, headers)
    assert status["needs_reconnect"] is True
    assert "decrypted" in status["last_error"]


async def test_reencrypt_tokens_moves_every_secret_to_the_first_key(
    app: FastAPI, client: httpx.AsyncClient, headers: Headers
) -> None:
    await authorization_url(client, headers)  # a pending state with its verifier
    app_cipher: TokenCipher = app.state.token_cipher
    old_key, new_key = Fernet.generate_key(), Fernet.generate_key()
    old_only, new_only = TokenCipher([old_key]), TokenCipher([new_key])
    # the stored secrets as a deployment on `old_key` has them
    async with app.state.sessionmaker() as session, session.begin():
        connection = (await session.scalars(select(GoogleConnection))).one()
        pending = (await session.scalars(select(OAuthState))).one()
        assert connection.access_token_encrypted is not None
        assert connection.refresh_token_encrypted is not None
        access = app_cipher.decrypt(connection.access_token_encrypted)
        refresh = app_cipher.decrypt(connection.refresh_token_encrypted)
        verifier = app_cipher.decrypt(pending.code_verifier_encrypted)
        connection.access_token_encrypted = old_only.encrypt(access)
        connection.refresh_token_encrypted = old_only.encrypt(refresh)
        pending.code_verifier_encrypted = old_only.encrypt(verifier)

    async with app.state.sessionmaker() as session, session.begin():
        count = await reencrypt_tokens(session, TokenCipher([new_key, old_key]))

    assert count == 3  # access token, refresh token, one PKCE verifier
    async with app.state.sessionmaker() as session:
        connection = (await session.scalars(select(GoogleConnection))).one()
        pending = (await session.scalars(select(OAuthState))).one()
    assert connection.access_token_encrypted is not None
    assert connection.refresh_token_encrypted is not None
    assert new_only.decrypt(connection.access_token_encrypted) == access
    assert new_only.decrypt(connection.refresh_token_encrypted) == refresh
    assert new_only.decrypt(pending.code_verifier_encrypted) == verifier
    with pytest.raises(DecryptionFailed):
        old_only.decrypt(connection.access_token_encrypted)


async def test_reencrypt_tokens_leaves_what_no_key_opens(app: FastAPI, headers: Headers) -> None:
    async with app.state.sessionmaker() as session, session.begin():
        count = await reencrypt_tokens(session, TokenCipher([Fernet.generate_key()]))

    assert count == 0
    assert (await only_connection(app)).access_token_encrypted is not None
