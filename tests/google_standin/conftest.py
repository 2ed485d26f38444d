from __future__ import annotations

from tests.google_standin.fixtures import google_standin, google_standin_factory

__all__ = ["google_standin", "google_standin_factory"]
