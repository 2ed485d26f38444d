"""DATABASE_URL: the forms people paste, and what `sslmode` really does on the wire."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

import psycopg
import pytest
from pydantic import ValidationError
from sqlalchemy import text
from sqlalchemy.exc import OperationalError

from ai_workflow_engine.core.config import (
    DatabaseSettings,
    describe_settings_error,
    load_settings,
    normalize_database_url,
)
from ai_workflow_engine.core.db import create_engine
from tests.conftest import make_settings
from tests.fixtures.pgbouncer import PgBouncer, PgBouncerLauncher
from tests.fixtures.tls import TlsFiles
from tests.infra.helpers import assert_problem, new_user, register, running_app

PASSWORD = "pa55-Wörd_never-shown"
OLD_DEPLOYMENT_URL = (
    "postgresql+psycopg2://app_user:secret@127.0.0.1:6432/ai_workflow_db?sslmode=require"
)

# -- normalisation ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "raw",
    [
        f"postgres://app:{PASSWORD}@db.example:5433/appdb",
        f"postgresql://app:{PASSWORD}@db.example:5433/appdb",
        f"postgresql+psycopg2://app:{PASSWORD}@db.example:5433/appdb",
        f"postgresql+asyncpg://app:{PASSWORD}@db.example:5433/appdb",
        f"postgresql+psycopg://app:{PASSWORD}@db.example:5433/appdb",
    ],
)
def test_postgres_forms_map_to_the_async_psycopg_driver(raw: str) -> None:
    url = normalize_database_url(raw)
    assert url.drivername == "postgresql+psycopg"
    assert (url.username, url.password, url.host, url.port, url.database) == (
        "app",
        PASSWORD,
        "db.example",
        5433,
        "appdb",
    )
    assert dict(url.query) == {}


def test_old_deployment_url_keeps_sslmode() -> None:
    url = normalize_database_url(OLD_DEPLOYMENT_URL)
    assert url.drivername == "postgresql+psycopg"
    assert (url.username, url.password, url.host, url.port, url.database) == (
        "app_user",
        "secret",
        "127.0.0.1",
        6432,
        "ai_workflow_db",
    )
    assert dict(url.query) == {"sslmode": "require"}
    settings = DatabaseSettings(database_url=OLD_DEPLOYMENT_URL)
    assert settings.url == url
    assert not settings.is_sqlite


@pytest.mark.parametrize(
    ("query", "sslmode"),
    [("ssl=require", "require"), ("ssl=true", "require"), ("ssl=verify-full", "verify-full")],
)
def test_asyncpg_ssl_spelling_becomes_sslmode(query: str, sslmode: str) -> None:
    url = normalize_database_url(f"postgresql+asyncpg://app:{PASSWORD}@db.example/appdb?{query}")
    assert url.drivername == "postgresql+psycopg"
    assert dict(url.query) == {"sslmode": sslmode}


def test_libpq_parameters_are_kept() -> None:
    url = normalize_database_url(
        "postgresql://app@db.example/appdb?sslmode=verify-full&sslrootcert=/etc/ca.pem"
        "&connect_timeout=4&application_name=aiwe"
    )
    assert dict(url.query) == {
        "sslmode": "verify-full",
        "sslrootcert": "/etc/ca.pem",
        "connect_timeout": "4",
        "application_name": "aiwe",
    }


@pytest.mark.parametrize(
    ("raw", "database"),
    [
        ("sqlite:///relative/dir/app.db", "relative/dir/app.db"),
        ("sqlite:////srv/data/app.db", "/srv/data/app.db"),
        ("sqlite+aiosqlite:////srv/data/app.db", "/srv/data/app.db"),
    ],
)
def test_sqlite_forms_map_to_aiosqlite(raw: str, database: str) -> None:
    url = normalize_database_url(raw)
    assert url.drivername == "sqlite+aiosqlite"
    assert url.database == database
    assert DatabaseSettings(database_url=raw).is_sqlite


def test_default_is_a_sqlite_file_in_the_data_dir(tmp_path: Path) -> None:
    settings = DatabaseSettings(data_dir=tmp_path)
    assert settings.is_sqlite
    assert settings.url.drivername == "sqlite+aiosqlite"
    assert settings.url.database is not None
    assert settings.url.database.startswith(str(tmp_path))


# short on purpose: pydantic abbreviates long inputs in its messages, which would hide a leak
PW = "pw-7f3k9q"
BAD_URLS = [
    pytest.param(f"postgres://a:{PW}@h/d?sslmode=on", "sslmode", id="bad-sslmode"),
    pytest.param(f"postgresql+asyncpg://a:{PW}@h/d?ssl=maybe", "sslmode", id="bad-asyncpg-ssl"),
    pytest.param(f"postgres://a:{PW}@h/d?pool=5", "pool", id="unknown-parameter"),
    pytest.param(f"mysql://a:{PW}@h/d", "mysql", id="unsupported-scheme"),
    pytest.param(f"postgres://a:{PW}@h:port/d", "not a valid", id="unparsable"),
]


@pytest.mark.parametrize(("raw", "names"), BAD_URLS)
def test_bad_url_is_a_clear_error_without_the_password(raw: str, names: str) -> None:
    with pytest.raises(ValueError, match="DATABASE_URL") as caught:
        normalize_database_url(raw)
    message = str(caught.value)
    assert names in message
    assert PW not in message


@pytest.mark.parametrize(("raw", "names"), BAD_URLS)
def test_bad_url_in_settings_names_database_url_without_the_password(
    raw: str, names: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DATABASE_URL", raw)
    with pytest.raises(ValidationError) as caught:
        load_settings()
    line = describe_settings_error(caught.value)
    assert "\n" not in line
    assert "DATABASE_URL" in line
    assert names in line
    assert PW not in line


@pytest.mark.parametrize(("raw", "names"), BAD_URLS)
def test_settings_error_itself_does_not_carry_the_password(
    raw: str, names: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The exception ends up in tracebacks and logs (a worker's start-up, a script), so its text
    must not echo the URL it refused either."""
    monkeypatch.setenv("DATABASE_URL", raw)
    with pytest.raises(ValidationError) as caught:
        load_settings()
    assert names in str(caught.value)
    assert PW not in str(caught.value)
    assert PW not in repr(caught.value)


# -- production guards -----------------------------------------------------------------------

SHORT_SECRET = "short-but-secret-value"


@pytest.mark.parametrize(
    "secret",
    [None, "change-me-development-only", SHORT_SECRET, ""],
    ids=["missing", "default", "short", "empty"],
)
def test_production_refuses_a_weak_secret_key(
    secret: str | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ENVIRONMENT", "production")
    if secret is None:
        monkeypatch.delenv("SECRET_KEY", raising=False)
    else:
        monkeypatch.setenv("SECRET_KEY", secret)
    with pytest.raises(ValidationError) as caught:
        load_settings()
    line = describe_settings_error(caught.value)
    assert "\n" not in line
    assert "SECRET_KEY" in line
    if secret:
        assert secret not in line
        assert secret not in str(caught.value)


def test_production_accepts_a_strong_secret_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ENVIRONMENT", "production")
    monkeypatch.setenv("SECRET_KEY", "Zq4v1Hq8bq0kX2pC7yT9mN3rL5sW6dF0gJ8hK1")
    settings = load_settings()
    assert settings.environment == "production"


# -- sslmode on the wire -------------------------------------------------------------------


def _with_port(url: str, port: int, database: str) -> str:
    """The old deployment's URL, pointed at this test's server."""
    parts = urlsplit(url)
    return parts._replace(netloc=f"postgres@127.0.0.1:{port}", path=f"/{database}").geturl()


async def _client_tls(bouncer: PgBouncer, url: str, name: str) -> list[str]:
    """Run the app on `url` and report how pgbouncer sees its connections (TLS or "")."""
    async with running_app(make_settings(url)) as (_app, client):
        ready = await client.get("/health/ready")
        assert ready.status_code == 200, ready.text
        return [
            str(row["tls"]) for row in bouncer.clients("app") if row["application_name"] == name
        ]


async def test_sslmode_require_through_pgbouncer_uses_tls(
    pgbouncer_factory: PgBouncerLauncher,
) -> None:
    """pgbouncer here offers TLS but does not insist: what the connection uses is the client's
    choice, so this shows the URL's sslmode is what decides."""
    bouncer = pgbouncer_factory.create(tls=True, client_tls_sslmode="allow", name="tls-optional")
    old_form = _with_port(OLD_DEPLOYMENT_URL, bouncer.port, "app") + "&application_name=aiwe-req"
    required = await _client_tls(bouncer, old_form, "aiwe-req")
    assert required, "the app's connections did not show up in pgbouncer"
    assert all(tls.startswith("TLS") for tls in required), required

    disabled = await _client_tls(
        bouncer, bouncer.url("app", sslmode="disable", application_name="aiwe-off"), "aiwe-off"
    )
    assert disabled
    assert all(tls == "" for tls in disabled), disabled

    # and from the driver's side: the app's own engine, with the old deployment's URL
    engine = create_engine(DatabaseSettings(database_url=old_form))
    try:
        async with engine.connect() as connection:
            raw = await connection.get_raw_connection()
            pgconn = raw.driver_connection.pgconn  # type: ignore[union-attr]
            assert pgconn.ssl_in_use
            assert await connection.scalar(text("SELECT 1")) == 1
    finally:
        await engine.dispose()


async def test_pgbouncer_tls_refuses_plaintext(pgbouncer_tls: PgBouncer) -> None:
    """So a connection that works with sslmode=require cannot have been plaintext."""
    with pytest.raises(psycopg.OperationalError, match="SSL required"):
        psycopg.connect(pgbouncer_tls.conninfo("app", sslmode="disable")).close()
    url = pgbouncer_tls.url("app", sslmode="disable")
    async with running_app(make_settings(url)) as (_app, client):
        assert_problem(await register(client, new_user("plain")), 503)


async def test_sslmode_require_against_a_server_without_tls_fails(
    infra_postgres_url: str,
) -> None:
    """The test PostgreSQL server has SSL off: `require` must fail, never fall back."""
    plain = f"{infra_postgres_url}?sslmode=require"
    engine = create_engine(DatabaseSettings(database_url=plain))
    try:
        with pytest.raises(OperationalError, match="does not support SSL"):
            async with engine.connect() as connection:
                await connection.execute(text("SELECT 1"))
    finally:
        await engine.dispose()

    async with running_app(make_settings(plain)) as (_app, client):
        response = await register(client, new_user("nossl"))
        assert_problem(response, 503)
        assert response.headers.get("retry-after")
        ready = await client.get("/health/ready")
        assert ready.status_code == 503
        assert ready.json()["checks"]["database"] != "ok"

    # control: the same server and database, with the default sslmode, answer
    async with running_app(make_settings(infra_postgres_url)) as (_app, client):
        ready = await client.get("/health/ready")
        assert ready.status_code == 200, ready.text


def _verify_cases(tls: TlsFiles) -> list[tuple[str, str, bool]]:
    return [
        # (host, sslrootcert, connects)
        ("127.0.0.1", str(tls.untrusted_ca_cert), False),  # chain not trusted
        ("localhost", str(tls.untrusted_ca_cert), False),
        ("localhost", "system", False),  # a private CA is not in the system store
        ("127.0.0.1", str(tls.ca_cert), False),  # trusted, but not the name in the certificate
        (tls.server_name, str(tls.ca_cert), True),
    ]


async def test_sslmode_verify_full(pgbouncer_tls: PgBouncer, tls_files: TlsFiles) -> None:
    outcomes = []
    for host, rootcert, connects in _verify_cases(tls_files):
        url = pgbouncer_tls.url("app", host=host, sslmode="verify-full", sslrootcert=rootcert)
        async with running_app(make_settings(url)) as (app, client):
            ready = await client.get("/health/ready")
            # a well-formed token of nobody: 401 once the database answered, 503 if it did not
            token = app.state.token_codec.issue(10**9, "verify-full", "access")[0]
            me = await client.get("/api/v1/users/me", headers={"Authorization": f"Bearer {token}"})
        outcomes.append((host, rootcert, connects, ready.status_code, me.status_code))
        if connects:
            assert ready.status_code == 200, ready.text
            assert me.status_code == 401, me.text
        else:
            assert ready.status_code == 503, (host, rootcert, ready.text)
            assert_problem(me, 503)
    assert [o[2] for o in outcomes].count(True) == 1, outcomes
