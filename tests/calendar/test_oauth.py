"""Connecting Google Calendar: consent URL, callback, status, reconnect and disconnect."""

from __future__ import annotations

import base64
import hashlib
from datetime import timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select, update

from ai_workflow_engine.calendar.models import Calendar, GoogleConnection, OAuthState
from ai_workflow_engine.core.db import utcnow
from tests.calendar.conftest import (
    AUTHORIZE,
    CALENDARS,
    CALLBACK,
    CONNECTION,
    RETRY_AFTER,
    STATUS,
    add_stored_event,
    authorization_url,
    connect,
    connected,
    consent_redirect,
    list_calendars,
    only_connection,
    query_of,
    status_of,
    stored_event_ids,
)
from tests.conftest import AppFactory, Users
from tests.google_standin import (
    DEFAULT_CLIENT_ID,
    DEFAULT_CLIENT_SECRET,
    DEFAULT_EMAIL,
    Fault,
    RunningStandin,
)

Headers = dict[str, str]
OTHER_EMAIL = "other@example.com"


def s256(verifier: str) -> str:
    digest = hashlib.sha256(verifier.encode()).digest()
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


def issued_secrets(standin: RunningStandin) -> list[str]:
    """Every token and code the stand-in ever issued, and the client secret."""
    oauth = standin.control.oauth
    return [
        *oauth.access_tokens,
        *oauth.refresh_tokens,
        *oauth.codes,
        DEFAULT_CLIENT_SECRET,
    ]


def assert_problem(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    return body


async def test_authorize_returns_googles_consent_url_with_pkce_and_offline_access(
    app: FastAPI, client: httpx.AsyncClient, users: Users, standin: RunningStandin
) -> None:
    url = await authorization_url(client, await users.headers())

    assert url.startswith(standin.auth_uri + "?")
    query = query_of(url)
    assert query["client_id"] == DEFAULT_CLIENT_ID
    assert query["redirect_uri"] == "http://testserver/api/v1/calendar/oauth/callback"
    assert query["response_type"] == "code"
    assert "https://www.googleapis.com/auth/calendar.readonly" in query["scope"].split()
    assert query["access_type"] == "offline"
    assert query["prompt"] == "consent"
    assert query["code_challenge_method"] == "S256"
    assert len(query["state"]) >= 32
    # stored server-side: the state only as its hash, the verifier encrypted, 10 minutes
    async with app.state.sessionmaker() as session:
        pending = (await session.scalars(select(OAuthState))).one()
    assert pending.state_hash == hashlib.sha256(query["state"].encode()).hexdigest()
    verifier = app.state.token_cipher.decrypt(pending.code_verifier_encrypted)
    assert verifier not in pending.code_verifier_encrypted
    assert s256(verifier) == query["code_challenge"]
    lifetime = pending.expires_at - utcnow()
    assert timedelta(minutes=9) < lifetime <= timedelta(minutes=10)


async def test_each_authorization_gets_its_own_state(
    client: httpx.AsyncClient, users: Users
) -> None:
    headers = await users.headers()
    first = query_of(await authorization_url(client, headers))
    second = query_of(await authorization_url(client, headers))
    assert first["state"] != second["state"]
    assert first["code_challenge"] != second["code_challenge"]


async def test_authorize_needs_a_bearer_token(client: httpx.AsyncClient) -> None:
    assert_problem(await client.get(AUTHORIZE), 401)


async def test_authorize_without_google_configuration_is_503(app_factory: AppFactory) -> None:
    async with app_factory() as bare:
        transport = httpx.ASGITransport(app=bare)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
            response = await http.get(AUTHORIZE, headers=await Users(http).headers())
    body = assert_problem(response, 503)
    assert "not configured" in body["detail"]


async def test_connect_flow_stores_the_connection_and_lists_the_calendars(
    app: FastAPI, client: httpx.AsyncClient, users: Users, standin: RunningStandin
) -> None:
    team = standin.control.add_calendar(DEFAULT_EMAIL, "Team", time_zone="Europe/Berlin")
    headers = await users.headers()
    before = utcnow()

    await connected(client, headers, standin)

    status = await status_of(client, headers)
    assert status["connected"] is True
    assert status["needs_reconnect"] is False
    assert status["account_email"] == DEFAULT_EMAIL
    expires = status["token_expires_at"]
    assert expires is not None
    assert expires.endswith("Z")
    assert status["last_sync_at"] is None
    assert status["last_error"] is None
    calendars = await list_calendars(client, headers)
    assert [(c["google_calendar_id"], c["primary"], c["selected"]) for c in calendars] == [
        (DEFAULT_EMAIL, True, True),
        (team, False, False),
    ]
    assert set(calendars[0]) == {
        "id",
        "google_calendar_id",
        "summary",
        "time_zone",
        "primary",
        "selected",
    }
    assert calendars[1]["summary"] == "Team"
    assert calendars[1]["time_zone"] == "Europe/Berlin"
    # the stand-in checked the PKCE verifier against the challenge (it requires S256)
    exchange = [r for r in standin.control.requests("token") if r.status == 200]
    assert len(exchange) == 1
    assert "code_verifier" in exchange[0].form
    connection = await only_connection(app)
    assert connection.token_expires_at is not None
    assert connection.token_expires_at > before + timedelta(minutes=50)
    assert "https://www.googleapis.com/auth/calendar.readonly" in connection.scopes.split()


async def test_tokens_are_encrypted_at_rest_and_decrypt_back(
    app: FastAPI, client: httpx.AsyncClient, users: Users, standin: RunningStandin
) -> None:
    await connected(client, await users.headers(), standin)

    connection = await only_connection(app)
    row = " ".join(str(getattr(connection, c.key)) for c in GoogleConnection.__table__.columns)
    oauth = standin.control.oauth
    for secret in issued_secrets(standin):
        assert secret not in row
    assert connection.access_token_encrypted is not None
    assert connection.refresh_token_encrypted is not None
    cipher = app.state.token_cipher
    assert cipher.decrypt(connection.access_token_encrypted) in oauth.access_tokens
    assert cipher.decrypt(connection.refresh_token_encrypted) in oauth.refresh_tokens


async def test_no_response_of_the_flow_carries_a_secret(
    client: httpx.AsyncClient, users: Users, standin: RunningStandin
) -> None:
    headers = await users.headers()
    bodies = [await client.get(await consent_redirect(client, headers, standin))]
    bodies.append(await client.get(STATUS, headers=headers))
    bodies.append(await client.get(CALENDARS, headers=headers))
    standin.control.faults.add("token", Fault.http(500), times=None)
    bodies.append(await client.get(await consent_redirect(client, headers, standin)))
    assert [response.status_code for response in bodies] == [200, 200, 200, 503]
    text = " ".join(response.text for response in bodies)
    for secret in issued_secrets(standin):
        assert secret not in text


async def test_a_state_is_single_use(
    client: httpx.AsyncClient, users: Users, standin: RunningStandin
) -> None:
    callback = await consent_redirect(client, await users.headers(), standin)
    assert (await client.get(callback)).status_code == 200

    body = assert_problem(await client.get(callback), 400)
    assert "state" in body["detail"]


async def test_unknown_or_missing_state_is_400(client: httpx.AsyncClient) -> None:
    assert_problem(await client.get(CALLBACK, params={"code": "c", "state": "nope"}), 400)
    assert_problem(await client.get(CALLBACK, params={"code": "c"}), 400)
    assert_problem(await client.get(CALLBACK), 400)


async def test_an_expired_state_is_400(
    app: FastAPI, client: httpx.AsyncClient, users: Users, standin: RunningStandin
) -> None:
    callback = await consent_redirect(client, await users.headers(), standin)
    async with app.state.sessionmaker() as session, session.begin():
        await session.execute(update(OAuthState).values(expires_at=utcnow() - timedelta(seconds=1)))

    assert_problem(await client.get(callback), 400)
    assert (await status_of(client, await users.headers()))["connected"] is False


async def test_a_missing_code_is_400_and_spends_the_state(
    client: httpx.AsyncClient, users: Users, standin: RunningStandin
) -> None:
    callback = await consent_redirect(client, await users.headers(), standin)
    state = query_of(callback)["state"]

    body = assert_problem(await client.get(CALLBACK, params={"state": state}), 400)
    assert "code" in body["detail"]
    assert_problem(await client.get(callback), 400)


async def test_access_denied_is_400_and_nothing_is_connected(
    client: httpx.AsyncClient, users: Users, standin: RunningStandin
) -> None:
    headers = await users.headers()
    standin.control.queue_consent(deny=True)
    callback = await consent_redirect(client, headers, standin)
    assert query_of(callback)["error"] == "access_denied"

    body = assert_problem(await client.get(callback), 400)
    assert "declined" in body["detail"]
    assert (await status_of(client, headers))["connected"] is False


async def test_a_consent_without_the_calendar_scope_is_400(
    client: httpx.AsyncClient, users: Users, standin: RunningStandin
) -> None:
    headers = await users.headers()
    standin.control.queue_consent(granted_scopes=["openid", "email"])

    body = assert_problem(await connect(client, headers, standin), 400)
    assert "not granted" in body["detail"]
    assert (await status_of(client, headers))["connected"] is False


async def test_a_failed_exchange_answers_503_and_still_spends_the_state(
    client: httpx.AsyncClient, users: Users, standin: RunningStandin
) -> None:
    headers = await users.headers()
    callback = await consent_redirect(client, headers, standin)
    standin.control.faults.add("token", Fault.http(503), times=1)

    response = await client.get(callback)
    assert_problem(response, 503)
    assert response.headers["Retry-After"] == str(RETRY_AFTER)
    assert_problem(await client.get(callback), 400)
    assert (await status_of(client, headers))["connected"] is False


async def test_a_calendar_list_that_fails_after_retries_connects_nothing(
    client: httpx.AsyncClient, users: Users, standin: RunningStandin
) -> None:
    headers = await users.headers()
    standin.control.faults.add("calendarList", Fault.http(500), times=None)

    response = await connect(client, headers, standin)
    assert_problem(response, 503)
    assert response.headers["Retry-After"] == str(RETRY_AFTER)
    assert len(standin.control.requests("calendarList")) == 3  # google_max_attempts
    assert (await status_of(client, headers))["connected"] is False


@pytest.mark.parametrize(
    "google_settings",
    [{"google_scopes": "https://www.googleapis.com/auth/calendar.readonly"}],
    indirect=True,
)
async def test_without_openid_the_account_email_is_the_primary_calendars_id(
    client: httpx.AsyncClient, users: Users, standin: RunningStandin
) -> None:
    headers = await users.headers()
    await connected(client, headers, standin)

    token_requests = standin.control.requests("token")
    assert "openid" not in standin.control.consent_requests[0]["scope"]
    assert token_requests
    assert (await status_of(client, headers))["account_email"] == DEFAULT_EMAIL


async def test_reconnecting_the_same_account_keeps_calendars_and_selection(
    app: FastAPI, client: httpx.AsyncClient, users: Users, standin: RunningStandin
) -> None:
    google = standin.control
    team = google.add_calendar(DEFAULT_EMAIL, "Team")
    gone = google.add_calendar(DEFAULT_EMAIL, "Old project")
    headers = await users.headers()
    await connected(client, headers, standin)
    before = {c["google_calendar_id"]: c for c in await list_calendars(client, headers)}
    patch = f"{CALENDARS}/{before[team]['id']}"
    assert (await client.patch(patch, json={"selected": True}, headers=headers)).status_code == 200
    kept_event = await add_stored_event(app, before[team]["id"])
    gone_event = await add_stored_event(app, before[gone]["id"])
    google.remove_from_calendar_list(DEFAULT_EMAIL, gone)
    google.revoke_grant(DEFAULT_EMAIL)

    await connected(client, headers, standin)

    after = {c["google_calendar_id"]: c for c in await list_calendars(client, headers)}
    assert set(after) == {DEFAULT_EMAIL, team}
    assert after[DEFAULT_EMAIL]["id"] == before[DEFAULT_EMAIL]["id"]
    assert after[team]["id"] == before[team]["id"]
    assert after[team]["selected"] is True
    assert await stored_event_ids(app) == [kept_event]
    assert gone_event != kept_event
    status = await status_of(client, headers)
    assert status["account_email"] == DEFAULT_EMAIL
    assert status["needs_reconnect"] is False


async def test_connecting_another_account_replaces_the_calendars(
    app: FastAPI, client: httpx.AsyncClient, users: Users, standin: RunningStandin
) -> None:
    google = standin.control
    google.add_user(OTHER_EMAIL)
    headers = await users.headers()
    await connected(client, headers, standin)
    first = await list_calendars(client, headers)
    await add_stored_event(app, first[0]["id"])

    google.queue_consent(email=OTHER_EMAIL)
    await connected(client, headers, standin)

    calendars = await list_calendars(client, headers)
    assert [c["google_calendar_id"] for c in calendars] == [OTHER_EMAIL]
    assert calendars[0]["selected"] is True
    assert await stored_event_ids(app) == []
    assert (await status_of(client, headers))["account_email"] == OTHER_EMAIL
    connection = await only_connection(app)
    assert connection.refresh_token_encrypted is not None
    refresh = app.state.token_cipher.decrypt(connection.refresh_token_encrypted)
    grant = google.oauth.grants[google.oauth.refresh_tokens[refresh].grant_id]
    assert grant.email == OTHER_EMAIL


async def test_disconnect_revokes_at_google_and_removes_everything(
    app: FastAPI, client: httpx.AsyncClient, users: Users, standin: RunningStandin
) -> None:
    google = standin.control
    google.add_calendar(DEFAULT_EMAIL, "Team")
    headers = await users.headers()
    await connected(client, headers, standin)
    calendars = await list_calendars(client, headers)
    await add_stored_event(app, calendars[0]["id"])

    response = await client.delete(CONNECTION, headers=headers)

    assert response.status_code == 204
    assert response.content == b""
    revocations = google.requests("revoke")
    assert [r.status for r in revocations] == [200]
    assert all(grant.revoked for grant in google.oauth.grants.values())
    status = await status_of(client, headers)
    assert status["connected"] is False
    assert status["account_email"] is None
    assert await list_calendars(client, headers) == []
    assert await stored_event_ids(app) == []
    async with app.state.sessionmaker() as session:
        assert list(await session.scalars(select(GoogleConnection))) == []
        assert list(await session.scalars(select(Calendar))) == []
    assert (await client.delete(CONNECTION, headers=headers)).status_code == 204


async def test_disconnect_when_never_connected_is_204(
    client: httpx.AsyncClient, users: Users, standin: RunningStandin
) -> None:
    assert (await client.delete(CONNECTION, headers=await users.headers())).status_code == 204
    assert standin.control.requests("revoke") == []


async def test_disconnect_goes_ahead_when_google_cannot_revoke(
    app: FastAPI, client: httpx.AsyncClient, users: Users, standin: RunningStandin
) -> None:
    headers = await users.headers()
    await connected(client, headers, standin)
    standin.control.faults.add("revoke", Fault.http(503), times=None)

    assert (await client.delete(CONNECTION, headers=headers)).status_code == 204

    assert len(standin.control.requests("revoke")) == 1
    assert (await status_of(client, headers))["connected"] is False
    assert await list_calendars(client, headers) == []


async def test_disconnect_leaves_other_users_alone(
    app: FastAPI, client: httpx.AsyncClient, users: Users, standin: RunningStandin
) -> None:
    google = standin.control
    google.add_user(OTHER_EMAIL)
    mine, theirs = await users.headers(), await users.headers()
    await connected(client, mine, standin)
    google.queue_consent(email=OTHER_EMAIL)
    await connected(client, theirs, standin)

    assert (await client.delete(CONNECTION, headers=mine)).status_code == 204

    assert (await status_of(client, theirs))["account_email"] == OTHER_EMAIL
    assert len(await list_calendars(client, theirs)) == 1
    grants = {grant.email: grant.revoked for grant in google.oauth.grants.values()}
    assert grants == {DEFAULT_EMAIL: True, OTHER_EMAIL: False}
