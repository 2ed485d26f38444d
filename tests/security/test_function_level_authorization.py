"""API5 Broken Function Level Authorization: there are no privileged functions to reach (no
admin routes, no roles, no route that names another user), and every /api/v1 operation but the
four that start a session requires a bearer access token. Operations are enumerated from the
application, so a new route is checked the moment it exists."""

from __future__ import annotations

import re

import httpx
from fastapi import FastAPI

from ai_workflow_engine.users.models import User
from tests.conftest import Users
from tests.security.conftest import API_PREFIX, api_operations, assert_unauthorized, fill_path

# The only /api/v1 operations without a bearer token: they are how one gets a token (or, for
# the OAuth callback, where Google sends the browser; the single-use `state` names the user).
PUBLIC_API = {
    ("POST", "/api/v1/auth/register"),
    ("POST", "/api/v1/auth/jwt/login"),
    ("POST", "/api/v1/auth/jwt/refresh"),
    ("GET", "/api/v1/calendar/oauth/callback"),
}
# Everything outside /api/v1: probes, metrics, the schema and its docs.
SERVICE_ROUTES = {
    ("GET", "/health"),
    ("GET", "/health/ready"),
    ("GET", "/metrics"),
    ("GET", "/openapi.json"),
    ("GET", "/docs"),
    ("GET", "/docs/oauth2-redirect"),
    ("GET", "/redoc"),
}
PRIVILEGED_WORDS = re.compile(r"admin|internal|debug|superuser|staff|manage|impersonat", re.I)


def test_nothing_outside_the_api_but_probes_metrics_and_docs(app: FastAPI) -> None:
    outside = {(op.method, op.path) for op in api_operations(app)}
    outside = {(method, path) for method, path in outside if not path.startswith(API_PREFIX)}
    assert outside == SERVICE_ROUTES


def test_no_privileged_function_exists(app: FastAPI) -> None:
    paths = {op.path for op in api_operations(app)}
    assert not [path for path in paths if PRIVILEGED_WORDS.search(path)]
    # users are reached only as "me": no route lists users or takes a user's id
    assert {path for path in paths if path.startswith("/api/v1/users")} == {"/api/v1/users/me"}
    assert not [path for path in paths if "{user" in path]
    # and there is no role or privilege flag that a bug could set
    columns = set(User.__table__.columns.keys())
    assert not {name for name in columns if PRIVILEGED_WORDS.search(name) or "role" in name}


async def test_every_api_operation_but_the_public_ones_needs_a_bearer_token(
    app: FastAPI, client: httpx.AsyncClient, users: Users
) -> None:
    user = await users.register()
    refresh_token = (await users.login(user["username"]))["refresh_token"]
    operations = [op for op in api_operations(app) if op.path.startswith(API_PREFIX)]
    protected = [op for op in operations if (op.method, op.path) not in PUBLIC_API]
    assert len(protected) == len(operations) - len(PUBLIC_API)
    assert len(protected) >= 25
    document = app.openapi()

    for op in protected:
        url = fill_path(op.path)
        for headers in (
            {},
            {"Authorization": "Bearer not-a-token"},
            {"Authorization": f"Bearer {refresh_token}"},  # a refresh token is no access token
        ):
            response = await client.request(op.method, url, headers=headers)
            assert response.status_code == 401, (op, headers, response.text)
            assert_unauthorized(response)
        # the schema says so too, so that clients and scanners know
        assert document["paths"][op.path][op.method.lower()].get("security"), op

    for method, path in PUBLIC_API:
        assert not document["paths"][path][method.lower()].get("security"), path
        response = await client.request(method, path)
        assert response.status_code != 401, (method, path, response.text)
