"""Calendar tests run against the Google stand-in (tests/google_standin), on both databases.

In this folder `app` (and so `client` and `users`) is an app whose Google addresses point at a
fresh stand-in (`standin`, the same as `google_standin`), with small timeouts and backoff so that
retries are fast. A test changes those settings with
`@pytest.mark.parametrize("google_settings", [{...}], indirect=True)`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select

from ai_workflow_engine.calendar.models import Calendar, CalendarEvent, GoogleConnection
from ai_workflow_engine.core.db import utcnow
from tests.conftest import AppFactory
from tests.google_standin import DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, RunningStandin
from tests.google_standin.fixtures import google_standin, google_standin_factory

AUTHORIZE = "/api/v1/calendar/oauth/authorize"
CALLBACK = "/api/v1/calendar/oauth/callback"
STATUS = "/api/v1/calendar/status"
CONNECTION = "/api/v1/calendar/connection"
CALENDARS = "/api/v1/calendar/calendars"
RETRY_AFTER = 7  # google_retry_after_seconds in these tests

Headers = dict[str, str]

__all__ = ["google_standin", "google_standin_factory"]


@pytest.fixture
def standin(google_standin: RunningStandin) -> RunningStandin:
    """A fresh stand-in on a loopback port; `standin.control` is its state and control API."""
    return google_standin


@pytest.fixture
def google_settings(request: pytest.FixtureRequest, standin: RunningStandin) -> dict[str, Any]:
    """The app's Google settings: the stand-in's addresses and fast retries."""
    overrides: dict[str, Any] = getattr(request, "param", {})
    return {
        "google_client_id": DEFAULT_CLIENT_ID,
        "google_client_secret": DEFAULT_CLIENT_SECRET,
        "google_auth_uri": standin.auth_uri,
        "google_token_uri": standin.token_uri,
        "google_revoke_uri": standin.revoke_uri,
        "google_calendar_api_base": standin.calendar_api_base,
        "public_base_url": "http://testserver",
        "google_http_timeout_seconds": 2.0,
        "google_max_attempts": 3,
        "google_backoff_base_seconds": 0.01,
        "google_backoff_max_seconds": 0.05,
        "google_retry_after_seconds": RETRY_AFTER,
        **overrides,
    }


@pytest.fixture
async def app(app_factory: AppFactory, google_settings: dict[str, Any]) -> AsyncIterator[FastAPI]:
    async with app_factory(google=google_settings) as running:
        yield running


def query_of(url: str) -> dict[str, str]:
    return {name: values[0] for name, values in parse_qs(urlsplit(url).query).items()}


async def authorization_url(client: httpx.AsyncClient, headers: Headers) -> str:
    response = await client.get(AUTHORIZE, headers=headers)
    assert response.status_code == 200, response.text
    url: str = response.json()["authorization_url"]
    return url


async def consent_redirect(
    client: httpx.AsyncClient, headers: Headers, standin: RunningStandin
) -> str:
    """Ask for the consent URL, let the stand-in's consent screen answer; the callback URL."""
    redirect = standin.consent(await authorization_url(client, headers))
    return redirect.location


async def connect(
    client: httpx.AsyncClient, headers: Headers, standin: RunningStandin
) -> httpx.Response:
    """The whole browser flow: authorize, consent, callback. Returns the callback's answer."""
    return await client.get(await consent_redirect(client, headers, standin))


async def connected(client: httpx.AsyncClient, headers: Headers, standin: RunningStandin) -> None:
    response = await connect(client, headers, standin)
    assert response.status_code == 200, response.text
    assert response.json() == {"status": "connected"}


async def list_calendars(client: httpx.AsyncClient, headers: Headers) -> list[dict[str, Any]]:
    response = await client.get(CALENDARS, headers=headers)
    assert response.status_code == 200, response.text
    assert response.json()["next_cursor"] is None
    items: list[dict[str, Any]] = response.json()["items"]
    return items


async def status_of(client: httpx.AsyncClient, headers: Headers) -> dict[str, Any]:
    response = await client.get(STATUS, headers=headers)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def only_connection(app: FastAPI) -> GoogleConnection:
    async with app.state.sessionmaker() as session:
        rows: list[GoogleConnection] = list(await session.scalars(select(GoogleConnection)))
    assert len(rows) == 1
    return rows[0]


async def add_stored_event(app: FastAPI, calendar_id: int, google_event_id: str = "evt1") -> int:
    """An event row as a sync would have stored it (the sync engine is tested elsewhere)."""
    async with app.state.sessionmaker() as session, session.begin():
        calendar = await session.get(Calendar, calendar_id)
        assert calendar is not None
        now = utcnow()
        event = CalendarEvent(
            user_id=calendar.user_id,
            calendar_id=calendar_id,
            google_event_id=google_event_id,
            title="Stored",
            status="confirmed",
            start_at=now,
            end_at=now,
            content_hash="0" * 64,
        )
        session.add(event)
        await session.flush()
        return event.id


async def stored_event_ids(app: FastAPI) -> list[int]:
    async with app.state.sessionmaker() as session:
        return list(await session.scalars(select(CalendarEvent.id)))
