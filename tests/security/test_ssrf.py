"""API7 Server Side Request Forgery: the server fetches only the addresses in its settings
(Google's endpoints, Ollama). No input names an address, and the OAuth redirect address is built
from PUBLIC_BASE_URL, never from the request's Host or forwarding headers."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
from fastapi import FastAPI

from tests.conftest import AppFactory, Users
from tests.security.conftest import bearer

ADDRESS_LIKE = re.compile(
    r"url|uri|href|host|domain|endpoint|webhook|callback|redirect|address|server|proxy|link", re.I
)
PUBLIC_BASE_URL = "https://api.example.com"
GOOGLE_AUTH_URI = "https://accounts.example.com/o/oauth2/v2/auth"


def input_names(document: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    """(operation, name, schema) of every parameter and body property, nested ones included."""
    schemas = document["components"]["schemas"]

    def walk(where: str, schema: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
        if "$ref" in schema:
            schema = schemas[schema["$ref"].rsplit("/", 1)[-1]]
        for key in ("anyOf", "oneOf", "allOf"):
            for branch in schema.get(key, []):
                yield from walk(where, branch)
        if "items" in schema:
            yield from walk(where, schema["items"])
        for name, child in schema.get("properties", {}).items():
            yield where, name, child
            yield from walk(f"{where}.{name}", child)

    for path, item in document["paths"].items():
        for method, operation in item.items():
            where = f"{method.upper()} {path}"
            for parameter in operation.get("parameters", []):
                yield where, parameter["name"], parameter.get("schema", {})
            for content in operation.get("requestBody", {}).get("content", {}).values():
                yield from walk(where, content["schema"])


def test_no_input_is_an_address(app: FastAPI) -> None:
    inputs = list(input_names(app.openapi()))
    assert len(inputs) > 50  # the walk reaches the nested bodies
    for where, name, schema in inputs:
        assert not ADDRESS_LIKE.search(name), (where, name)
        assert schema.get("format") not in ("uri", "url", "hostname", "ipv4", "ipv6"), (where, name)


async def test_the_oauth_redirect_ignores_the_requests_host(
    app_factory: AppFactory,
) -> None:
    google = {
        "google_client_id": "client",
        "google_client_secret": "secret",
        "google_auth_uri": GOOGLE_AUTH_URI,
        "public_base_url": PUBLIC_BASE_URL,
    }
    async with app_factory(google=google) as running:
        transport = httpx.ASGITransport(app=running)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
            users = Users(http)
            user = await users.register()
            headers = bearer((await users.login(user["username"]))["access_token"])
            response = await http.get(
                "/api/v1/calendar/oauth/authorize",
                headers={
                    **headers,
                    "Host": "evil.example.net",
                    "X-Forwarded-Host": "evil.example.net",
                    "X-Forwarded-Proto": "http",
                    "Forwarded": "host=evil.example.net;proto=http",
                },
            )
    assert response.status_code == 200, response.text
    url = response.json()["authorization_url"]
    assert url.startswith(GOOGLE_AUTH_URI + "?")
    (redirect_uri,) = parse_qs(urlsplit(url).query)["redirect_uri"]
    assert redirect_uri == PUBLIC_BASE_URL + "/api/v1/calendar/oauth/callback"
    assert "evil" not in url
