"""Helpers of the security review's tests (docs/security.md names each test).

The tests here use the suite's `client`, `users` and `app_factory` fixtures, so each one that
touches the database runs on SQLite and on PostgreSQL.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import fastapi.routing
import httpx
from fastapi import FastAPI
from sqlalchemy import delete

from ai_workflow_engine.users.models import User

PROBLEM = "application/problem+json"
API_PREFIX = "/api/v1/"
PATH_PARAMETER = re.compile(r"\{[^}]+\}")


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def assert_problem(response: httpx.Response, status: int) -> dict[str, Any]:
    """An RFC 9457 problem of this status; its body."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM), response.headers
    body: dict[str, Any] = response.json()
    assert body["status"] == status, body
    assert {"type", "title", "status", "detail"} <= set(body), body
    return body


def assert_unauthorized(response: httpx.Response) -> None:
    assert_problem(response, 401)
    assert response.headers.get("www-authenticate") == "Bearer", response.headers


@dataclass(frozen=True)
class Operation:
    method: str
    path: str
    in_schema: bool


def api_operations(app: FastAPI) -> list[Operation]:
    """Every operation the application serves (HEAD and OPTIONS aside), asked of the router.

    FastAPI keeps included routers as nested entries of `app.routes` in recent versions
    (`fastapi.routing.iter_route_contexts` flattens them) and as plain routes in older ones.
    """
    flatten: Any = getattr(fastapi.routing, "iter_route_contexts", None)
    routes: Iterable[Any] = app.routes if flatten is None else flatten(app.routes)
    operations = []
    for route in routes:
        methods: set[str] = getattr(route, "methods", None) or set()
        for method in sorted(methods - {"HEAD", "OPTIONS"}):
            in_schema = bool(getattr(route, "include_in_schema", False))
            operations.append(Operation(method, str(route.path), in_schema))
    assert operations, "no routes found: the enumeration no longer matches FastAPI"
    return operations


def fill_path(path: str, value: object = 1) -> str:
    return PATH_PARAMETER.sub(str(value), path)


async def delete_user(app: FastAPI, user_id: int) -> None:
    """Remove a user the way an operator would (there is no endpoint for it)."""
    async with app.state.sessionmaker() as session, session.begin():
        await session.execute(delete(User).where(User.id == user_id))
