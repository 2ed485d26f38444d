"""pytest fixtures for the stand-in. In a conftest::

from tests.google_standin.fixtures import google_standin, google_standin_factory

__all__ = ["google_standin", "google_standin_factory"]
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import ExitStack

import pytest

from tests.google_standin.common import StandinConfig
from tests.google_standin.control import GoogleStandin
from tests.google_standin.server import RunningStandin, run_standin

StandinFactory = Callable[..., RunningStandin]


@pytest.fixture
def google_standin_factory() -> Iterator[StandinFactory]:
    """``make(config=None, *, seed=True, standin=None) -> RunningStandin``: start a stand-in on a
    free 127.0.0.1 port; every one started is stopped when the test ends."""
    with ExitStack() as stack:

        def make(
            config: StandinConfig | None = None,
            *,
            seed: bool = True,
            standin: GoogleStandin | None = None,
        ) -> RunningStandin:
            return stack.enter_context(run_standin(standin or GoogleStandin(config, seed=seed)))

        yield make


@pytest.fixture
def google_standin(google_standin_factory: StandinFactory) -> RunningStandin:
    """A running stand-in with the default OAuth client and user (``user@example.com``)."""
    return google_standin_factory()
