"""Errors are RFC 9457 problems without internals; request ids and metrics on every request."""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager
from fastapi import FastAPI
from sqlalchemy import text

from ai_workflow_engine.core.db import SessionDep
from ai_workflow_engine.main import create_app
from tests.conftest import Backend, empty_tables, make_settings
from tests.infra.helpers import PROBLEM, assert_problem, bearer, login, new_user, register

BODY_LIMIT = 2048
SQL_IN_MESSAGE = "SELECT password_hash FROM users WHERE email = 'victim@example.com'"


async def _raise_runtime_error() -> None:
    raise RuntimeError(SQL_IN_MESSAGE)


async def _bad_sql(session: SessionDep) -> None:
    await session.execute(text("SELECT password_hash FROM no_such_table_for_sure"))


@pytest.fixture(scope="module")
async def app(backend: Backend) -> AsyncIterator[FastAPI]:
    """One running app per backend for this module (nothing here depends on stored data)."""
    running = create_app(make_settings(backend.url, http={"max_request_body_bytes": BODY_LIMIT}))
    # two endpoints that fail the way bugs do: an exception and a failing statement
    running.add_api_route("/api/v1/_test/crash", _raise_runtime_error, methods=["GET"])
    running.add_api_route("/api/v1/_test/bad-sql", _bad_sql, methods=["GET"])
    async with LifespanManager(running):
        try:
            yield running
        finally:
            await empty_tables(running)


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    # the server answers a crash with a 500 itself; the transport must not re-raise it
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        yield http


async def test_unknown_route_is_a_404_problem(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/v1/no-such-thing/42")
    assert_problem(response, 404)
    response = await client.get("/completely/elsewhere")
    assert_problem(response, 404)


async def test_wrong_method_is_a_405_problem(client: httpx.AsyncClient) -> None:
    response = await client.delete("/api/v1/auth/register")
    assert_problem(response, 405)
    assert "POST" in response.headers.get("allow", ""), response.headers
    response = await client.put("/health")
    assert_problem(response, 405)


async def test_malformed_json_is_a_422_with_locations(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/api/v1/auth/register",
        content=b'{"email": "a@example.com", "username": ',
        headers={"content-type": "application/json"},
    )
    body = assert_problem(response, 422)
    assert body["errors"], body
    assert all(item["loc"] and item["loc"][0] == "body" for item in body["errors"]), body

    response = await client.post("/api/v1/auth/register", json={"email": "not-an-email"})
    body = assert_problem(response, 422)
    locs = {tuple(item["loc"]) for item in body["errors"]}
    assert {("body", "email"), ("body", "username"), ("body", "password")} <= locs, locs
    for item in body["errors"]:
        assert set(item) >= {"loc", "msg", "type"}

    response = await client.post("/api/v1/auth/register", json=[1, 2, 3])
    body = assert_problem(response, 422)
    assert body["errors"][0]["loc"][0] == "body"


async def test_body_over_the_limit_is_a_413_problem(client: httpx.AsyncClient) -> None:
    big = {**new_user("big"), "username": "x" * (BODY_LIMIT + 10)}
    response = await client.post("/api/v1/auth/register", json=big)
    assert_problem(response, 413)
    assert response.headers.get("x-request-id")


async def test_streamed_body_over_the_limit_is_a_413_problem(client: httpx.AsyncClient) -> None:
    """No Content-Length up front (chunked): the limit still holds while the body arrives."""

    async def chunks() -> AsyncIterator[bytes]:
        yield b'{"email": "s@example.com", "username": "'
        for _ in range(8):
            yield b"y" * 1024
        yield b'", "password": "correct horse battery"}'

    response = await client.post(
        "/api/v1/auth/register", content=chunks(), headers={"content-type": "application/json"}
    )
    assert "content-length" not in {k.lower() for k in response.request.headers}
    assert_problem(response, 413)


async def test_body_under_the_limit_is_accepted(client: httpx.AsyncClient) -> None:
    response = await register(client, new_user("small"))
    assert response.status_code == 201, response.text


def _assert_internal_error(response: httpx.Response) -> None:
    body = assert_problem(response, 500)
    assert body["type"].endswith("/internal-error"), body
    for secret in ("password_hash", "no_such_table", "victim"):
        assert secret not in response.text, response.text


async def test_unexpected_exception_is_a_500_problem_without_internals(
    client: httpx.AsyncClient,
) -> None:
    _assert_internal_error(await client.get("/api/v1/_test/crash"))


async def test_failing_statement_is_a_500_problem_without_internals(
    client: httpx.AsyncClient,
) -> None:
    """A statement that fails on a healthy, migrated database is a bug (500), not an outage
    (503) — on SQLite too, whose driver calls "no such table" an OperationalError."""
    _assert_internal_error(await client.get("/api/v1/_test/bad-sql"))


async def test_500_carries_the_request_id(client: httpx.AsyncClient) -> None:
    """The one response where the id matters most: it is what finds the logged traceback."""
    given = f"crash-{uuid.uuid4().hex[:12]}"
    response = await client.get("/api/v1/_test/crash", headers={"X-Request-ID": given})
    assert response.status_code == 500
    assert response.headers.get("x-request-id") == given, response.headers
    response = await client.get("/api/v1/_test/crash")
    assert re.fullmatch(r"[0-9a-f]{32}", response.headers.get("x-request-id", "")), response.headers


async def test_given_request_id_is_returned(client: httpx.AsyncClient) -> None:
    given = f"client-{uuid.uuid4().hex[:12]}.retry:1"
    for path in ("/health", "/api/v1/nope", "/api/v1/_test/bad-sql"):
        response = await client.get(path, headers={"X-Request-ID": given})
        assert response.headers.get("x-request-id") == given, (path, response.headers)


async def test_missing_or_unusable_request_id_is_generated(client: httpx.AsyncClient) -> None:
    seen = set()
    unusable = [{}, {}, {"X-Request-ID": "spaces are not allowed"}, {"X-Request-ID": "x" * 500}]
    for headers in unusable:
        response = await client.get("/health", headers=headers)
        generated = response.headers.get("x-request-id", "")
        assert re.fullmatch(r"[0-9a-f]{32}", generated), generated
        seen.add(generated)
    assert len(seen) == 4


_LABEL = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')


def _samples(metrics: str, name: str) -> list[dict[str, str]]:
    """The label sets of one metric's samples in Prometheus text format."""
    rows = []
    for line in metrics.splitlines():
        if line.startswith(name + "{"):
            labels = line[len(name) + 1 : line.rindex("}")]  # values may contain braces
            rows.append(dict(_LABEL.findall(labels)))
    return rows


async def test_metrics_count_requests_by_route_template(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    user = new_user("metrics")
    assert (await register(client, user)).status_code == 201
    token = (await login(client, user["username"])).json()["access_token"]
    raw_ids = ["918273645", "564738291"]
    for raw in raw_ids:
        assert (await client.get(f"/api/v1/tasks/{raw}", headers=bearer(token))).status_code == 404
        assert (await client.get(f"/api/v1/categories/{raw}")).status_code == 401
    assert (await client.get(f"/api/v1/unknown/{raw_ids[0]}")).status_code == 404

    response = await client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    metrics = response.text
    assert all(raw not in metrics for raw in raw_ids), "raw ids leaked into metric labels"
    samples = _samples(metrics, "http_requests_total")
    routes = {(s.get("method"), s.get("route"), s.get("status")) for s in samples}
    task_routes = {r for (_m, r, _s) in routes if r and r.startswith("/api/v1/tasks/")}
    assert task_routes, routes
    assert all("{" in r for r in task_routes), task_routes
    assert any(
        m == "GET" and r and r.startswith("/api/v1/tasks/{") and s == "404" for (m, r, s) in routes
    ), routes
    assert any(
        m == "GET" and r and r.startswith("/api/v1/categories/{") and s == "401"
        for (m, r, s) in routes
    ), routes
    assert ("POST", "/api/v1/auth/register", "201") in routes
    assert "http_request_duration_seconds_bucket" in metrics


def _content_type(response: httpx.Response) -> Any:
    return response.headers.get("content-type", "")


async def test_every_error_above_is_problem_json(client: httpx.AsyncClient) -> None:
    """One sweep over the kinds of failure, checking the media type and the absence of leaks."""
    responses = [
        await client.get("/api/v1/nope"),
        await client.patch("/health"),
        await client.post(
            "/api/v1/auth/register", content=b"{", headers={"content-type": "application/json"}
        ),
        await client.get("/api/v1/users/me"),
        await client.get("/api/v1/users/me", headers=bearer("not.a.token")),
        await client.get("/api/v1/_test/crash"),
    ]
    for response in responses:
        assert response.status_code >= 400
        assert _content_type(response).startswith(PROBLEM), (response.request.url, response.text)
        assert_problem(response, response.status_code)
