"""Fixtures of the sync tests: an app pointed at a running Google stand-in, and users that connect
through the real OAuth endpoints, sync, and read their events over HTTP.

Import `sync_env_fixture` and `sync_env_factory_fixture` into a test module (with
`# noqa: F401`): they are registered under the names `sync_env` and `sync_env_factory`.

They build on conftest's `standin` and `google_settings`, and turn the in-process background
auto-sync off so that it never races the syncs a test makes.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from tests.conftest import AppFactory, Users
from tests.google_standin.control import DEFAULT_EMAIL, GoogleStandin
from tests.google_standin.faults import RecordedRequest
from tests.google_standin.server import RunningStandin

__all__ = ["CalendarUser", "SyncEnv", "sync_env_factory_fixture", "sync_env_fixture"]


@dataclass
class CalendarUser:
    """One of our users, driving the calendar endpoints as a client would."""

    http: httpx.AsyncClient
    headers: dict[str, str]
    google: RunningStandin
    email: str = DEFAULT_EMAIL

    async def connect(self) -> None:
        """Connect Google through authorize → consent screen → callback."""
        answer = await self.http.get("/api/v1/calendar/oauth/authorize", headers=self.headers)
        assert answer.status_code == 200, answer.text
        self.google.control.queue_consent(email=self.email)
        redirect = self.google.consent(answer.json()["authorization_url"])
        assert redirect.code is not None, redirect.location
        callback = await self.http.get(
            "/api/v1/calendar/oauth/callback",
            params={"code": redirect.code, "state": redirect.state},
        )
        assert callback.status_code == 200, callback.text

    async def sync(self) -> httpx.Response:
        return await self.http.post("/api/v1/calendar/sync/auto", headers=self.headers)

    async def synced(self) -> dict[str, Any]:
        """Sync and insist that it worked."""
        response = await self.sync()
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    async def events_page(self, **params: Any) -> httpx.Response:
        return await self.http.get("/api/v1/calendar/events", params=params, headers=self.headers)

    async def events(self, **params: Any) -> list[dict[str, Any]]:
        """Every event of the range (default: the year around the stand-in's now), following
        cursors."""
        now = self.google.control.clock.now()
        params.setdefault("start", (now - timedelta(days=182)).isoformat())
        params.setdefault("end", (now + timedelta(days=182)).isoformat())
        items: list[dict[str, Any]] = []
        cursor = None
        while True:
            response = await self.events_page(**params, **({"cursor": cursor} if cursor else {}))
            assert response.status_code == 200, response.text
            body = response.json()
            items.extend(body["items"])
            cursor = body["next_cursor"]
            if cursor is None:
                return items

    async def status(self) -> dict[str, Any]:
        response = await self.http.get("/api/v1/calendar/status", headers=self.headers)
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    async def calendars(self) -> list[dict[str, Any]]:
        response = await self.http.get("/api/v1/calendar/calendars", headers=self.headers)
        assert response.status_code == 200, response.text
        items: list[dict[str, Any]] = response.json()["items"]
        return items

    async def set_timezone(self, name: str) -> None:
        response = await self.http.patch(
            "/api/v1/settings", json={"timezone": name}, headers=self.headers
        )
        assert response.status_code == 200, response.text


@dataclass
class SyncEnv:
    """A running app on the test's database, talking to a running stand-in."""

    app: FastAPI
    http: httpx.AsyncClient
    google: RunningStandin
    _users: Users = field(init=False)

    def __post_init__(self) -> None:
        self._users = Users(self.http)

    @property
    def control(self) -> GoogleStandin:
        return self.google.control

    async def user(self, email: str = DEFAULT_EMAIL, *, connect: bool = True) -> CalendarUser:
        """A new user of ours, connected to the Google account `email` (created if needed)."""
        if email not in self.control.users:
            self.control.add_user(email)
        user = CalendarUser(self.http, await self._users.headers(), self.google, email)
        if connect:
            await user.connect()
        return user

    def event_requests(self) -> list[RecordedRequest]:
        return self.control.requests("events")


SyncEnvFactory = Callable[..., Any]


@pytest.fixture(name="sync_env_factory")
def sync_env_factory_fixture(
    app_factory: AppFactory, standin: RunningStandin, google_settings: dict[str, Any]
) -> SyncEnvFactory:
    """`async with sync_env_factory(**google_settings) as env:` an app on the test's stand-in
    (conftest's `standin` and `google_settings`), with these Google settings changed."""

    @asynccontextmanager
    async def build(**overrides: Any) -> AsyncIterator[SyncEnv]:
        redis = overrides.pop("redis", {})
        # no background auto-sync racing the syncs a test makes
        jobs = {"jobs_in_process": False}
        google = {**google_settings, **overrides}
        async with app_factory(google=google, redis=redis, jobs=jobs) as app:
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
                yield SyncEnv(app, c, standin)

    return build


@pytest.fixture(name="sync_env")
async def sync_env_fixture(sync_env_factory: SyncEnvFactory) -> AsyncIterator[SyncEnv]:
    async with sync_env_factory(google_page_size=3) as env:
        yield env


def query_of(request: RecordedRequest) -> dict[str, str]:
    """A recorded events.list request's parameters (first value of each)."""
    return {name: values[0] for name, values in request.query.items()}
