"""Keyset pagination: the `{"items", "next_cursor"}` page and signed, opaque cursors.

A cursor is the sort key of the last item served, signed with the secret key so that a cursor the
server did not issue (or one issued for another ordering) is a 422, not a wrong page.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from typing import Annotated, Any, Generic, TypeVar

import orjson
from fastapi import Depends, Query, Request
from pydantic import BaseModel, ConfigDict

from ai_workflow_engine.core.errors import InvalidInput

T = TypeVar("T")

DEFAULT_LIMIT = 50
MAX_LIMIT = 200

LimitQuery = Annotated[int, Query(ge=1, le=MAX_LIMIT, description=f"Page size, 1-{MAX_LIMIT}.")]
CursorQuery = Annotated[
    str | None,
    Query(max_length=1024, description="`next_cursor` of the previous page; opaque."),
]


class Page(BaseModel, Generic[T]):
    model_config = ConfigDict(from_attributes=True)

    items: list[T]
    next_cursor: str | None


class CursorCodec:
    def __init__(self, secret: str) -> None:
        self._key = hashlib.sha256(b"cursor:" + secret.encode()).digest()

    def _sign(self, body: bytes) -> bytes:
        return hmac.digest(self._key, body, "sha256")[:16]

    def encode(self, scope: str, values: list[Any]) -> str:
        body = orjson.dumps([scope, values])  # compact JSON, as json.dumps with "," and ":"
        return base64.urlsafe_b64encode(self._sign(body) + body).decode().rstrip("=")

    def decode(self, scope: str, cursor: str) -> list[Any]:
        """The values a cursor carries; 422 on any cursor not issued for `scope`."""
        try:
            raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
            signature, body = raw[:16], raw[16:]
            if not hmac.compare_digest(signature, self._sign(body)):
                raise ValueError("bad signature")
            cursor_scope, values = orjson.loads(body)
            if cursor_scope != scope or not isinstance(values, list):
                raise ValueError("cursor for another listing")
        except (ValueError, TypeError) as exc:  # orjson.JSONDecodeError is a ValueError
            raise InvalidInput(
                ["query", "cursor"], "Invalid cursor; use a next_cursor from this listing"
            ) from exc
        return values


async def cursor_codec(request: Request) -> CursorCodec:  # async: no worker-thread hand-off
    codec: CursorCodec = request.app.state.cursor_codec
    return codec


CursorCodecDep = Annotated[CursorCodec, Depends(cursor_codec)]
