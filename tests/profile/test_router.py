from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from tests.conftest import Users

URL = "/api/v1/profile"

DEFAULT_WORK_STYLE: dict[str, Any] = {
    "working_hours": {"start": "09:00", "end": "17:00"},
    "working_days": [1, 2, 3, 4, 5],
    "focus_block_minutes": 90,
    "break_minutes": 15,
}
DEFAULTS: dict[str, Any] = {
    "display_name": None,
    "mission_statement": None,
    "personal_goals": [],
    "work_style_preferences": DEFAULT_WORK_STYLE,
    "productivity_patterns": {},
    "project_preferences": {},
}
GOAL_DEFAULTS: dict[str, Any] = {
    "description": None,
    "horizon": "medium",
    "target_date": None,
    "category": None,
}


def error_locs(response: httpx.Response) -> list[list[str | int]]:
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    return [error["loc"] for error in response.json()["errors"]]


def assert_invalid(response: httpx.Response, loc: list[str | int]) -> None:
    assert loc in error_locs(response), response.json()


def compact_json_size(value: object) -> int:
    return len(json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode("utf-8"))


async def test_new_user_gets_the_default_profile(
    client: httpx.AsyncClient, auth_headers: dict[str, str]
) -> None:
    response = await client.get(URL, headers=auth_headers)
    assert response.status_code == 200
    assert response.json() == DEFAULTS


async def test_put_stores_the_whole_profile(
    client: httpx.AsyncClient, auth_headers: dict[str, str]
) -> None:
    profile = {
        "display_name": "Ada",
        "mission_statement": "Ship calm, useful software.",
        "personal_goals": [
            {
                "title": "Run a marathon",
                "description": "Under four hours",
                "horizon": "long",
                "target_date": "2027-10-10",
                "category": "Fitness",
            },
            {"title": "Read 12 books", **GOAL_DEFAULTS},
        ],
        "work_style_preferences": {
            "working_hours": {"start": "08:30", "end": "16:45"},
            "working_days": [1, 2, 3, 4],
            "focus_block_minutes": 45,
            "break_minutes": 0,
        },
        "productivity_patterns": {"peak_hours": ["09:00", "11:00"], "nested": {"a": [1, None]}},
        "project_preferences": {"methodology": "kanban", "ratio": 0.5, "ok": True},
    }
    response = await client.put(URL, json=profile, headers=auth_headers)
    assert response.status_code == 200
    assert response.json() == profile
    assert (await client.get(URL, headers=auth_headers)).json() == profile


async def test_goal_and_work_style_keys_left_out_get_their_defaults(
    client: httpx.AsyncClient, auth_headers: dict[str, str]
) -> None:
    response = await client.put(
        URL,
        json={"personal_goals": [{"title": "Learn Go"}], "work_style_preferences": {}},
        headers=auth_headers,
    )
    assert response.status_code == 200
    assert response.json()["personal_goals"] == [{"title": "Learn Go", **GOAL_DEFAULTS}]
    assert response.json()["work_style_preferences"] == DEFAULT_WORK_STYLE


async def test_put_resets_omitted_fields_to_defaults(
    client: httpx.AsyncClient, auth_headers: dict[str, str]
) -> None:
    await client.put(
        URL,
        json={
            "display_name": "Ada",
            "personal_goals": [{"title": "Learn Go"}],
            "work_style_preferences": {"focus_block_minutes": 30},
            "project_preferences": {"x": 1},
        },
        headers=auth_headers,
    )
    response = await client.put(
        URL, json={"mission_statement": "Less, better."}, headers=auth_headers
    )
    assert response.status_code == 200
    assert response.json() == {**DEFAULTS, "mission_statement": "Less, better."}
    assert (await client.get(URL, headers=auth_headers)).json() == response.json()


async def test_patch_merges_top_level_fields(
    client: httpx.AsyncClient, auth_headers: dict[str, str]
) -> None:
    await client.patch(URL, json={"display_name": "Ada"}, headers=auth_headers)
    response = await client.patch(
        URL, json={"productivity_patterns": {"morning": True}}, headers=auth_headers
    )
    assert response.status_code == 200
    expected = {**DEFAULTS, "display_name": "Ada", "productivity_patterns": {"morning": True}}
    assert response.json() == expected
    assert (await client.get(URL, headers=auth_headers)).json() == expected


async def test_patch_with_a_nested_object_replaces_it_whole(
    client: httpx.AsyncClient, auth_headers: dict[str, str]
) -> None:
    await client.patch(
        URL,
        json={
            "work_style_preferences": {
                "working_hours": {"start": "07:00", "end": "15:00"},
                "working_days": [2, 4],
                "focus_block_minutes": 120,
                "break_minutes": 5,
            },
            "productivity_patterns": {"a": 1, "b": 2},
        },
        headers=auth_headers,
    )
    response = await client.patch(
        URL,
        json={"work_style_preferences": {"break_minutes": 30}, "productivity_patterns": {"c": 3}},
        headers=auth_headers,
    )
    assert response.status_code == 200
    assert response.json()["work_style_preferences"] == {**DEFAULT_WORK_STYLE, "break_minutes": 30}
    assert response.json()["productivity_patterns"] == {"c": 3}


async def test_patch_can_clear_nullable_fields(
    client: httpx.AsyncClient, auth_headers: dict[str, str]
) -> None:
    await client.put(
        URL, json={"display_name": "Ada", "mission_statement": "M"}, headers=auth_headers
    )
    response = await client.patch(URL, json={"display_name": None}, headers=auth_headers)
    assert response.status_code == 200
    assert response.json()["display_name"] is None
    assert response.json()["mission_statement"] == "M"


@pytest.mark.parametrize(
    ("sent", "written_back"),
    [("09:00", "09:00"), ("9:05", "09:05"), ("08:30:00", "08:30"), ("00:00", "00:00")],
)
async def test_working_hours_are_written_back_as_hh_mm(
    client: httpx.AsyncClient, auth_headers: dict[str, str], sent: str, written_back: str
) -> None:
    body = {"work_style_preferences": {"working_hours": {"start": sent, "end": "23:59"}}}
    response = await client.patch(URL, json=body, headers=auth_headers)
    assert response.status_code == 200
    assert response.json()["work_style_preferences"]["working_hours"] == {
        "start": written_back,
        "end": "23:59",
    }
    stored = (await client.get(URL, headers=auth_headers)).json()
    assert stored["work_style_preferences"]["working_hours"]["start"] == written_back


@pytest.mark.parametrize(
    "hours",
    [
        {"start": "17:00", "end": "09:00"},
        {"start": "12:00", "end": "12:00"},
        {"start": "18:00"},  # after the default end
        {"end": "08:00"},  # before the default start
        {"start": "9:00", "end": "09:00:00"},
    ],
)
async def test_start_not_before_end_is_422(
    client: httpx.AsyncClient, auth_headers: dict[str, str], hours: dict[str, str]
) -> None:
    body = {"work_style_preferences": {"working_hours": hours}}
    response = await client.put(URL, json=body, headers=auth_headers)
    assert_invalid(response, ["body", "work_style_preferences", "working_hours"])


async def test_malformed_times_are_422(
    client: httpx.AsyncClient, auth_headers: dict[str, str]
) -> None:
    for bad in ["24:00", "9", "09:60", "09:00:30", "9am", "", "09:00+01:00", 900, None]:
        body = {"work_style_preferences": {"working_hours": {"start": bad, "end": bad}}}
        response = await client.patch(URL, json=body, headers=auth_headers)
        for end in ("start", "end"):
            assert_invalid(response, ["body", "work_style_preferences", "working_hours", end])


@pytest.mark.parametrize("days", [[1, 1], [1, 2, 3, 2], [0], [8], [1, "2"], [True], "12345", None])
async def test_working_days_not_distinct_iso_weekdays_is_422(
    client: httpx.AsyncClient, auth_headers: dict[str, str], days: object
) -> None:
    body = {"work_style_preferences": {"working_days": days}}
    response = await client.patch(URL, json=body, headers=auth_headers)
    assert response.status_code == 422
    loc = response.json()["errors"][0]["loc"]
    assert loc[:3] == ["body", "work_style_preferences", "working_days"]


async def test_working_days_keep_the_order_sent(
    client: httpx.AsyncClient, auth_headers: dict[str, str]
) -> None:
    body = {"work_style_preferences": {"working_days": [7, 1, 3]}}
    response = await client.patch(URL, json=body, headers=auth_headers)
    assert response.status_code == 200
    assert response.json()["work_style_preferences"]["working_days"] == [7, 1, 3]


async def test_work_style_minutes_out_of_range_are_422(
    client: httpx.AsyncClient, auth_headers: dict[str, str]
) -> None:
    for focus, pause in [(14, -1), (241, 61), (None, None), ("90", "15"), (90.5, 1.5)]:
        body = {"work_style_preferences": {"focus_block_minutes": focus, "break_minutes": pause}}
        response = await client.patch(URL, json=body, headers=auth_headers)
        assert_invalid(response, ["body", "work_style_preferences", "focus_block_minutes"])
        assert_invalid(response, ["body", "work_style_preferences", "break_minutes"])

    body = {"work_style_preferences": {"focus_block_minutes": 240, "break_minutes": 60}}
    assert (await client.patch(URL, json=body, headers=auth_headers)).status_code == 200
    body = {"work_style_preferences": {"focus_block_minutes": 15, "break_minutes": 0}}
    assert (await client.patch(URL, json=body, headers=auth_headers)).status_code == 200


async def test_work_style_numbers_may_be_whole_floats(
    client: httpx.AsyncClient, auth_headers: dict[str, str]
) -> None:
    # JSON does not tell 30 from 30.0; both are the integer the schema asks for
    body = {
        "work_style_preferences": {
            "working_days": [1.0, 3],
            "focus_block_minutes": 30.0,
            "break_minutes": 5,
        }
    }
    response = await client.patch(URL, json=body, headers=auth_headers)
    assert response.status_code == 200
    work_style = response.json()["work_style_preferences"]
    assert (work_style["working_days"], work_style["focus_block_minutes"]) == ([1, 3], 30)


async def test_unknown_keys_in_work_style_are_422(
    client: httpx.AsyncClient, auth_headers: dict[str, str]
) -> None:
    body = {
        "work_style_preferences": {"lunch_minutes": 30, "working_hours": {"timezone": "UTC"}},
    }
    response = await client.patch(URL, json=body, headers=auth_headers)
    assert_invalid(response, ["body", "work_style_preferences", "lunch_minutes"])
    assert_invalid(response, ["body", "work_style_preferences", "working_hours", "timezone"])


async def test_goal_field_errors_name_the_goal_and_field(
    client: httpx.AsyncClient, auth_headers: dict[str, str]
) -> None:
    goals = [
        {"title": "fine"},
        {"title": ""},
        {"title": "x" * 201},
        {"title": "a", "horizon": "someday"},
        {"title": "a", "target_date": "2027-02-30"},
        {"title": "a", "priority": "high"},
        {"description": "no title"},
        {"title": "a", "category": 5},
        {"title": None},
        {"title": "a", "target_date": 0},
        {"title": "a", "target_date": "2027-02-01T00:00:00"},
    ]
    response = await client.put(URL, json={"personal_goals": goals}, headers=auth_headers)
    locs = error_locs(response)
    assert ["body", "personal_goals", 1, "title"] in locs
    assert ["body", "personal_goals", 2, "title"] in locs
    assert ["body", "personal_goals", 3, "horizon"] in locs
    assert ["body", "personal_goals", 4, "target_date"] in locs
    assert ["body", "personal_goals", 5, "priority"] in locs
    assert ["body", "personal_goals", 6, "title"] in locs
    assert ["body", "personal_goals", 7, "category"] in locs
    assert ["body", "personal_goals", 8, "title"] in locs
    assert ["body", "personal_goals", 9, "target_date"] in locs
    assert ["body", "personal_goals", 10, "target_date"] in locs
    assert not [loc for loc in locs if loc[:3] == ["body", "personal_goals", 0]]
    assert (await client.get(URL, headers=auth_headers)).json() == DEFAULTS


async def test_goal_that_is_not_an_object_is_422(
    client: httpx.AsyncClient, auth_headers: dict[str, str]
) -> None:
    response = await client.put(URL, json={"personal_goals": ["run"]}, headers=auth_headers)
    assert_invalid(response, ["body", "personal_goals", 0])


async def test_more_than_100_goals_is_422(
    client: httpx.AsyncClient, auth_headers: dict[str, str]
) -> None:
    goals = [{"title": f"goal {i}"} for i in range(101)]
    response = await client.put(URL, json={"personal_goals": goals}, headers=auth_headers)
    assert_invalid(response, ["body", "personal_goals"])

    response = await client.put(URL, json={"personal_goals": goals[:100]}, headers=auth_headers)
    assert response.status_code == 200
    assert len(response.json()["personal_goals"]) == 100


async def test_text_over_its_length_limit_is_422(
    client: httpx.AsyncClient, auth_headers: dict[str, str]
) -> None:
    body = {"display_name": "x" * 101, "mission_statement": "x" * 4001}
    response = await client.put(URL, json=body, headers=auth_headers)
    assert_invalid(response, ["body", "display_name"])
    assert_invalid(response, ["body", "mission_statement"])

    body = {"display_name": "ü" * 100, "mission_statement": "x" * 4000}
    response = await client.put(URL, json=body, headers=auth_headers)
    assert response.status_code == 200
    assert response.json()["display_name"] == "ü" * 100


async def test_text_that_cannot_be_stored_is_422(
    client: httpx.AsyncClient, auth_headers: dict[str, str]
) -> None:
    # a NUL character and an escaped lone surrogate: valid JSON, but not storable text
    body = '{"display_name": "a\\u0000b", "mission_statement": "\\ud800"}'
    headers = {**auth_headers, "Content-Type": "application/json"}
    response = await client.put(URL, content=body, headers=headers)
    assert_invalid(response, ["body", "display_name"])
    assert_invalid(response, ["body", "mission_statement"])


@pytest.mark.parametrize("field", ["productivity_patterns", "project_preferences"])
async def test_free_form_object_over_64_kib_is_422(
    client: httpx.AsyncClient, auth_headers: dict[str, str], field: str
) -> None:
    # 64 KiB exactly is accepted; one byte more is not
    padding = 64 * 1024 - compact_json_size({"notes": ""})
    at_limit = {"notes": "x" * padding}
    assert compact_json_size(at_limit) == 64 * 1024
    response = await client.patch(URL, json={field: at_limit}, headers=auth_headers)
    assert response.status_code == 200, response.text
    assert response.json()[field] == at_limit

    over = {"notes": "x" * (padding + 1)}
    response = await client.patch(URL, json={field: over}, headers=auth_headers)
    assert_invalid(response, ["body", field])
    assert (await client.get(URL, headers=auth_headers)).json()[field] == at_limit


async def test_free_form_size_counts_utf8_bytes_not_characters(
    client: httpx.AsyncClient, auth_headers: dict[str, str]
) -> None:
    # 30000 "ä" are 60000 bytes in UTF-8, and far more as \u escapes; neither is the measure
    body = {"productivity_patterns": {"n": "ä" * 30_000}}
    assert (await client.patch(URL, json=body, headers=auth_headers)).status_code == 200
    body = {"productivity_patterns": {"n": "ä" * 33_000}}
    assert_invalid(
        await client.patch(URL, json=body, headers=auth_headers), ["body", "productivity_patterns"]
    )


async def test_free_form_objects_keep_any_json(
    client: httpx.AsyncClient, auth_headers: dict[str, str]
) -> None:
    anything = {
        "user_id": 99,
        "": [1, 2.5, -3, True, False, None, "ü€😀", {"deep": {"deeper": []}}],
        "nul": "a\u0000b",
    }
    body = {"productivity_patterns": anything, "project_preferences": {"id": "x"}}
    response = await client.put(URL, json=body, headers=auth_headers)
    assert response.status_code == 200
    assert response.json()["productivity_patterns"] == anything
    assert (await client.get(URL, headers=auth_headers)).json()["productivity_patterns"] == anything


async def test_free_form_number_that_is_not_finite_is_422(
    client: httpx.AsyncClient, auth_headers: dict[str, str]
) -> None:
    body = '{"productivity_patterns": {"a": NaN}, "project_preferences": {"b": [-Infinity]}}'
    headers = {**auth_headers, "Content-Type": "application/json"}
    response = await client.put(URL, content=body, headers=headers)
    assert_invalid(response, ["body", "productivity_patterns"])
    assert_invalid(response, ["body", "project_preferences"])


async def test_free_form_value_that_is_not_an_object_is_422(
    client: httpx.AsyncClient, auth_headers: dict[str, str]
) -> None:
    body = {"productivity_patterns": [1, 2], "project_preferences": "kanban"}
    response = await client.put(URL, json=body, headers=auth_headers)
    assert_invalid(response, ["body", "productivity_patterns"])
    assert_invalid(response, ["body", "project_preferences"])


async def test_null_for_a_non_nullable_field_is_422(
    client: httpx.AsyncClient, auth_headers: dict[str, str]
) -> None:
    fields = [
        "personal_goals",
        "work_style_preferences",
        "productivity_patterns",
        "project_preferences",
    ]
    for method in ("PUT", "PATCH"):
        response = await client.request(
            method, URL, json=dict.fromkeys(fields), headers=auth_headers
        )
        for field in fields:
            assert_invalid(response, ["body", field])


@pytest.mark.parametrize("method", ["PUT", "PATCH"])
async def test_unknown_or_read_only_top_level_field_is_422(
    client: httpx.AsyncClient, auth_headers: dict[str, str], method: str
) -> None:
    unknown = ["user_id", "updated_at", "id", "created_at", "avatar"]
    body = {"display_name": "Ada", **dict.fromkeys(unknown, 1)}
    response = await client.request(method, URL, json=body, headers=auth_headers)
    for field in unknown:
        assert_invalid(response, ["body", field])
    assert (await client.get(URL, headers=auth_headers)).json() == DEFAULTS


async def test_one_users_writes_leave_another_users_profile_alone(
    client: httpx.AsyncClient, users: Users
) -> None:
    alice, bob = await users.headers(), await users.headers()
    await client.put(URL, json={"display_name": "Bob"}, headers=bob)
    await client.patch(URL, json={"display_name": "Alice", "personal_goals": []}, headers=alice)
    await client.put(URL, json={"personal_goals": [{"title": "Mine"}]}, headers=alice)

    assert (await client.get(URL, headers=bob)).json() == {**DEFAULTS, "display_name": "Bob"}
    await client.put(URL, json={}, headers=bob)
    alices = (await client.get(URL, headers=alice)).json()
    assert alices["personal_goals"] == [{"title": "Mine", **GOAL_DEFAULTS}]


@pytest.mark.parametrize("method", ["GET", "PUT", "PATCH"])
async def test_missing_token_is_401(client: httpx.AsyncClient, method: str) -> None:
    response = await client.request(method, URL, json={})
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"


async def test_login_settings_then_profile_create_update_retrieve(
    client: httpx.AsyncClient, users: Users
) -> None:
    user = await users.register()
    tokens = await users.login(user["email"], user["password"])
    headers = {"Authorization": f"Bearer {tokens['access_token']}"}

    settings = await client.patch(
        "/api/v1/settings", json={"timezone": "Europe/Berlin"}, headers=headers
    )
    assert settings.status_code == 200
    assert settings.json()["timezone"] == "Europe/Berlin"

    created = await client.put(
        URL,
        json={
            "display_name": "Grace",
            "personal_goals": [{"title": "Publish a paper", "horizon": "long"}],
            "work_style_preferences": {"working_hours": {"start": "10:00", "end": "18:00"}},
        },
        headers=headers,
    )
    assert created.status_code == 200

    updated = await client.patch(
        URL,
        json={"mission_statement": "Make computers easier to use.", "display_name": "G. Hopper"},
        headers=headers,
    )
    assert updated.status_code == 200

    retrieved = await client.get(URL, headers=headers)
    assert retrieved.status_code == 200
    assert retrieved.json() == {
        **DEFAULTS,
        "display_name": "G. Hopper",
        "mission_statement": "Make computers easier to use.",
        "personal_goals": [{**GOAL_DEFAULTS, "title": "Publish a paper", "horizon": "long"}],
        "work_style_preferences": {
            **DEFAULT_WORK_STYLE,
            "working_hours": {"start": "10:00", "end": "18:00"},
        },
    }
    assert (await client.get("/api/v1/settings", headers=headers)).json()["timezone"] == (
        "Europe/Berlin"
    )


async def test_openapi_documents_the_profile_routes(client: httpx.AsyncClient) -> None:
    schema = (await client.get("/openapi.json")).json()
    operations = schema["paths"][URL]
    assert set(operations) == {"get", "put", "patch"}
    for method in ("put", "patch"):
        assert {"200", "401", "422"} <= set(operations[method]["responses"])
        assert operations[method]["description"]
