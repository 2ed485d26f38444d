"""Where the test suite finds PostgreSQL and Redis, and what to do when it cannot.

Locally a missing service skips its tests; with CI=true it fails them, so CI can never go green
without having run them.
"""

from __future__ import annotations

import os
import socket
import uuid
from typing import NoReturn
from urllib.parse import urlsplit

import pytest

POSTGRES_ADMIN_URL = os.environ.get(
    "TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def reachable(url: str, default_port: int) -> bool:
    parts = urlsplit(url)
    try:
        with socket.create_connection(
            (parts.hostname or "127.0.0.1", parts.port or default_port), 2
        ):
            return True
    except OSError:
        return False


def unavailable(message: str) -> NoReturn:
    """A service the test needs is missing: skipped locally, a failure under CI=true."""
    if IN_CI:
        pytest.fail(message + " (CI=true: these tests must run)", pytrace=False)
    pytest.skip(message)


def require(service: str, url: str, default_port: int) -> None:
    if not reachable(url, default_port):
        unavailable(f"{service} is not reachable at {url}")


def unique_name(prefix: str) -> str:
    return f"{prefix}_{os.getpid()}_{uuid.uuid4().hex[:8]}"


def postgres_url_for(database: str) -> str:
    parts = urlsplit(POSTGRES_ADMIN_URL)
    return parts._replace(path="/" + database).geturl()
