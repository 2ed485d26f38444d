"""What a running service writes to its log: JSON lines with the request's ids, and no secrets.

The service runs as a real process (`ai-workflow-engine serve` at LOG_LEVEL=DEBUG) on PostgreSQL
and Redis with the Google stand-in; its stderr is the log. A whole session goes through it, and
every secret value that passed through the service is then looked for in what it wrote.
"""

from __future__ import annotations

import json
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import psycopg
import pytest
from cryptography.fernet import Fernet
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from ai_workflow_engine.core.db import create_engine
from tests.backends import unique_name
from tests.conftest import Backend, make_settings
from tests.fixtures.databases import fresh_postgres_database
from tests.google_standin import StandinProcess, spawn_standin_process
from tests.infra.processes import (
    ApiProcess,
    delete_redis_keys,
    run_command,
    running_services,
    service_environment,
)

pytestmark = pytest.mark.slow

PASSWORD = "Tr0ub4dor&3-horse-battery"
WRONG_PASSWORD = "wrong-but-still-secret-42"


class Session:
    """A client of one API process that sends a fresh X-Request-ID with every request and
    remembers which requests were made on behalf of the user."""

    def __init__(self, base_url: str) -> None:
        self.http = httpx.Client(base_url=base_url, timeout=60, trust_env=False)
        self.ids: dict[str, str] = {}  # request id -> what it was

    def call(self, what: str, method: str, path: str, **kwargs: Any) -> httpx.Response:
        request_id = f"{what}-{uuid.uuid4().hex[:8]}"
        headers = {**kwargs.pop("headers", {}), "X-Request-ID": request_id}
        response = self.http.request(method, path, headers=headers, **kwargs)
        assert response.headers.get("x-request-id") == request_id, response.headers
        self.ids[request_id] = what
        return response


def _decrypt(key: str, ciphertext: str) -> str:
    return Fernet(key.encode()).decrypt(ciphertext.encode()).decode()


def _one_row(database_url: str, sql: str) -> tuple[Any, ...]:
    with psycopg.connect(database_url, autocommit=True) as conn:
        row = conn.execute(sql.encode()).fetchone()
    assert row is not None, sql
    return tuple(row)


@pytest.fixture(scope="module")
def standin() -> Iterator[StandinProcess]:
    with spawn_standin_process(events=30) as process:
        yield process


@pytest.fixture(scope="module")
def database_url() -> Iterator[str]:
    with fresh_postgres_database("aiwe_logs") as url:
        yield url


def test_a_full_session_logs_json_with_ids_and_no_secret(
    standin: StandinProcess,
    database_url: str,
    redis_url: str,
    tmp_path: Path,
    request: pytest.FixtureRequest,
) -> None:
    prefix = unique_name("aiwe-logs") + ":"
    request.addfinalizer(lambda: delete_redis_keys(redis_url, prefix))
    env = service_environment(
        DATABASE_URL=database_url,
        REDIS_URL=redis_url,
        REDIS_KEY_PREFIX=prefix,
        LOG_LEVEL="DEBUG",
        GOOGLE_CLIENT_ID=standin.client_id,
        GOOGLE_CLIENT_SECRET=standin.client_secret,
        GOOGLE_AUTH_URI=standin.auth_uri,
        GOOGLE_TOKEN_URI=standin.token_uri,
        GOOGLE_REVOKE_URI=standin.revoke_uri,
        GOOGLE_CALENDAR_API_BASE=standin.calendar_api_base,
    )
    fernet_key = env["TOKEN_ENCRYPTION_KEYS"]
    run_command(env, "migrate")
    api = ApiProcess("api", env, tmp_path)
    secrets: dict[str, str] = {
        "password": PASSWORD,
        "wrong password": WRONG_PASSWORD,
        "SECRET_KEY": env["SECRET_KEY"],
        "Fernet key": fernet_key,
        "client secret": standin.client_secret,
    }
    with running_services(api):
        s = Session(api.base_url)
        user = {"email": "logs@example.com", "username": "logwriter", "password": PASSWORD}
        assert s.call("register", "POST", "/api/v1/auth/register", json=user).status_code == 201
        form = {"username": "logwriter", "password": WRONG_PASSWORD}
        assert (
            s.call("login-failed", "POST", "/api/v1/auth/jwt/login", data=form).status_code == 401
        )
        form["password"] = PASSWORD
        first = s.call("login", "POST", "/api/v1/auth/jwt/login", data=form).json()
        second = s.call(
            "refresh",
            "POST",
            "/api/v1/auth/jwt/refresh",
            json={"refresh_token": first["refresh_token"]},
        ).json()
        for name, pair in (("first", first), ("second", second)):
            secrets[f"{name} access token"] = pair["access_token"]
            secrets[f"{name} refresh token"] = pair["refresh_token"]
        auth = {"Authorization": f"Bearer {second['access_token']}"}
        me = s.call("me", "GET", "/api/v1/users/me", headers=auth)
        user_id = me.json()["id"]

        # connect Google: authorize, the stand-in's consent screen, the callback with the code
        url = s.call("authorize", "GET", "/api/v1/calendar/oauth/authorize", headers=auth).json()[
            "authorization_url"
        ]
        (verifier,) = _one_row(database_url, "SELECT code_verifier_encrypted FROM oauth_states")
        secrets["PKCE verifier"] = _decrypt(fernet_key, verifier)
        consent = httpx.get(url, follow_redirects=False, timeout=10, trust_env=False)
        assert consent.status_code == 302, consent.text
        location = urlsplit(consent.headers["location"])
        query = {k: v[0] for k, v in parse_qs(location.query).items()}
        secrets["authorization code"] = query["code"]
        secrets["state"] = query["state"]
        callback = s.call("callback", "GET", f"{location.path}?{location.query}")
        assert callback.status_code == 200, callback.text
        access, refresh = _one_row(
            database_url,
            "SELECT access_token_encrypted, refresh_token_encrypted FROM google_connections",
        )
        secrets["Google access token"] = _decrypt(fernet_key, access)
        secrets["Google refresh token"] = _decrypt(fernet_key, refresh)

        assert s.call("sync", "POST", "/api/v1/calendar/sync/auto", headers=auth).status_code == 200
        assert s.call("events", "GET", "/api/v1/calendar/events", headers=auth).status_code == 200
        # a spent refresh token presented again: the session is revoked (a warning is logged)
        reuse = s.call(
            "refresh-reused",
            "POST",
            "/api/v1/auth/jwt/refresh",
            json={"refresh_token": first["refresh_token"]},
        )
        assert reuse.status_code == 401
        login_again = s.call("login-again", "POST", "/api/v1/auth/jwt/login", data=form).json()
        secrets["third access token"] = login_again["access_token"]
        secrets["third refresh token"] = login_again["refresh_token"]
        logout = s.call(
            "logout",
            "POST",
            "/api/v1/auth/jwt/logout",
            headers={"Authorization": f"Bearer {login_again['access_token']}"},
            json={"refresh_token": login_again["refresh_token"]},
        )
        assert logout.status_code == 204
        s.http.close()

    log = api.output()
    assert log.strip(), api.describe()
    # no secret, nor a telling piece of one (a JWT's signature), is anywhere in the log
    pieces = dict(secrets)
    for name, value in secrets.items():
        if name.endswith("token") and value.count(".") == 2:
            pieces[f"{name} signature"] = value.rsplit(".", 1)[1]
    leaked = [name for name, value in pieces.items() if value in log]
    assert leaked == [], f"in the log: {leaked}\n{api.describe()}"

    events = [json.loads(line) for line in api.log_lines()]  # one JSON object a line
    by_request: dict[str, list[dict[str, Any]]] = {}
    for event in events:
        if "request_id" in event:
            by_request.setdefault(event["request_id"], []).append(event)
    assert set(s.ids) <= set(by_request), set(s.ids) - set(by_request)
    for request_id, what in s.ids.items():
        lines = by_request[request_id]
        assert any(e["event"] == "request" for e in lines), lines
        if what == "register":
            continue  # nobody is signed in (yet)
        if what in ("login-failed", "login", "login-again", "callback"):
            # the user becomes known during the request: its access line names them
            lines = [e for e in lines if e["event"] == "request"]
        assert all(e.get("user_id") == user_id for e in lines), (what, lines)


def test_an_access_log_never_shows_the_query_string(tmp_path: Path) -> None:
    """Run under uvicorn directly, with its access log on (its default), the OAuth callback's
    query string (the authorization code and state) is not logged; its path is."""

    def uvicorn(port: int) -> list[str]:
        app = "ai_workflow_engine.main:create_app"
        return [sys.executable, "-m", "uvicorn", app, "--factory", "--port", str(port)]

    env = service_environment(DATA_DIR=str(tmp_path / "data"))
    server = ApiProcess("uvicorn", env, tmp_path, argv=uvicorn)
    code, state = f"code-{uuid.uuid4().hex}", f"state-{uuid.uuid4().hex}"
    with running_services(server):
        response = httpx.get(
            f"{server.base_url}/api/v1/calendar/oauth/callback",
            params={"code": code, "state": state},
            trust_env=False,
        )
        assert response.status_code == 400, response.text
    log = server.output()
    assert "GET /api/v1/calendar/oauth/callback HTTP/1.1" in log, server.describe()
    assert code not in log, server.describe()
    assert state not in log, server.describe()


async def test_database_errors_carry_no_statement_values(backend: Backend) -> None:
    """A failing statement's message (which a logged traceback shows) names no bound value."""
    secret = f"secret-{uuid.uuid4().hex}"
    engine = create_engine(make_settings(backend.url).database)
    try:
        async with engine.connect() as connection:
            with pytest.raises(DBAPIError) as caught:
                await connection.execute(
                    text("INSERT INTO no_such_table_here (value) VALUES (:value)"),
                    {"value": secret},
                )
    finally:
        await engine.dispose()
    assert "no_such_table_here" in str(caught.value)
    assert secret not in str(caught.value)
