"""Routing by area prefix: every route is still found, and nothing else is."""

from __future__ import annotations

import httpx
import pytest
from fastapi import FastAPI


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("GET", "/api/v1/tasks", 401),
        ("GET", "/api/v1/tasks/7", 401),
        ("GET", "/api/v1/calendar/events", 401),
        ("GET", "/api/v1/calendar/oauth/authorize", 401),
        ("GET", "/api/v1/settings", 401),
        ("GET", "/health", 200),
        ("GET", "/api/v1/tasksx", 404),  # shares the prefix string, is no route
        ("GET", "/api/v1/nothing", 404),
        ("PUT", "/api/v1/tasks", 405),
    ],
)
async def test_each_path_reaches_its_route(
    client: httpx.AsyncClient, method: str, path: str, status: int
) -> None:
    assert (await client.request(method, path)).status_code == status


async def test_routes_are_found_behind_a_root_path(app: FastAPI) -> None:
    transport = httpx.ASGITransport(app=app, root_path="/aiwe")
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        assert (await client.get("/aiwe/api/v1/tasks")).status_code == 401
        assert (await client.get("/aiwe/health")).status_code == 200
