"""API8 Security Misconfiguration, CORS: origins come from CORS_ORIGINS only, exactly as
browsers send them; a wildcard (which with credentials would hand every site the user's API) is
refused at start-up; an allowed origin gets its own name back, a foreign one nothing."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI
from pydantic import ValidationError

from ai_workflow_engine.core.config import load_settings
from tests.conftest import AppFactory, Users
from tests.security.conftest import bearer

ALLOWED = "https://app.example.com"
FOREIGN = "https://evil.example.net"


@pytest.mark.parametrize(
    "origins",
    [
        "*",
        f"{ALLOWED},*",
        "null",
        f"{ALLOWED}/",
        f"{ALLOWED}/path",
        "app.example.com",
        "ftp://app.example.com",
        "https://*.example.com",
    ],
)
def test_settings_refuse_anything_but_exact_origins(origins: str) -> None:
    with pytest.raises(ValidationError) as caught:
        load_settings(http={"cors_origins": origins})
    assert "CORS_ORIGINS" in str(caught.value)


def test_settings_take_exact_origins() -> None:
    origins = f"{ALLOWED}, http://localhost:5173,http://[::1]:8080"
    settings = load_settings(http={"cors_origins": origins})
    assert settings.http.cors_origins == [ALLOWED, "http://localhost:5173", "http://[::1]:8080"]


@pytest.fixture
async def app(app_factory: AppFactory) -> AsyncIterator[FastAPI]:
    async with app_factory(http={"cors_origins": ALLOWED}) as running:
        yield running


def preflight(origin: str) -> dict[str, str]:
    return {
        "Origin": origin,
        "Access-Control-Request-Method": "PATCH",
        "Access-Control-Request-Headers": "authorization, content-type",
    }


async def test_an_allowed_origin_is_named_back_with_credentials(
    client: httpx.AsyncClient, users: Users
) -> None:
    user = await users.register()
    headers = bearer((await users.login(user["username"]))["access_token"])

    allowed = await client.get("/api/v1/users/me", headers={**headers, "Origin": ALLOWED})
    checked = await client.options("/api/v1/settings", headers=preflight(ALLOWED))

    for response in (allowed, checked):
        assert response.status_code == 200, response.text
        assert response.headers["access-control-allow-origin"] == ALLOWED
        assert response.headers["access-control-allow-credentials"] == "true"
        assert "Origin" in response.headers["vary"]
        assert response.headers["x-content-type-options"] == "nosniff"
    assert "PATCH" in checked.headers["access-control-allow-methods"]
    assert "authorization" in checked.headers["access-control-allow-headers"].lower()


async def test_a_foreign_origin_gets_no_cors_headers(
    client: httpx.AsyncClient, users: Users
) -> None:
    user = await users.register()
    headers = bearer((await users.login(user["username"]))["access_token"])

    simple = await client.get("/api/v1/users/me", headers={**headers, "Origin": FOREIGN})
    checked = await client.options("/api/v1/settings", headers=preflight(FOREIGN))

    # the request itself is answered (CORS is the browser's rule), but nothing lets the
    # browser hand the answer to the foreign page
    assert simple.status_code == 200
    assert checked.status_code == 400
    for response in (simple, checked):
        assert "access-control-allow-origin" not in response.headers
        assert response.headers["x-content-type-options"] == "nosniff"


async def test_without_cors_origins_nobody_is_allowed(app_factory: AppFactory) -> None:
    async with app_factory() as running:
        transport = httpx.ASGITransport(app=running)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
            simple = await http.get("/health", headers={"Origin": ALLOWED})
            checked = await http.options("/api/v1/settings", headers=preflight(ALLOWED))
    assert simple.status_code == 200
    assert checked.status_code == 405
    for response in (simple, checked):
        assert not any(name.startswith("access-control-") for name in response.headers)
