"""API9 Improper Inventory Management: /openapi.json lists every operation the application
serves, and nothing it does not; the only routes outside it are the schema and its docs pages."""

from __future__ import annotations

import httpx
from fastapi import FastAPI

from ai_workflow_engine import __version__
from tests.security.conftest import api_operations

UNDOCUMENTED = {
    ("GET", "/openapi.json"),
    ("GET", "/docs"),
    ("GET", "/docs/oauth2-redirect"),
    ("GET", "/redoc"),
}


async def test_the_schema_lists_every_operation_served(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    served = {(op.method, op.path) for op in api_operations(app) if op.in_schema}
    hidden = {(op.method, op.path) for op in api_operations(app) if not op.in_schema}
    response = await client.get("/openapi.json")
    document = response.json()
    listed = {
        (method.upper(), path)
        for path, item in document["paths"].items()
        for method in item
        if method in ("get", "put", "post", "patch", "delete")
    }

    assert response.status_code == 200
    assert listed == served
    assert hidden == UNDOCUMENTED
    assert document["info"]["version"] == __version__
    # one API version, all under one prefix: nothing older left reachable
    versions = {path.split("/")[2] for _, path in listed if path.startswith("/api/")}
    assert versions == {"v1"}
