"""API8 Security Misconfiguration, headers: every response — success, every kind of error, the
unexpected 500, /metrics, /openapi.json — carries the security headers; the docs pages get a
policy that lets exactly their own assets load; HSTS goes with an https address."""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from fastapi import FastAPI

from ai_workflow_engine.core.security_headers import API_CONTENT_SECURITY_POLICY
from tests.conftest import AppFactory, Users
from tests.security.conftest import bearer

BASELINE = {
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "no-referrer",
    "cache-control": "no-store",
}
BODY_LIMIT = 4096
DOCS_PAGES = ("/docs", "/redoc", "/docs/oauth2-redirect")


async def _crash() -> None:
    raise RuntimeError("a bug")


@pytest.fixture
async def app(app_factory: AppFactory) -> AsyncIterator[FastAPI]:
    async with app_factory(http={"max_request_body_bytes": BODY_LIMIT}) as running:
        running.add_api_route("/api/v1/_test/crash", _crash, methods=["GET"])
        yield running


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        yield http


def assert_baseline(response: httpx.Response, where: str) -> None:
    for name, value in BASELINE.items():
        assert response.headers.get(name) == value, (where, name, response.headers)
    assert "strict-transport-security" not in response.headers, where  # http address


async def test_every_kind_of_response_carries_the_headers(
    client: httpx.AsyncClient, users: Users
) -> None:
    user = await users.register()
    tokens = await users.login(user["username"])
    headers = bearer(tokens["access_token"])
    task = await client.post("/api/v1/tasks", json={"title": "t"}, headers=headers)
    refresh = {"refresh_token": tokens["refresh_token"]}
    # expected status, method, path, request arguments
    requests: list[tuple[int, str, str, dict[str, Any]]] = [
        (200, "GET", "/api/v1/users/me", {"headers": headers}),
        (200, "POST", "/api/v1/auth/jwt/refresh", {"json": refresh}),
        (204, "DELETE", f"/api/v1/tasks/{task.json()['id']}", {"headers": headers}),
        (401, "GET", "/api/v1/users/me", {}),
        (404, "GET", "/nowhere", {}),
        (404, "GET", "/api/v1/tasks/999999", {"headers": headers}),
        (405, "DELETE", "/health", {}),
        (413, "POST", "/api/v1/tasks", {"content": b"x" * (BODY_LIMIT + 1)}),
        (422, "POST", "/api/v1/tasks", {"json": {}, "headers": headers}),
        (500, "GET", "/api/v1/_test/crash", {}),
        (200, "GET", "/health", {}),
        (200, "GET", "/health/ready", {}),
        (200, "GET", "/metrics", {}),
        (200, "GET", "/openapi.json", {}),
    ]
    for status, method, path, kwargs in requests:
        response = await client.request(method, path, **kwargs)
        where = f"{method} {path}"
        assert response.status_code == status, (where, response.text)
        assert_baseline(response, where)
        assert response.headers.get("content-security-policy") == API_CONTENT_SECURITY_POLICY


def sha256_source(script: bytes) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(script).digest()).decode() + "'"


def directives(policy: str) -> dict[str, list[str]]:
    parsed = {}
    for part in policy.split(";"):
        name, *sources = part.split()
        parsed[name] = sources
    return parsed


def origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


@pytest.mark.parametrize("path", DOCS_PAGES)
async def test_docs_pages_may_load_their_own_assets_and_nothing_else(
    client: httpx.AsyncClient, path: str
) -> None:
    response = await client.get(path)

    assert response.status_code == 200
    assert_baseline(response, path)
    policy = directives(response.headers["content-security-policy"])
    assert policy["default-src"] == ["'none'"]
    assert policy["frame-ancestors"] == ["'none'"]
    assert "'unsafe-inline'" not in policy["script-src"]
    assert "'unsafe-eval'" not in policy["script-src"]
    page = response.content
    inline = re.findall(rb"<script>(.*?)</script>", page, re.DOTALL)
    assert bool(inline) == (path != "/redoc")  # Swagger UI starts itself inline, ReDoc not
    for script in inline:
        assert sha256_source(script) in policy["script-src"]
    # every asset the page names comes from an origin its directive allows
    for src in re.findall(rb'<script src="([^"]+)"', page):
        assert origin(src.decode()) in policy["script-src"]
    for tag in re.findall(rb"<link [^>]+>", page):
        href = re.search(rb'href="([^"]+)"', tag)
        assert href is not None
        directive = "style-src" if b"stylesheet" in tag else "img-src"
        assert origin(href.group(1).decode()) in policy[directive], tag
    assert "'self'" in policy["connect-src"]  # the schema, and "Try it out"


async def test_hsts_goes_with_an_https_address(app_factory: AppFactory) -> None:
    https = {"public_base_url": "https://api.example.com"}
    cases = [
        ({"google": https}, "max-age=31536000"),
        ({"google": https, "http": {"hsts_max_age_seconds": 600}}, "max-age=600"),
        ({"google": https, "http": {"hsts_max_age_seconds": 0}}, None),
        ({}, None),
    ]
    for overrides, expected in cases:
        async with app_factory(**overrides) as running:
            transport = httpx.ASGITransport(app=running)
            async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
                for path in ("/health", "/nowhere", "/docs"):
                    response = await http.get(path)
                    assert response.headers.get("strict-transport-security") == expected, path


async def test_docs_can_be_switched_off_and_the_schema_stays(app_factory: AppFactory) -> None:
    async with app_factory(http={"docs_enabled": False}) as running:
        transport = httpx.ASGITransport(app=running)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
            for path in DOCS_PAGES:
                response = await http.get(path)
                assert response.status_code == 404, path
                assert_baseline(response, path)
            schema = await http.get("/openapi.json")
            assert schema.status_code == 200
            assert "/api/v1/tasks" in schema.json()["paths"]
