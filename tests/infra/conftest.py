"""Fixtures of the infrastructure tests: real pgbouncer processes, a private PostgreSQL server,
TLS material, own databases."""

from __future__ import annotations

from tests.fixtures.databases import fresh_database_url
from tests.fixtures.pgbouncer import (
    _session_launcher,
    infra_postgres_url,
    pgbouncer,
    pgbouncer_executable,
    pgbouncer_factory,
    pgbouncer_tls,
    pytest_runtest_makereport,
    tls_files,
)
from tests.fixtures.private_postgres import (
    _private_database,
    private_postgres,
    private_postgres_url,
)

__all__ = [
    "_private_database",
    "_session_launcher",
    "fresh_database_url",
    "infra_postgres_url",
    "pgbouncer",
    "pgbouncer_executable",
    "pgbouncer_factory",
    "pgbouncer_tls",
    "private_postgres",
    "private_postgres_url",
    "pytest_runtest_makereport",
    "tls_files",
]
