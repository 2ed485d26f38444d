"""API4 Unrestricted Resource Consumption: request bodies, pages, lists, free-form documents and
query strings are bounded, and every bound is a 4xx problem (never a 500 or a stack overflow);
password hashing, the one deliberately expensive operation, runs at most once per core."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI

from ai_workflow_engine.core.pagination import MAX_LIMIT
from ai_workflow_engine.core.security import PasswordHasher
from ai_workflow_engine.profile.schemas import FREE_FORM_MAX_DEPTH
from tests.security.conftest import assert_problem

DEFAULT_BODY_LIMIT = 1_048_576  # MAX_REQUEST_BODY_BYTES by default


def nested_objects(depth: int) -> str:
    """A JSON object nested `depth` levels deep (the outer object is level 1)."""
    return '{"a":' * (depth - 1) + "{}" + "}" * (depth - 1)


def nested_arrays(depth: int) -> str:
    """An object holding arrays: `depth` levels of nesting in all."""
    return '{"a":' + "[" * (depth - 1) + "]" * (depth - 1) + "}"


async def test_an_oversized_body_is_413_before_anything_reads_it(
    client: httpx.AsyncClient,
) -> None:
    big = b'{"title": "' + b"x" * DEFAULT_BODY_LIMIT + b'"}'

    async def chunked() -> AsyncIterator[bytes]:
        for start in range(0, len(big), 65536):
            yield big[start : start + 65536]

    headers = {"content-type": "application/json"}
    # no token: the size is refused before authentication, parsing or the database
    declared = await client.post("/api/v1/tasks", content=big, headers=headers)
    streamed = await client.post("/api/v1/tasks", content=chunked(), headers=headers)

    assert_problem(declared, 413)
    assert_problem(streamed, 413)


async def test_every_list_caps_its_page_size(
    app: FastAPI, client: httpx.AsyncClient, auth_headers: dict[str, str]
) -> None:
    lists = [
        path
        for path, item in app.openapi()["paths"].items()
        if any(p["name"] == "limit" for p in item.get("get", {}).get("parameters", []))
    ]
    assert len(lists) == 4, lists  # categories, tasks, calendars, events
    for path in lists:
        for limit in (MAX_LIMIT + 1, 10**9, 0, -1):
            response = await client.get(path, params={"limit": limit}, headers=auth_headers)
            body = assert_problem(response, 422)
            assert [e["loc"] for e in body["errors"]] == [["query", "limit"]], path
        at_cap = await client.get(path, params={"limit": MAX_LIMIT}, headers=auth_headers)
        assert at_cap.status_code == 200, (path, at_cap.text)


async def test_query_strings_are_bounded(
    client: httpx.AsyncClient, auth_headers: dict[str, str]
) -> None:
    for params, loc in (({"q": "x" * 201}, "q"), ({"cursor": "c" * 1025}, "cursor")):
        response = await client.get("/api/v1/tasks", params=params, headers=auth_headers)
        body = assert_problem(response, 422)
        assert [e["loc"] for e in body["errors"]] == [["query", loc]]


async def test_document_lists_are_capped(
    client: httpx.AsyncClient, auth_headers: dict[str, str]
) -> None:
    goals = [{"title": f"Goal {n}"} for n in range(101)]
    weights = {f"Event {n}": 1.0 for n in range(101)}
    cases = [
        ("/api/v1/profile", "personal_goals", goals),
        ("/api/v1/settings", "calendar_event_weights", weights),
    ]
    for path, name, too_many in cases:
        for method in ("PUT", "PATCH"):
            refused = await client.request(
                method, path, json={name: too_many}, headers=auth_headers
            )
            body = assert_problem(refused, 422)
            assert [e["loc"] for e in body["errors"]] == [["body", name]]
        at_cap = (
            too_many[:100] if isinstance(too_many, list) else dict(list(too_many.items())[:100])
        )
        accepted = await client.put(path, json={name: at_cap}, headers=auth_headers)
        assert accepted.status_code == 200, accepted.text
        assert len(accepted.json()[name]) == 100


@pytest.mark.parametrize("name", ["productivity_patterns", "project_preferences"])
async def test_free_form_documents_are_nested_at_most_the_cap(
    client: httpx.AsyncClient, auth_headers: dict[str, str], name: str
) -> None:
    headers = {**auth_headers, "content-type": "application/json"}

    def body(document: str) -> str:
        return f'{{"{name}": {document}}}'

    for method in ("PUT", "PATCH"):
        at_cap = await client.request(
            method,
            "/api/v1/profile",
            content=body(nested_objects(FREE_FORM_MAX_DEPTH)),
            headers=headers,
        )
        assert at_cap.status_code == 200, at_cap.text
        # past the cap; past the serializer's own limit (~255); past the parser's (~1000)
        for depth in (FREE_FORM_MAX_DEPTH + 1, 300, 10_000):
            for document in (nested_objects(depth), nested_arrays(depth)):
                response = await client.request(
                    method, "/api/v1/profile", content=body(document), headers=headers
                )
                problem = assert_problem(response, 422)
                assert problem["errors"][0]["loc"][0] == "body", (method, depth, problem)
    stored = await client.get("/api/v1/profile", headers=auth_headers)
    assert stored.status_code == 200


async def test_password_hashing_runs_at_most_once_per_core() -> None:
    """Each Argon2 hash costs ~64 MiB and a core: a burst of logins or registrations queues
    for the hasher instead of starving the event loop and exhausting memory."""
    hasher = PasswordHasher()
    cores = os.cpu_count() or 1
    limiter = hasher._limiter
    busiest = 0
    queued = 0

    async def watch() -> None:
        nonlocal busiest, queued
        while True:
            statistics = limiter.statistics()
            busiest = max(busiest, statistics.borrowed_tokens)
            queued = max(queued, statistics.tasks_waiting)
            await asyncio.sleep(0.005)

    watcher = asyncio.create_task(watch())
    try:
        await asyncio.gather(*(hasher.hash(f"password {n}") for n in range(cores + 2)))
    finally:
        watcher.cancel()
    assert 1 <= busiest <= cores
    assert queued >= 1
