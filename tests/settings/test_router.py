from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

from tests.conftest import Users

URL = "/api/v1/settings"

DEFAULTS: dict[str, Any] = {
    "theme": "dark",
    "timezone": "UTC",
    "notifications_enabled": True,
    "chat_model": "llama3.2:3b",
    "executive_assessment_model": "llama3.2:3b",
    "confidence_assessment_model": "llama3.2:3b",
    "tool_routing_model": "llama3.2:3b",
    "simple_planning_model": "llama3.2:3b",
    "plan_validation_model": "llama3.2:3b",
    "reflection_model": "llama3.2:3b",
    "final_response_model": "llama3.2:3b",
    "fast_conversational_model": "llama3.2:1b",
    "embeddings_model": "llama3.2:3b",
    "calendar_event_weights": {},
    "calendar_auto_sync": True,
    "calendar_sync_interval_minutes": 15,
}
MODEL_FIELDS = [name for name in DEFAULTS if name.endswith("_model")]


def assert_invalid(response: httpx.Response, loc: list[str | int]) -> None:
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert loc in [error["loc"] for error in response.json()["errors"]], response.json()


async def test_new_user_gets_every_default(
    client: httpx.AsyncClient, auth_headers: dict[str, str]
) -> None:
    response = await client.get(URL, headers=auth_headers)
    assert response.status_code == 200
    assert response.json() == DEFAULTS


async def test_patch_changes_only_the_fields_sent(
    client: httpx.AsyncClient, auth_headers: dict[str, str]
) -> None:
    changes = {"theme": "light", "timezone": "Europe/Berlin", "calendar_event_weights": {"Work": 7}}
    response = await client.patch(URL, json=changes, headers=auth_headers)
    assert response.status_code == 200
    assert response.json() == {**DEFAULTS, **changes}

    response = await client.patch(URL, json={"chat_model": "qwen2.5:7b"}, headers=auth_headers)
    assert response.json() == {**DEFAULTS, **changes, "chat_model": "qwen2.5:7b"}
    assert (await client.get(URL, headers=auth_headers)).json() == response.json()


async def test_empty_patch_returns_the_current_settings(
    client: httpx.AsyncClient, auth_headers: dict[str, str]
) -> None:
    await client.patch(URL, json={"theme": "system"}, headers=auth_headers)
    response = await client.patch(URL, json={}, headers=auth_headers)
    assert response.status_code == 200
    assert response.json() == {**DEFAULTS, "theme": "system"}


async def test_put_resets_omitted_fields_to_defaults(
    client: httpx.AsyncClient, auth_headers: dict[str, str]
) -> None:
    await client.patch(
        URL,
        json={"theme": "light", "notifications_enabled": False, "calendar_event_weights": {"a": 1}},
        headers=auth_headers,
    )
    response = await client.put(URL, json={"timezone": "Asia/Tokyo"}, headers=auth_headers)
    assert response.status_code == 200
    assert response.json() == {**DEFAULTS, "timezone": "Asia/Tokyo"}
    assert (await client.get(URL, headers=auth_headers)).json() == response.json()


async def test_put_stores_every_field(
    client: httpx.AsyncClient, auth_headers: dict[str, str]
) -> None:
    everything = {
        "theme": "system",
        "timezone": "America/Argentina/Buenos_Aires",
        "notifications_enabled": False,
        **{name: f"library/model-{i}.v2_x:q4_K_M" for i, name in enumerate(MODEL_FIELDS)},
        "calendar_event_weights": {"Deep work": 10, "Gym": 0, "Errands": 2.5},
        "calendar_auto_sync": False,
        "calendar_sync_interval_minutes": 1440,
    }
    response = await client.put(URL, json=everything, headers=auth_headers)
    assert response.status_code == 200
    assert response.json() == everything
    assert (await client.get(URL, headers=auth_headers)).json() == everything


async def test_one_users_writes_leave_another_users_settings_alone(
    client: httpx.AsyncClient, users: Users
) -> None:
    alice, bob = await users.headers(), await users.headers()
    await client.put(URL, json={"theme": "light"}, headers=bob)
    await client.patch(URL, json={"theme": "system", "timezone": "Europe/Paris"}, headers=alice)

    assert (await client.get(URL, headers=bob)).json() == {**DEFAULTS, "theme": "light"}
    await client.put(URL, json={}, headers=bob)
    assert (await client.get(URL, headers=alice)).json() == {
        **DEFAULTS,
        "theme": "system",
        "timezone": "Europe/Paris",
    }


async def test_concurrent_first_writes_all_succeed_and_merge(
    client: httpx.AsyncClient, auth_headers: dict[str, str]
) -> None:
    changes: list[dict[str, Any]] = [
        {"theme": "light"},
        {"timezone": "Europe/Rome"},
        {"notifications_enabled": False},
        {"calendar_sync_interval_minutes": 60},
    ]
    responses = await asyncio.gather(
        *(client.patch(URL, json=change, headers=auth_headers) for change in changes)
    )
    assert [response.status_code for response in responses] == [200] * len(changes)
    merged = {**DEFAULTS}
    for change in changes:
        merged |= change
    assert (await client.get(URL, headers=auth_headers)).json() == merged


@pytest.mark.parametrize("method", ["GET", "PUT", "PATCH"])
async def test_missing_token_is_401(client: httpx.AsyncClient, method: str) -> None:
    response = await client.request(method, URL, json={})
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"


async def test_invalid_token_is_401(client: httpx.AsyncClient) -> None:
    response = await client.get(URL, headers={"Authorization": "Bearer not-a-token"})
    assert response.status_code == 401


@pytest.mark.parametrize("zone", ["Mars/Olympus_Mons", "utc", "Europe/../UTC", "", "localtime"])
async def test_unknown_timezone_is_422(
    client: httpx.AsyncClient, auth_headers: dict[str, str], zone: str
) -> None:
    response = await client.patch(URL, json={"timezone": zone}, headers=auth_headers)
    assert_invalid(response, ["body", "timezone"])


@pytest.mark.parametrize("zone", ["Europe/Berlin", "America/Indiana/Knox", "Etc/GMT+5"])
async def test_iana_timezones_are_accepted(
    client: httpx.AsyncClient, auth_headers: dict[str, str], zone: str
) -> None:
    response = await client.patch(URL, json={"timezone": zone}, headers=auth_headers)
    assert response.status_code == 200
    assert response.json()["timezone"] == zone


@pytest.mark.parametrize("method", ["PUT", "PATCH"])
async def test_null_setting_is_422(
    client: httpx.AsyncClient, auth_headers: dict[str, str], method: str
) -> None:
    body = dict.fromkeys(DEFAULTS)
    response = await client.request(method, URL, json=body, headers=auth_headers)
    for field in DEFAULTS:
        assert_invalid(response, ["body", field])


@pytest.mark.parametrize("theme", ["blue", "Dark", "", 1])
async def test_unknown_theme_is_422(
    client: httpx.AsyncClient, auth_headers: dict[str, str], theme: object
) -> None:
    response = await client.put(URL, json={"theme": theme}, headers=auth_headers)
    assert_invalid(response, ["body", "theme"])


@pytest.mark.parametrize(
    "name",
    [
        "",
        "x" * 129,
        "llama3:8b:extra",
        "llama 3",
        ":latest",
        "llama3:",
        "llama3@sha256",
        "lläma3",
        "llama3\n",
    ],
)
async def test_bad_model_name_is_422(
    client: httpx.AsyncClient, auth_headers: dict[str, str], name: str
) -> None:
    response = await client.patch(URL, json=dict.fromkeys(MODEL_FIELDS, name), headers=auth_headers)
    for field in MODEL_FIELDS:
        assert_invalid(response, ["body", field])


@pytest.mark.parametrize(
    "name", ["m", "mistral", "llama3.1:70b-instruct-q4_K_M", "hf.co/org/model_v2:Q8_0", "x" * 128]
)
async def test_ollama_model_names_are_accepted(
    client: httpx.AsyncClient, auth_headers: dict[str, str], name: str
) -> None:
    response = await client.patch(URL, json={"embeddings_model": name}, headers=auth_headers)
    assert response.status_code == 200
    assert response.json()["embeddings_model"] == name


async def test_more_than_100_event_weights_is_422(
    client: httpx.AsyncClient, auth_headers: dict[str, str]
) -> None:
    weights = {f"event {i}": 1 for i in range(101)}
    response = await client.patch(
        URL, json={"calendar_event_weights": weights}, headers=auth_headers
    )
    assert_invalid(response, ["body", "calendar_event_weights"])


async def test_100_event_weights_are_accepted(
    client: httpx.AsyncClient, auth_headers: dict[str, str]
) -> None:
    weights = {f"event {i}": i % 11 for i in range(100)}
    response = await client.patch(
        URL, json={"calendar_event_weights": weights}, headers=auth_headers
    )
    assert response.status_code == 200
    assert response.json()["calendar_event_weights"] == weights


async def test_event_weight_outside_0_to_10_or_not_a_number_is_422(
    client: httpx.AsyncClient, auth_headers: dict[str, str]
) -> None:
    weights = {"a": -0.1, "b": 10.01, "c": 11, "d": "5", "e": True, "f": None, "g": [1]}
    response = await client.patch(
        URL, json={"calendar_event_weights": {**weights, "fine": 3}}, headers=auth_headers
    )
    for name in weights:
        assert_invalid(response, ["body", "calendar_event_weights", name])
    assert ["body", "calendar_event_weights", "fine"] not in [
        error["loc"] for error in response.json()["errors"]
    ]


@pytest.mark.parametrize("name", ["", "x" * 65])
async def test_event_weight_name_outside_1_to_64_characters_is_422(
    client: httpx.AsyncClient, auth_headers: dict[str, str], name: str
) -> None:
    response = await client.patch(
        URL, json={"calendar_event_weights": {name: 1}}, headers=auth_headers
    )
    assert_invalid(response, ["body", "calendar_event_weights", name, "[key]"])


async def test_event_weight_name_that_is_not_unicode_is_422(
    client: httpx.AsyncClient, auth_headers: dict[str, str]
) -> None:
    # a lone surrogate escape is valid JSON but could never be written back as UTF-8
    body = '{"calendar_event_weights": {"\\ud800": 1}}'
    headers = {**auth_headers, "Content-Type": "application/json"}
    response = await client.patch(URL, content=body, headers=headers)
    assert response.status_code == 422, response.text
    assert response.json()["errors"][0]["loc"][:2] == ["body", "calendar_event_weights"]


async def test_event_weights_must_be_an_object(
    client: httpx.AsyncClient, auth_headers: dict[str, str]
) -> None:
    response = await client.patch(
        URL, json={"calendar_event_weights": [["Gym", 1]]}, headers=auth_headers
    )
    assert_invalid(response, ["body", "calendar_event_weights"])


@pytest.mark.parametrize("minutes", [4, 1441, 0, -5, 15.5, "15"])
async def test_sync_interval_outside_5_to_1440_minutes_is_422(
    client: httpx.AsyncClient, auth_headers: dict[str, str], minutes: object
) -> None:
    response = await client.patch(
        URL, json={"calendar_sync_interval_minutes": minutes}, headers=auth_headers
    )
    assert_invalid(response, ["body", "calendar_sync_interval_minutes"])


@pytest.mark.parametrize("minutes", [5, 1440, 60.0])
async def test_sync_interval_bounds_are_accepted(
    client: httpx.AsyncClient, auth_headers: dict[str, str], minutes: int
) -> None:
    response = await client.patch(
        URL, json={"calendar_sync_interval_minutes": minutes}, headers=auth_headers
    )
    assert response.status_code == 200
    assert response.json()["calendar_sync_interval_minutes"] == minutes


@pytest.mark.parametrize("value", ["yes", 1, "true"])
async def test_switch_that_is_not_a_json_boolean_is_422(
    client: httpx.AsyncClient, auth_headers: dict[str, str], value: object
) -> None:
    switches = ["notifications_enabled", "calendar_auto_sync"]
    response = await client.patch(URL, json=dict.fromkeys(switches, value), headers=auth_headers)
    for field in switches:
        assert_invalid(response, ["body", field])


@pytest.mark.parametrize("method", ["PUT", "PATCH"])
async def test_unknown_or_read_only_field_is_422(
    client: httpx.AsyncClient, auth_headers: dict[str, str], method: str
) -> None:
    unknown = ["user_id", "updated_at", "id", "language"]
    body = {"theme": "light", **dict.fromkeys(unknown, 1)}
    response = await client.request(method, URL, json=body, headers=auth_headers)
    for field in unknown:
        assert_invalid(response, ["body", field])
    assert (await client.get(URL, headers=auth_headers)).json() == DEFAULTS


@pytest.mark.parametrize("body", [[], "light", 3])
async def test_body_that_is_not_an_object_is_422(
    client: httpx.AsyncClient, auth_headers: dict[str, str], body: object
) -> None:
    response = await client.patch(URL, json=body, headers=auth_headers)
    assert response.status_code == 422
    assert response.json()["errors"][0]["loc"][0] == "body"


async def test_rejected_write_changes_nothing(
    client: httpx.AsyncClient, auth_headers: dict[str, str]
) -> None:
    await client.patch(URL, json={"theme": "light"}, headers=auth_headers)
    response = await client.patch(
        URL, json={"theme": "system", "timezone": "Nowhere/Special"}, headers=auth_headers
    )
    assert response.status_code == 422
    assert (await client.get(URL, headers=auth_headers)).json() == {**DEFAULTS, "theme": "light"}


async def test_openapi_documents_the_settings_routes(client: httpx.AsyncClient) -> None:
    schema = (await client.get("/openapi.json")).json()
    operations = schema["paths"][URL]
    assert set(operations) == {"get", "put", "patch"}
    for method in ("put", "patch"):
        assert {"200", "401", "422"} <= set(operations[method]["responses"])
    patch_body = schema["components"]["schemas"]["SettingsUpdate"]
    assert all("default" not in field for field in patch_body["properties"].values())
