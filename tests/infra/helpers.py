"""Small helpers shared by the infrastructure tests."""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
from asgi_lifespan import LifespanManager
from fastapi import FastAPI

from ai_workflow_engine.core.config import Settings
from ai_workflow_engine.main import create_app

PASSWORD = "correct horse battery"
PROBLEM = "application/problem+json"
# what must never reach a client in an error body
LEAK_MARKERS = ("Traceback", 'File "', "SELECT ", "INSERT ", "sqlalchemy", "psycopg", "sqlite3")


@asynccontextmanager
async def running_app(
    settings: Settings, *, raise_app_exceptions: bool = True
) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    """The app with its lifespan running, and a client talking to it in-process."""
    app = create_app(settings)
    async with LifespanManager(app, startup_timeout=20, shutdown_timeout=20):
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=raise_app_exceptions)
        async with httpx.AsyncClient(
            transport=transport, base_url="http://testserver", timeout=30
        ) as client:
            yield app, client


def new_user(prefix: str = "u") -> dict[str, str]:
    tag = f"{prefix}{uuid.uuid4().hex[:10]}"
    return {"email": f"{tag}@example.com", "username": tag, "password": PASSWORD}


async def register(client: httpx.AsyncClient, user: dict[str, str]) -> httpx.Response:
    return await client.post("/api/v1/auth/register", json=user)


async def login(client: httpx.AsyncClient, username: str) -> httpx.Response:
    return await client.post(
        "/api/v1/auth/jwt/login", data={"username": username, "password": PASSWORD}
    )


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def assert_problem(response: httpx.Response, status: int) -> dict[str, Any]:
    """An RFC 9457 problem with this status, and nothing internal in it."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM), response.headers
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    assert {"type", "title", "status", "detail"} <= set(body)
    for marker in LEAK_MARKERS:
        assert marker not in response.text, f"{marker!r} leaked: {response.text}"
    return body


class Stopwatch:
    def __init__(self) -> None:
        self.started = time.monotonic()

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self.started
