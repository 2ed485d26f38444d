"""pytest fixtures for the stand-in.

Use them from a conftest with ``from tests.google_standin.fixtures import google_standin,
google_standin_factory, google_standin_hosts`` and list the names in the conftest's
``__all__``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from tests.google_standin.common import StandinConfig
from tests.google_standin.control import GoogleStandin
from tests.google_standin.server import RunningStandin, StandinHost, StandinHostPool

StandinFactory = Callable[..., RunningStandin]


@pytest.fixture(scope="session")
def google_standin_hosts() -> Iterator[StandinHostPool]:
    """uvicorn servers reused across tests (each test still gets a fresh stand-in); stopped at
    the end of the session."""
    pool = StandinHostPool()
    try:
        yield pool
    finally:
        pool.close()


@pytest.fixture
def google_standin_factory(google_standin_hosts: StandinHostPool) -> Iterator[StandinFactory]:
    """``make(config=None, *, seed=True, standin=None) -> RunningStandin``: a fresh stand-in served
    on a free 127.0.0.1 port; it is taken down when the test ends."""
    used: list[StandinHost] = []

    def make(
        config: StandinConfig | None = None,
        *,
        seed: bool = True,
        standin: GoogleStandin | None = None,
    ) -> RunningStandin:
        host = google_standin_hosts.acquire()
        used.append(host)
        return host.install(standin or GoogleStandin(config, seed=seed))

    try:
        yield make
    finally:
        for host in used:
            google_standin_hosts.release(host)


@pytest.fixture
def google_standin(google_standin_factory: StandinFactory) -> RunningStandin:
    """A running stand-in with the default OAuth client and user (``user@example.com``)."""
    return google_standin_factory()
