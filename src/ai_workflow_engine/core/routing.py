"""Routers that turn away a request for another part of the API by its path prefix.

The application includes one router per area (tasks, categories, calendar...). To route a request
FastAPI asks each included router in turn whether it matches, and each router tries every one of
its routes. A `PrefixRouter` answers "no" for a path outside its prefix with one string comparison,
so a request is matched against the routes of its own area only. Every route of a router carries
the router's prefix, so no route that could match is ever skipped.
"""

from __future__ import annotations

from fastapi import APIRouter
from starlette.routing import Match
from starlette.types import Scope


class PrefixRouter(APIRouter):
    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        # behind a root path the full matching decides, as FastAPI does it
        if not scope.get("root_path") and not scope["path"].startswith(self.prefix):
            return Match.NONE, {}
        return super().matches(scope)
