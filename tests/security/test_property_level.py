"""API3 Broken Object Property Level Authorization.

Input: no request body accepts a field the server owns (no mass assignment): every body schema
forbids unknown fields, and sending a server-owned field to any operation is a 422 naming it.
Output: no response carries a field that is not documented, nor a secret (password hash, token
ciphertext, sync token, PKCE verifier).

The operations are read from the OpenAPI document, so a new body or response is checked as soon
as it exists; the tables below must name each operation that takes a body.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
from fastapi import FastAPI

from ai_workflow_engine.calendar.models import Calendar
from tests.conftest import Users
from tests.security.conftest import PATH_PARAMETER, bearer

Schema = dict[str, Any]

# Fields only the server sets. None may be a request property anywhere; each is a 422 in every
# body. (Values are of a plausible type, so that the field itself is what is refused.)
SERVER_OWNED: dict[str, Any] = {
    "id": 7,
    "user_id": 1,
    "owner_id": 1,
    "created_at": "2026-01-01T00:00:00Z",
    "updated_at": "2026-01-01T00:00:00Z",
    "completed_at": "2026-01-01T00:00:00Z",
    "is_superuser": True,
    "is_admin": True,
    "is_active": True,
    "is_verified": True,
    "role": "admin",
    "hashed_password": "$argon2id$v=19$m=65536,t=3,p=4$x$y",
    "password_hash": "$argon2id$v=19$m=65536,t=3,p=4$x$y",
    "email_key": "victim@example.com",
    "username_key": "victim",
    "session_id": "s",
    "jti": "j",
    "used_at": "2026-01-01T00:00:00Z",
    "google_calendar_id": "victim@example.com",
    "primary": True,
    "sync_token": "t",
    "sync_generation": 9,
    "needs_reconnect": False,
    "account_email": "victim@example.com",
    "access_token_encrypted": "gAAAA",
    "refresh_token_encrypted": "gAAAA",
    "content_hash": "0" * 64,
}
# Maps whose keys are the user's own data, stored as a document, never columns.
FREE_FORM_MAPS = {
    "SettingsReplace.calendar_event_weights",
    "SettingsUpdate.calendar_event_weights",
    "ProfileReplace.productivity_patterns",
    "ProfileReplace.project_preferences",
    "ProfileUpdate.productivity_patterns",
    "ProfileUpdate.project_preferences",
}
SECRET_KEYS = re.compile(
    r"password|hash|secret|encrypted|cipher|verifier|sync_token|session_id|jti|^key$|_key$"
)


@dataclass
class Tour:
    """A user with one object of each kind, for calling every operation with a valid request."""

    username: str
    password: str
    headers: dict[str, str]
    refresh_token: str
    ids: dict[str, int] = field(default_factory=dict)
    registered: int = 0


Body = Callable[[Tour], dict[str, Any]]


def _new_account(tour: Tour) -> dict[str, Any]:
    tour.registered += 1
    name = f"newcomer{tour.registered}"
    return {"email": f"{name}@example.com", "username": name, "password": "another long pass"}


# A valid body for every operation that takes one.
BODIES: dict[tuple[str, str], Body] = {
    ("POST", "/api/v1/auth/register"): _new_account,
    ("POST", "/api/v1/auth/jwt/login"): lambda t: {"username": t.username, "password": t.password},
    ("POST", "/api/v1/auth/jwt/refresh"): lambda t: {"refresh_token": t.refresh_token},
    ("POST", "/api/v1/auth/jwt/logout"): lambda t: {},
    ("PUT", "/api/v1/settings"): lambda t: {"theme": "light"},
    ("PATCH", "/api/v1/settings"): lambda t: {"theme": "dark"},
    ("PUT", "/api/v1/profile"): lambda t: {"display_name": "Me"},
    ("PATCH", "/api/v1/profile"): lambda t: {"personal_goals": [{"title": "Run"}]},
    ("POST", "/api/v1/categories"): lambda t: {"name": f"Cat {len(t.ids)}-{t.registered}"},
    ("PATCH", "/api/v1/categories/{category_id}"): lambda t: {"weight": 3},
    ("POST", "/api/v1/tasks"): lambda t: {"title": "A task"},
    ("PATCH", "/api/v1/tasks/{task_id}"): lambda t: {"status": "completed"},
    ("PATCH", "/api/v1/calendar/calendars/{calendar_id}"): lambda t: {"selected": True},
}
FORM_BODIES = {("POST", "/api/v1/auth/jwt/login")}
NESTED_BODIES: list[tuple[str, str, dict[str, Any], list[str | int]]] = [
    ("PUT", "/api/v1/profile", {"personal_goals": [{"title": "Run", "id": 3}]}, [0, "id"]),
    (
        "PATCH",
        "/api/v1/profile",
        {"work_style_preferences": {"user_id": 1}},
        ["user_id"],
    ),
    (
        "PATCH",
        "/api/v1/profile",
        {"work_style_preferences": {"working_hours": {"start": "08:00", "owner_id": 1}}},
        ["working_hours", "owner_id"],
    ),
]


def resolve(document: Schema, schema: Schema) -> Schema:
    while "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        schema = document["components"]["schemas"][name]
    return schema


def object_schemas(document: Schema, schema: Schema, where: str) -> Iterator[tuple[str, Schema]]:
    """Every object schema inside `schema`, with a dotted name of where it is."""
    if "$ref" in schema:
        where = schema["$ref"].rsplit("/", 1)[-1]
    schema = resolve(document, schema)
    for key in ("anyOf", "oneOf", "allOf"):
        for branch in schema.get(key, []):
            yield from object_schemas(document, branch, where)
    if "items" in schema:
        yield from object_schemas(document, schema["items"], where)
    if schema.get("type") == "object" or "properties" in schema:
        yield where, schema
        for name, child in schema.get("properties", {}).items():
            yield from object_schemas(document, child, f"{where}.{name}")
        extra = schema.get("additionalProperties")
        if isinstance(extra, dict):
            yield from object_schemas(document, extra, f"{where}.*")


def request_bodies(document: Schema) -> Iterator[tuple[str, str, Schema]]:
    for path, item in document["paths"].items():
        for method, operation in item.items():
            for content in operation.get("requestBody", {}).get("content", {}).values():
                yield method.upper(), path, content["schema"]


def test_every_request_body_forbids_unknown_fields(app: FastAPI) -> None:
    document = app.openapi()
    open_maps = set()
    for method, path, schema in request_bodies(document):
        for where, found in object_schemas(document, schema, f"{method} {path}"):
            extra = found.get("additionalProperties", True)
            if found.get("properties"):
                assert extra is False, f"{where} accepts unknown fields"
            elif extra is not False:
                open_maps.add(where)
    # the only objects with free keys are the documents' own maps, values typed by the schema
    assert open_maps == FREE_FORM_MAPS


def test_no_request_body_has_a_server_owned_field(app: FastAPI) -> None:
    document = app.openapi()
    for method, path, schema in request_bodies(document):
        for where, found in object_schemas(document, schema, f"{method} {path}"):
            owned = set(found.get("properties", {})) & set(SERVER_OWNED)
            assert not owned, f"{where} takes {owned}"


def test_every_operation_with_a_body_has_a_valid_body_here(app: FastAPI) -> None:
    with_bodies = {(method, path) for method, path, _ in request_bodies(app.openapi())}
    assert with_bodies == set(BODIES)


async def start_tour(app: FastAPI, client: httpx.AsyncClient, users: Users) -> Tour:
    user = await users.register()
    tokens = await users.login(user["username"])
    tour = Tour(
        user["username"], user["password"], bearer(tokens["access_token"]), tokens["refresh_token"]
    )
    category = await client.post("/api/v1/categories", json={"name": "Tour"}, headers=tour.headers)
    task = await client.post("/api/v1/tasks", json={"title": "Tour"}, headers=tour.headers)
    async with app.state.sessionmaker() as session, session.begin():
        calendar = Calendar(user_id=user["id"], google_calendar_id="tour@example.com")
        session.add(calendar)
        await session.flush()
        tour.ids = {
            "category_id": category.json()["id"],
            "task_id": task.json()["id"],
            "calendar_id": calendar.id,
        }
    return tour


async def call(
    client: httpx.AsyncClient, tour: Tour, method: str, path: str, body: dict[str, Any] | None
) -> httpx.Response:
    url = PATH_PARAMETER.sub(lambda match: str(tour.ids[match.group(0)[1:-1]]), path)
    if (method, path) in FORM_BODIES:
        return await client.request(method, url, data=body, headers=tour.headers)
    return await client.request(method, url, json=body, headers=tour.headers)


async def test_server_owned_fields_are_422_in_every_body(
    app: FastAPI, client: httpx.AsyncClient, users: Users
) -> None:
    tour = await start_tour(app, client, users)
    accepted = []
    for (method, path), body in BODIES.items():
        for name, value in SERVER_OWNED.items():
            response = await call(client, tour, method, path, {**body(tour), name: value})
            locs = [e["loc"] for e in response.json().get("errors", [])]
            if response.status_code != 422 or ["body", name] not in locs:
                accepted.append((method, path, name, response.status_code))
    for method, path, body, loc in NESTED_BODIES:
        response = await call(client, tour, method, path, body)
        if response.status_code != 422:
            accepted.append((method, path, str(loc), response.status_code))
        else:
            assert [e["loc"][-len(loc) :] for e in response.json()["errors"]] == [loc]
    assert accepted == []
    # nothing the refused requests carried was applied
    me = await client.get("/api/v1/users/me", headers=tour.headers)
    assert me.json()["username"] == tour.username
    task = await call(client, tour, "GET", "/api/v1/tasks/{task_id}", None)
    assert task.json()["completed_at"] is None


def undocumented_keys(document: Schema, schema: Schema, value: Any, where: str) -> Iterator[str]:
    """Keys of `value` that its documented schema does not name."""
    schema = resolve(document, schema)
    branches = schema.get("anyOf") or schema.get("oneOf")
    if branches:
        candidates = [list(undocumented_keys(document, b, value, where)) for b in branches]
        yield from min(candidates, key=len)
        return
    if isinstance(value, list) and "items" in schema:
        for index, item in enumerate(value):
            yield from undocumented_keys(document, schema["items"], item, f"{where}[{index}]")
    elif isinstance(value, dict):
        properties = schema.get("properties", {})
        extra = schema.get("additionalProperties")
        for key, child in value.items():
            if key in properties:
                yield from undocumented_keys(document, properties[key], child, f"{where}.{key}")
            elif isinstance(extra, dict):
                yield from undocumented_keys(document, extra, child, f"{where}.{key}")
            elif extra is not True:
                yield f"{where}.{key}"


def secret_keys(value: Any, where: str) -> Iterator[str]:
    if isinstance(value, list):
        for index, item in enumerate(value):
            yield from secret_keys(item, f"{where}[{index}]")
    elif isinstance(value, dict):
        for key, child in value.items():
            if SECRET_KEYS.search(key.lower()):
                yield f"{where}.{key}"
            yield from secret_keys(child, f"{where}.{key}")


def tour_order(operation: tuple[str, str]) -> tuple[int, str]:
    method, path = operation
    if path == "/api/v1/auth/jwt/logout":
        return (9, path)  # last: it ends the tour's session
    return ({"GET": 0, "PUT": 1, "PATCH": 2, "POST": 3, "DELETE": 4}[method], path)


async def test_no_response_has_an_undocumented_or_secret_field(
    app: FastAPI, client: httpx.AsyncClient, users: Users
) -> None:
    document = app.openapi()
    tour = await start_tour(app, client, users)
    operations = sorted(
        ((method.upper(), path) for path, item in document["paths"].items() for method in item),
        key=tour_order,
    )
    findings: list[str] = []
    not_json = []
    for method, path in operations:
        body = BODIES[(method, path)](tour) if (method, path) in BODIES else None
        response = await call(client, tour, method, path, body)
        assert response.status_code < 500 or response.status_code == 503, (method, path)
        assert tour.password not in response.text
        assert "$argon2" not in response.text
        if not response.headers.get("content-type", "").endswith("json"):
            not_json.append((path, response.status_code))
            continue
        where = f"{method} {path} {response.status_code}"
        documented = document["paths"][path][method.lower()]["responses"]
        content = documented[str(response.status_code)]["content"]
        (media,) = content.values()
        payload = response.json()
        findings.extend(undocumented_keys(document, media["schema"], payload, where))
        findings.extend(secret_keys(payload, where))
        if (method, path) == ("POST", "/api/v1/auth/jwt/refresh") and response.is_success:
            tour.refresh_token = payload["refresh_token"]
    assert findings == []
    # everything else was checked: only /metrics (text) and the 204s have no JSON body
    assert all(path == "/metrics" or status == 204 for path, status in not_json), not_json
