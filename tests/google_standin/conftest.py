from __future__ import annotations

from tests.google_standin.fixtures import (
    google_standin,
    google_standin_factory,
    google_standin_hosts,
)

__all__ = ["google_standin", "google_standin_factory", "google_standin_hosts"]
