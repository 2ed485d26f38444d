"""pytest fixtures for the stand-in.

Use them from a conftest with ``from tests.google_standin.fixtures import google_standin,
google_standin_factory`` and list both names in the conftest's ``__all__``.
"""

from __future__ import annotations

import atexit
from collections.abc import Callable, Iterator

import pytest

from tests.google_standin.common import StandinConfig
from tests.google_standin.control import GoogleStandin
from tests.google_standin.server import RunningStandin, StandinHost, StandinHostPool

StandinFactory = Callable[..., RunningStandin]


_hosts: StandinHostPool | None = None


def standin_hosts() -> StandinHostPool:
    """The process-wide pool of uvicorn servers reused across tests (each test still gets a fresh
    stand-in). The servers stop when the interpreter exits."""
    global _hosts
    if _hosts is None:
        _hosts = StandinHostPool()
        atexit.register(_hosts.close)
    return _hosts


@pytest.fixture
def google_standin_factory() -> Iterator[StandinFactory]:
    """``make(config=None, *, seed=True, standin=None) -> RunningStandin``: a fresh stand-in served
    on a free 127.0.0.1 port; it is taken down when the test ends."""
    pool = standin_hosts()
    used: list[StandinHost] = []

    def make(
        config: StandinConfig | None = None,
        *,
        seed: bool = True,
        standin: GoogleStandin | None = None,
    ) -> RunningStandin:
        host = pool.acquire()
        used.append(host)
        return host.install(standin or GoogleStandin(config, seed=seed))

    try:
        yield make
    finally:
        for host in used:
            pool.release(host)


@pytest.fixture
def google_standin(google_standin_factory: StandinFactory) -> RunningStandin:
    """A running stand-in with the default OAuth client and user (``user@example.com``)."""
    return google_standin_factory()
