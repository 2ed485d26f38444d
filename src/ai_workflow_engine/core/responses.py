"""JSON bodies rendered straight from plain values, for the read routes that build them from rows.

The output is the same JSON the response schemas give (instants in RFC 3339 with `Z`); the route
keeps its `response_model` for the OpenAPI document, and a returned `Response` is sent as it is.
"""

from __future__ import annotations

from typing import Any

import orjson
from starlette.responses import Response

_OPTIONS = orjson.OPT_UTC_Z | orjson.OPT_NAIVE_UTC


def json_response(content: Any, status_code: int = 200) -> Response:
    """`content` (JSON values, dates, and datetimes in UTC: aware, or naive as `CompiledRead.read`
    gives them) as an application/json body."""
    return Response(
        orjson.dumps(content, option=_OPTIONS),
        status_code=status_code,
        media_type="application/json",
    )
