"""The stand-in itself, exercised over HTTP the way a Google client would."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import json
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

import httpx
import pytest

from tests.google_standin import (
    DEFAULT_CLIENT_ID,
    DEFAULT_CLIENT_SECRET,
    DEFAULT_EMAIL,
    Fault,
    RunningStandin,
    StandinConfig,
    pkce_pair,
    spawn_standin_process,
)
from tests.google_standin.fixtures import StandinFactory
from tests.google_standin.rrule import expand, parse_recurrence

REDIRECT = "http://127.0.0.1:9999/oauth/callback"
SCOPES = "openid email https://www.googleapis.com/auth/calendar.readonly"
BERLIN = ZoneInfo("Europe/Berlin")
UTC = dt.UTC


# -- helpers ------------------------------------------------------------------------------------


def auth_url(standin: RunningStandin, challenge: str | None, **overrides: str) -> str:
    params = {
        "client_id": DEFAULT_CLIENT_ID,
        "redirect_uri": REDIRECT,
        "response_type": "code",
        "scope": SCOPES,
        "state": "st-123",
        "access_type": "offline",
        "prompt": "consent",
    }
    if challenge is not None:
        params.update(code_challenge=challenge, code_challenge_method="S256")
    params.update(overrides)
    return standin.auth_uri + "?" + urlencode({k: v for k, v in params.items() if v})


def exchange(
    standin: RunningStandin, code: str, verifier: str | None, **extra: str
) -> httpx.Response:
    form = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": REDIRECT,
        "client_id": DEFAULT_CLIENT_ID,
        "client_secret": DEFAULT_CLIENT_SECRET,
    }
    if verifier is not None:
        form["code_verifier"] = verifier
    form.update(extra)
    return httpx.post(standin.token_uri, data=form)


def refresh(standin: RunningStandin, refresh_token: str) -> httpx.Response:
    return httpx.post(
        standin.token_uri,
        data={
            "grant_type": "refresh_token",
            "refresh_token": refresh_token,
            "client_id": DEFAULT_CLIENT_ID,
            "client_secret": DEFAULT_CLIENT_SECRET,
        },
    )


def jwt_claims(token: str, secret: str) -> dict[str, Any]:
    header, payload, signature = token.split(".")
    expected = hmac.new(secret.encode(), f"{header}.{payload}".encode(), hashlib.sha256).digest()
    assert base64.urlsafe_b64encode(expected).decode().rstrip("=") == signature
    claims: dict[str, Any] = json.loads(
        base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))
    )
    return claims


@pytest.fixture
def standin(google_standin: RunningStandin) -> RunningStandin:
    return google_standin


@pytest.fixture
def api(standin: RunningStandin) -> Iterator[httpx.Client]:
    token = standin.control.mint_tokens()["access_token"]
    with httpx.Client(
        base_url=standin.calendar_api_base, headers={"Authorization": f"Bearer {token}"}
    ) as client:
        yield client


def events_path(calendar_id: str = "primary") -> str:
    return f"/calendars/{calendar_id}/events"


def list_all(
    api: httpx.Client, params: dict[str, Any], path: str | None = None
) -> tuple[list[dict[str, Any]], str, int]:
    """(items, nextSyncToken, pages) of a complete run, checking the token rules on every page."""
    items: list[dict[str, Any]] = []
    page_token: str | None = None
    pages = 0
    while True:
        query = dict(params)
        if page_token:
            query["pageToken"] = page_token
        response = api.get(path or events_path(), params=query)
        assert response.status_code == 200, response.text
        body = response.json()
        pages += 1
        items.extend(body["items"])
        page_token = body.get("nextPageToken")
        if page_token is None:
            assert "nextSyncToken" in body
            return items, body["nextSyncToken"], pages
        assert "nextSyncToken" not in body


def at(day: int, hour: int, month: int = 5, year: int = 2024) -> dt.datetime:
    return dt.datetime(year, month, day, hour, tzinfo=UTC)


# -- OAuth ------------------------------------------------------------------------------------


def test_code_flow_with_pkce(standin: RunningStandin) -> None:
    verifier, challenge = pkce_pair()
    redirect = standin.consent(auth_url(standin, challenge, nonce="n-1"))
    assert redirect.location.startswith(REDIRECT + "?")
    assert redirect.state == "st-123"
    assert redirect.code
    # Google reports "email" under its URL name
    assert redirect.scope == (
        "openid https://www.googleapis.com/auth/userinfo.email "
        "https://www.googleapis.com/auth/calendar.readonly"
    )
    recorded = standin.control.consent_requests[-1]
    assert recorded["code_challenge_method"] == "S256"
    assert recorded["access_type"] == "offline"
    assert recorded["prompt"] == "consent"

    response = exchange(standin, redirect.code, verifier)
    assert response.status_code == 200, response.text
    assert "no-store" in response.headers["cache-control"]
    body = response.json()
    assert set(body) == {
        "access_token",
        "expires_in",
        "refresh_token",
        "scope",
        "token_type",
        "id_token",
    }
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 3599
    assert body["access_token"].startswith("ya29.")
    claims = jwt_claims(body["id_token"], DEFAULT_CLIENT_SECRET)
    assert claims["email"] == DEFAULT_EMAIL
    assert claims["email_verified"] is True
    assert claims["aud"] == DEFAULT_CLIENT_ID
    assert claims["iss"] == "https://accounts.google.com"
    assert claims["nonce"] == "n-1"

    # the code is single use
    again = exchange(standin, redirect.code, verifier)
    assert again.status_code == 400
    assert again.json()["error"] == "invalid_grant"

    token_request = standin.control.requests("token")[0]
    assert token_request.form["code_verifier"] == ["<redacted>"]
    assert token_request.form["client_secret"] == ["<redacted>"]
    assert token_request.form["grant_type"] == ["authorization_code"]


def test_wrong_or_missing_verifier_and_redirect_mismatch_are_rejected(
    standin: RunningStandin,
) -> None:
    verifier, challenge = pkce_pair()
    code = standin.consent(auth_url(standin, challenge)).code
    assert code is not None
    wrong = exchange(standin, code, pkce_pair()[0])
    assert wrong.status_code == 400
    assert wrong.json() == {"error": "invalid_grant", "error_description": "Invalid code verifier."}
    missing = exchange(standin, code, None)
    assert missing.json() == {
        "error": "invalid_grant",
        "error_description": "Missing code verifier.",
    }
    mismatch = exchange(standin, code, verifier, redirect_uri="http://127.0.0.1:9999/other")
    assert mismatch.json()["error"] == "redirect_uri_mismatch"
    # failed attempts do not consume the code
    assert exchange(standin, code, verifier).status_code == 200


def test_client_authentication(standin: RunningStandin) -> None:
    verifier, challenge = pkce_pair()
    code = standin.consent(auth_url(standin, challenge)).code
    assert code is not None
    form = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": REDIRECT,
        "code_verifier": verifier,
    }
    bad = httpx.post(standin.token_uri, data=form, auth=(DEFAULT_CLIENT_ID, "wrong"))
    assert bad.status_code == 401
    assert bad.json()["error"] == "invalid_client"
    unknown = httpx.post(
        standin.token_uri, data={**form, "client_id": "nope", "client_secret": "x"}
    )
    assert unknown.status_code == 401
    assert unknown.json() == {
        "error": "invalid_client",
        "error_description": "The OAuth client was not found.",
    }
    basic = httpx.post(
        standin.token_uri, data=form, auth=(DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET)
    )
    assert basic.status_code == 200, basic.text
    as_json = httpx.post(standin.token_uri, json={"grant_type": "refresh_token"})
    assert as_json.status_code == 400
    assert as_json.json()["error"] == "invalid_request"


def test_consent_screen_checks_and_denial(standin: RunningStandin) -> None:
    _, challenge = pkce_pair()
    control = standin.control
    control.add_client("strict.apps.googleusercontent.com", "s3cret", [REDIRECT])

    def page(url: str) -> httpx.Response:
        return httpx.get(url, follow_redirects=False)

    unknown = page(auth_url(standin, challenge, client_id="unknown"))
    assert unknown.status_code == 401
    assert "invalid_client" in unknown.text
    mismatch = page(
        auth_url(
            standin,
            challenge,
            client_id="strict.apps.googleusercontent.com",
            redirect_uri="http://127.0.0.1:9999/elsewhere",
        )
    )
    assert mismatch.status_code == 400
    assert "Error 400: redirect_uri_mismatch" in mismatch.text
    assert page(auth_url(standin, None)).status_code == 400  # PKCE S256 required
    assert page(auth_url(standin, challenge, response_type="token")).status_code == 400
    assert page(auth_url(standin, challenge, scope="https://example.com/bogus")).status_code == 400
    assert page(auth_url(standin, challenge, state="")).status_code == 400

    control.queue_consent(deny=True)
    denied = standin.consent(auth_url(standin, challenge))
    assert denied.error == "access_denied"
    assert denied.state == "st-123"
    assert denied.code is None
    # the queued answer was used up
    assert standin.consent(auth_url(standin, challenge)).code is not None


def test_refresh_token_only_on_first_offline_consent(standin: RunningStandin) -> None:
    verifier, challenge = pkce_pair()
    first = standin.consent(auth_url(standin, challenge, prompt="")).code
    assert first is not None
    assert "refresh_token" in exchange(standin, first, verifier).json()
    second = standin.consent(auth_url(standin, challenge, prompt="")).code
    assert second is not None
    assert "refresh_token" not in exchange(standin, second, verifier).json()
    third = standin.consent(auth_url(standin, challenge)).code  # prompt=consent
    assert third is not None
    assert "refresh_token" in exchange(standin, third, verifier).json()


def test_refresh_then_invalid_grant_after_revoke(standin: RunningStandin) -> None:
    tokens = standin.control.mint_tokens()
    refreshed = refresh(standin, tokens["refresh_token"])
    assert refreshed.status_code == 200
    body = refreshed.json()
    assert "refresh_token" not in body  # Google does not rotate by default
    assert body["access_token"] != tokens["access_token"]
    assert "id_token" in body

    revoked = httpx.post(
        standin.revoke_uri,
        params={"token": body["access_token"]},
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert revoked.status_code == 200
    failed = refresh(standin, tokens["refresh_token"])
    assert failed.status_code == 400
    assert failed.json() == {
        "error": "invalid_grant",
        "error_description": "Token has been expired or revoked.",
    }
    again = httpx.post(standin.revoke_uri, data={"token": tokens["refresh_token"]})
    assert again.status_code == 400
    assert again.json()["error"] == "invalid_token"
    assert standin.control.requests("revoke")[0].query["token"] == ["<redacted>"]


def test_revoke_grant_from_control_api_and_rotation(
    google_standin_factory: StandinFactory,
) -> None:
    standin = google_standin_factory(StandinConfig(rotate_refresh_tokens=True))
    tokens = standin.control.mint_tokens()
    rotated = refresh(standin, tokens["refresh_token"]).json()
    assert rotated["refresh_token"] != tokens["refresh_token"]
    assert refresh(standin, tokens["refresh_token"]).status_code == 400  # the old one is gone
    assert standin.control.revoke_grant(DEFAULT_EMAIL) == 1
    assert refresh(standin, rotated["refresh_token"]).json()["error"] == "invalid_grant"
    listing = httpx.get(
        standin.calendar_api_base + "/users/me/calendarList",
        headers={"Authorization": f"Bearer {rotated['access_token']}"},
    )
    assert listing.status_code == 401


def test_refresh_token_expiry(google_standin_factory: StandinFactory) -> None:
    standin = google_standin_factory(StandinConfig(refresh_token_lifetime=7 * 86400))
    tokens = standin.control.mint_tokens()
    assert refresh(standin, tokens["refresh_token"]).status_code == 200
    standin.control.clock.advance(dt.timedelta(days=7))
    assert refresh(standin, tokens["refresh_token"]).json()["error"] == "invalid_grant"
    fresh = standin.control.mint_tokens()
    assert standin.control.expire_refresh_tokens() >= 1
    assert refresh(standin, fresh["refresh_token"]).json()["error"] == "invalid_grant"


def test_partial_consent_grants_fewer_scopes(standin: RunningStandin) -> None:
    verifier, challenge = pkce_pair()
    standin.control.queue_consent(granted_scopes=["openid", "email"])
    code = standin.consent(auth_url(standin, challenge)).code
    assert code is not None
    body = exchange(standin, code, verifier).json()
    assert body["scope"] == "openid https://www.googleapis.com/auth/userinfo.email"
    listing = httpx.get(
        standin.calendar_api_base + events_path(),
        headers={"Authorization": f"Bearer {body['access_token']}"},
    )
    assert listing.status_code == 403


def test_expired_missing_and_underscoped_tokens(standin: RunningStandin, api: httpx.Client) -> None:
    assert api.get(events_path()).status_code == 200
    assert standin.control.expire_access_tokens() == 1
    expired = api.get(events_path())
    assert expired.status_code == 401
    assert expired.json()["error"]["errors"][0] == {
        "message": "Invalid Credentials",
        "domain": "global",
        "reason": "authError",
        "location": "Authorization",
        "locationType": "header",
    }
    assert expired.json()["error"]["status"] == "UNAUTHENTICATED"
    assert 'error="invalid_token"' in expired.headers["www-authenticate"]

    missing = httpx.get(standin.calendar_api_base + events_path())
    assert missing.status_code == 401
    assert missing.json()["error"]["errors"][0]["reason"] == "required"

    # lifetime passes on the stand-in's clock
    token = standin.control.mint_tokens()["access_token"]
    headers = {"Authorization": f"Bearer {token}"}
    assert api.get(events_path(), headers=headers).status_code == 200
    standin.control.clock.advance(3600)
    assert api.get(events_path(), headers=headers).status_code == 401

    narrow = standin.control.mint_tokens(scopes=["openid", "email"])["access_token"]
    forbidden = api.get(events_path(), headers={"Authorization": f"Bearer {narrow}"})
    assert forbidden.status_code == 403
    assert forbidden.json()["error"]["errors"][0]["reason"] == "insufficientPermissions"


# -- calendarList -----------------------------------------------------------------------------


def test_calendar_list_paging(standin: RunningStandin, api: httpx.Client) -> None:
    control = standin.control
    work = control.add_calendar(DEFAULT_EMAIL, "Work", time_zone="Europe/Berlin")
    control.add_calendar(DEFAULT_EMAIL, "Gym")
    other = control.add_user("other@example.com", time_zone="America/New_York")
    control.share_calendar(other.email, DEFAULT_EMAIL, "reader")

    items, sync_token, pages = list_all(api, {"maxResults": 2}, "/users/me/calendarList")
    assert pages == 2
    assert [i["kind"] for i in items] == ["calendar#calendarListEntry"] * 4
    by_id = {i["id"]: i for i in items}
    assert by_id[DEFAULT_EMAIL]["primary"] is True
    assert by_id[DEFAULT_EMAIL]["accessRole"] == "owner"
    assert "primary" not in by_id[work]
    assert by_id[work]["timeZone"] == "Europe/Berlin"
    assert by_id["other@example.com"]["accessRole"] == "reader"
    owners = api.get("/users/me/calendarList", params={"minAccessRole": "owner"}).json()
    assert len(owners["items"]) == 3

    control.remove_from_calendar_list(DEFAULT_EMAIL, work)
    changes = api.get("/users/me/calendarList", params={"syncToken": sync_token}).json()
    assert changes["items"] == [
        {
            "kind": "calendar#calendarListEntry",
            "etag": changes["items"][0]["etag"],
            "id": work,
            "deleted": True,
        }
    ]


# -- events.list: paging and sync -------------------------------------------------------------


def test_paging_tokens_are_bound_to_the_query(standin: RunningStandin, api: httpx.Client) -> None:
    for day in range(1, 8):
        standin.control.add_event("primary", at(day, 9), at(day, 10), summary=f"E{day}")
    items, _, pages = list_all(api, {"maxResults": 3})
    assert pages == 3
    assert sorted(i["summary"] for i in items) == [f"E{d}" for d in range(1, 8)]

    first = api.get(events_path(), params={"maxResults": 3, "showDeleted": "false"}).json()
    token = first["nextPageToken"]
    assert "nextSyncToken" not in first
    changed = api.get(events_path(), params={"pageToken": token, "showDeleted": "true"})
    assert changed.status_code == 400
    assert changed.json()["error"]["errors"][0]["location"] == "pageToken"
    dropped = api.get(events_path(), params={"pageToken": token})
    assert dropped.status_code == 400
    tampered = api.get(
        events_path(), params={"pageToken": token[:-2] + "AA", "showDeleted": "false"}
    )
    assert tampered.status_code == 400
    # a different page size is fine
    rest = api.get(
        events_path(), params={"pageToken": token, "showDeleted": "false", "maxResults": 10}
    )
    assert rest.status_code == 200
    assert len(rest.json()["items"]) == 4
    assert "nextSyncToken" in rest.json()
    pages_seen = [r.page for r in standin.control.requests("events")]
    assert pages_seen[:4] == [1, 2, 3, 1]


def test_incremental_sync_sees_adds_updates_and_deletes(
    standin: RunningStandin, api: httpx.Client
) -> None:
    control = standin.control
    keep = control.add_event("primary", at(1, 9), at(1, 10), summary="keep")
    edit = control.add_event("primary", at(2, 9), at(2, 10), summary="edit")
    gone = control.add_event("primary", at(3, 9), at(3, 10), summary="gone")
    items, sync_token, _ = list_all(api, {})
    assert {i["id"] for i in items} == {keep, edit, gone}

    assert api.get(events_path(), params={"syncToken": sync_token}).json()["items"] == []

    added = control.add_event("primary", at(4, 9), at(4, 10), summary="new")
    control.update_event("primary", edit, summary="edited")
    control.delete_event("primary", gone)
    control.touch_event("primary", keep)
    changes, next_token, _ = list_all(api, {"syncToken": sync_token, "maxResults": 2})
    by_id = {i["id"]: i for i in changes}
    assert set(by_id) == {added, edit, gone, keep}
    assert by_id[edit]["summary"] == "edited"
    assert by_id[gone] == {
        "kind": "calendar#event",
        "etag": by_id[gone]["etag"],
        "id": gone,
        "status": "cancelled",
    }
    assert by_id[keep]["updated"] > items[0]["updated"]

    # deleted events are absent from a full sync unless showDeleted
    full = list_all(api, {})[0]
    assert gone not in {i["id"] for i in full}
    assert gone in {i["id"] for i in list_all(api, {"showDeleted": "true"})[0]}
    assert api.get(events_path(), params={"syncToken": next_token}).json()["items"] == []


def test_changes_during_paging_reach_the_next_sync(
    standin: RunningStandin, api: httpx.Client
) -> None:
    control = standin.control
    ids = control.generate_events("primary", 6)
    first = api.get(events_path(), params={"maxResults": 3}).json()
    control.update_event("primary", ids[0], summary="changed while paging")
    rest = api.get(events_path(), params={"maxResults": 3, "pageToken": first["nextPageToken"]})
    changes = api.get(events_path(), params={"syncToken": rest.json()["nextSyncToken"]}).json()
    assert [i["summary"] for i in changes["items"]] == ["changed while paging"]


def test_sync_token_invalidation_gives_410(standin: RunningStandin, api: httpx.Client) -> None:
    standin.control.add_event("primary", at(1, 9), at(1, 10))
    _, sync_token, _ = list_all(api, {})
    standin.control.invalidate_sync_tokens(DEFAULT_EMAIL)
    gone = api.get(events_path(), params={"syncToken": sync_token})
    assert gone.status_code == 410
    assert gone.json() == {
        "error": {
            "code": 410,
            "message": "Sync token is no longer valid, a full sync is required.",
            "errors": [
                {
                    "message": "Sync token is no longer valid, a full sync is required.",
                    "domain": "global",
                    "reason": "fullSyncRequired",
                }
            ],
        }
    }
    assert api.get(events_path(), params={"syncToken": "garbage"}).status_code == 410
    _, fresh, _ = list_all(api, {})
    assert api.get(events_path(), params={"syncToken": fresh}).status_code == 200


def test_forbidden_parameter_combinations(api: httpx.Client) -> None:
    _, sync_token, _ = list_all(api, {})
    for name, value in [
        ("timeMin", "2024-05-01T00:00:00Z"),
        ("timeMax", "2024-05-01T00:00:00Z"),
        ("updatedMin", "2024-05-01T00:00:00Z"),
        ("orderBy", "updated"),
        ("q", "x"),
        ("iCalUID", "x@google.com"),
    ]:
        response = api.get(events_path(), params={"syncToken": sync_token, name: value})
        assert response.status_code == 400, name
        assert response.json()["error"]["errors"][0]["reason"] == "badRequest"
    no_single = api.get(events_path(), params={"orderBy": "startTime"})
    assert no_single.status_code == 400
    assert no_single.json()["error"]["message"] == (
        "The requested ordering is not available for the particular query."
    )
    empty = api.get(
        events_path(), params={"timeMin": "2024-05-02T00:00:00Z", "timeMax": "2024-05-01T00:00:00Z"}
    )
    assert empty.json()["error"]["errors"][0]["reason"] == "timeRangeEmpty"
    no_offset = api.get(events_path(), params={"timeMin": "2024-05-01T00:00:00"})
    assert no_offset.status_code == 400


def test_filters_and_order_by(standin: RunningStandin, api: httpx.Client) -> None:
    control = standin.control
    late = control.add_event("primary", at(20, 9), at(20, 10), summary="Dentist appointment")
    early = control.add_event(
        "primary", at(2, 9), at(2, 10), summary="Team lunch", location="Cafe Dentist"
    )
    middle = control.add_event("primary", at(10, 23), at(11, 1), summary="Night shift")
    window = list_all(
        api, {"timeMin": "2024-05-11T00:00:00+00:00", "timeMax": "2024-05-21T00:00:00Z"}
    )[0]
    assert {i["id"] for i in window} == {middle, late}  # ends after timeMin, starts before timeMax
    ordered = list_all(api, {"singleEvents": "true", "orderBy": "startTime", "maxResults": 1})
    assert [i["id"] for i in ordered[0]] == [early, middle, late]
    assert ordered[2] == 3
    assert {i["id"] for i in list_all(api, {"q": "dentist"})[0]} == {late, early}
    assert [i["id"] for i in list_all(api, {"iCalUID": f"{early}@google.com"})[0]] == [early]
    control.clock.advance(60)
    control.touch_event("primary", middle)
    since = (control.clock.now() - dt.timedelta(seconds=1)).isoformat()
    assert [i["id"] for i in list_all(api, {"updatedMin": since})[0]] == [middle]
    by_updated = list_all(api, {"orderBy": "updated"})[0]
    assert by_updated[-1]["id"] == middle


def test_event_shapes_timed_offsets_and_time_zones(
    standin: RunningStandin, api: httpx.Client
) -> None:
    control = standin.control
    work = control.add_calendar(DEFAULT_EMAIL, "Work", time_zone="Europe/Berlin")
    offset = dt.timezone(dt.timedelta(hours=-5))
    plain = control.add_event(
        work,
        dt.datetime(2024, 7, 1, 8, tzinfo=offset),
        dt.datetime(2024, 7, 1, 9, tzinfo=offset),
        summary="offset",
    )
    zoned = control.add_event(
        work,
        dt.datetime(2024, 7, 1, 8),
        dt.datetime(2024, 7, 1, 9),
        time_zone="America/New_York",
        description="d",
        location="l",
    )
    untitled = control.add_event(work, at(2, 8), at(2, 9))
    items = {i["id"]: i for i in list_all(api, {}, events_path(work))[0]}
    # rendered in the calendar's zone, the event's own zone named separately
    assert items[plain]["start"] == {"dateTime": "2024-07-01T15:00:00+02:00"}
    assert items[zoned]["start"] == {
        "dateTime": "2024-07-01T14:00:00+02:00",
        "timeZone": "America/New_York",
    }
    assert "summary" not in items[untitled]
    event = items[zoned]
    for name in (
        "kind",
        "etag",
        "id",
        "status",
        "htmlLink",
        "created",
        "updated",
        "start",
        "end",
        "iCalUID",
        "sequence",
        "description",
        "location",
    ):
        assert name in event, name
    assert event["status"] == "confirmed"
    assert event["iCalUID"] == f"{zoned}@google.com"
    assert event["created"].endswith("Z")
    in_utc = api.get(events_path(work), params={"timeZone": "UTC"}).json()
    assert {i["id"]: i for i in in_utc["items"]}[zoned]["start"][
        "dateTime"
    ] == "2024-07-01T12:00:00Z"
    assert api.get(events_path("c_unknown@group.calendar.google.com")).status_code == 404


def test_all_day_and_multi_day_events(standin: RunningStandin, api: httpx.Client) -> None:
    control = standin.control
    one = control.add_event("primary", dt.date(2024, 5, 10), dt.date(2024, 5, 11), summary="one")
    three = control.add_event("primary", dt.date(2024, 5, 12), dt.date(2024, 5, 15), summary="trip")
    with pytest.raises(ValueError, match="after the start"):
        control.add_event("primary", dt.date(2024, 5, 10), dt.date(2024, 5, 10))
    items = {i["id"]: i for i in list_all(api, {})[0]}
    assert items[one]["start"] == {"date": "2024-05-10"}
    assert items[one]["end"] == {"date": "2024-05-11"}
    assert items[three]["end"] == {"date": "2024-05-15"}
    # the end date is exclusive: nothing of "one" lies on 11 May
    window = list_all(api, {"timeMin": "2024-05-11T00:00:00Z", "timeMax": "2024-05-12T00:00:00Z"})
    assert window[0] == []
    window = list_all(api, {"timeMin": "2024-05-14T12:00:00Z", "timeMax": "2024-05-20T00:00:00Z"})
    assert [i["id"] for i in window[0]] == [three]


# -- recurring events -------------------------------------------------------------------------


def test_weekly_series_keeps_local_time_across_dst(
    standin: RunningStandin, api: httpx.Client
) -> None:
    control = standin.control
    series = control.add_recurring_event(
        "primary",
        dt.datetime(2024, 3, 18, 9),
        dt.datetime(2024, 3, 18, 10),
        "RRULE:FREQ=WEEKLY;BYDAY=MO;COUNT=4",
        time_zone="Europe/Berlin",
        summary="Standup",
    )
    instances = list_all(api, {"singleEvents": "true", "timeZone": "Europe/Berlin"})[0]
    assert [i["id"] for i in instances] == [
        f"{series}_20240318T080000Z",
        f"{series}_20240325T080000Z",
        f"{series}_20240401T070000Z",
        f"{series}_20240408T070000Z",
    ]
    assert [i["start"]["dateTime"] for i in instances] == [
        "2024-03-18T09:00:00+01:00",
        "2024-03-25T09:00:00+01:00",
        "2024-04-01T09:00:00+02:00",
        "2024-04-08T09:00:00+02:00",
    ]
    first = instances[0]
    assert first["recurringEventId"] == series
    assert first["originalStartTime"] == {
        "dateTime": "2024-03-18T09:00:00+01:00",
        "timeZone": "Europe/Berlin",
    }
    assert first["start"]["timeZone"] == "Europe/Berlin"
    assert first["summary"] == "Standup"
    assert "recurrence" not in first

    masters = list_all(api, {"singleEvents": "false"})[0]
    assert [m["id"] for m in masters] == [series]
    assert masters[0]["recurrence"] == ["RRULE:FREQ=WEEKLY;BYDAY=MO;COUNT=4"]
    assert "recurringEventId" not in masters[0]


def test_moved_and_cancelled_instances(standin: RunningStandin, api: httpx.Client) -> None:
    control = standin.control
    series = control.add_recurring_event(
        "primary",
        dt.datetime(2024, 6, 3, 9),
        dt.datetime(2024, 6, 3, 10),
        "FREQ=DAILY;COUNT=5",
        time_zone="Europe/Berlin",
    )
    _, sync_token, _ = list_all(api, {"singleEvents": "true"})
    moved = control.move_instance(
        "primary",
        series,
        dt.datetime(2024, 6, 4, 9),
        dt.datetime(2024, 6, 4, 15),
        dt.datetime(2024, 6, 4, 16),
        summary="moved",
    )
    cancelled = control.cancel_instance(
        "primary", series, dt.datetime(2024, 6, 5, 9, tzinfo=BERLIN)
    )
    assert moved == f"{series}_20240604T070000Z"
    assert cancelled == f"{series}_20240605T070000Z"

    current = {i["id"]: i for i in list_all(api, {"singleEvents": "true"})[0]}
    assert cancelled not in current
    assert len(current) == 4
    assert current[moved]["start"]["dateTime"] == "2024-06-04T13:00:00Z"
    assert current[moved]["originalStartTime"]["dateTime"] == "2024-06-04T07:00:00Z"
    assert current[moved]["recurringEventId"] == series
    assert current[moved]["summary"] == "moved"

    with_deleted = {
        i["id"]: i for i in list_all(api, {"singleEvents": "true", "showDeleted": "true"})[0]
    }
    assert set(with_deleted[cancelled]) == {
        "kind",
        "etag",
        "id",
        "status",
        "recurringEventId",
        "originalStartTime",
    }
    assert with_deleted[cancelled]["status"] == "cancelled"

    changes = {
        i["id"]: i
        for i in api.get(
            events_path(), params={"syncToken": sync_token, "singleEvents": "true"}
        ).json()["items"]
    }
    assert set(changes) == {moved, cancelled}
    assert changes[cancelled]["originalStartTime"] == {
        "dateTime": "2024-06-05T07:00:00Z",
        "timeZone": "Europe/Berlin",
    }

    # singleEvents=false: the master plus its exceptions; cancelled exceptions are included even
    # without showDeleted (Google documents this)
    flat = {i["id"]: i for i in list_all(api, {})[0]}
    assert set(flat) == {series, moved, cancelled}
    assert flat[series]["recurrence"] == ["RRULE:FREQ=DAILY;COUNT=5"]

    # deleting the series cancels everything, instances included
    control.delete_event("primary", series)
    assert list_all(api, {"singleEvents": "true"})[0] == []
    gone = api.get(events_path(), params={"syncToken": sync_token, "singleEvents": "true"}).json()
    assert {i["status"] for i in gone["items"]} == {"cancelled"}
    assert len(gone["items"]) == 5


def test_all_day_series_and_unbounded_expansion(
    google_standin_factory: StandinFactory,
) -> None:
    standin = google_standin_factory(StandinConfig(expansion_horizon=dt.timedelta(days=60)))
    control = standin.control
    token = control.mint_tokens()["access_token"]
    api = httpx.Client(
        base_url=standin.calendar_api_base, headers={"Authorization": f"Bearer {token}"}
    )
    today = control.clock.now().date()
    series = control.add_recurring_event(
        "primary", today, today + dt.timedelta(days=1), "RRULE:FREQ=WEEKLY", summary="weekly"
    )
    items = list_all(api, {"singleEvents": "true"})[0]
    assert 8 <= len(items) <= 10  # bounded by the horizon, not forever
    assert items[0]["id"] == f"{series}_{today:%Y%m%d}"
    assert items[0]["originalStartTime"] == {"date": today.isoformat()}
    assert items[0]["end"] == {"date": (today + dt.timedelta(days=1)).isoformat()}
    far = (today + dt.timedelta(days=400)).isoformat() + "T00:00:00Z"
    assert len(list_all(api, {"singleEvents": "true", "timeMax": far})[0]) >= 57
    api.close()


@pytest.mark.parametrize(
    ("lines", "start", "expected"),
    [
        (
            ["RRULE:FREQ=MONTHLY;BYDAY=-1FR;COUNT=3"],
            dt.datetime(2024, 1, 26, 9),
            ["2024-01-26", "2024-02-23", "2024-03-29"],
        ),
        (
            ["RRULE:FREQ=MONTHLY;BYMONTHDAY=-1;COUNT=3"],
            dt.datetime(2024, 1, 31, 9),
            ["2024-01-31", "2024-02-29", "2024-03-31"],
        ),
        (
            ["RRULE:FREQ=MONTHLY;COUNT=3"],
            dt.datetime(2024, 1, 31, 9),
            ["2024-01-31", "2024-03-31", "2024-05-31"],
        ),
        (
            ["RRULE:FREQ=WEEKLY;INTERVAL=2;BYDAY=TU,TH;UNTIL=20240220T000000Z"],
            dt.datetime(2024, 2, 1, 9),
            ["2024-02-01", "2024-02-13", "2024-02-15"],
        ),
        (
            ["RRULE:FREQ=DAILY;COUNT=4", "EXDATE;TZID=Europe/Berlin:20240102T090000"],
            dt.datetime(2024, 1, 1, 9),
            ["2024-01-01", "2024-01-03", "2024-01-04"],
        ),
        (
            ["RRULE:FREQ=MONTHLY;BYDAY=MO,TU,WE,TH,FR;BYSETPOS=-1;COUNT=2"],
            dt.datetime(2024, 3, 1, 9),
            ["2024-03-29", "2024-04-30"],
        ),
        (
            ["RRULE:FREQ=YEARLY;BYMONTH=11;BYDAY=4TH;COUNT=2"],
            dt.datetime(2024, 11, 1, 9),
            ["2024-11-28", "2025-11-27"],
        ),
    ],
)
def test_rrule_expansion(lines: list[str], start: dt.datetime, expected: list[str]) -> None:
    found = expand(
        parse_recurrence(lines, BERLIN),
        start,
        zone=BERLIN,
        until=dt.datetime(2030, 1, 1),
        limit=100,
    )
    assert [d.date().isoformat() for d in found] == expected
    assert all(d.time() == dt.time(9) for d in found)


def test_unsupported_rules_are_refused() -> None:
    for line in [
        "RRULE:FREQ=HOURLY",
        "RRULE:FREQ=DAILY;BYHOUR=9",
        "RRULE:FREQ=DAILY;COUNT=2;UNTIL=20240101",
    ]:
        with pytest.raises(ValueError, match=r"\w"):
            parse_recurrence([line], BERLIN)


# -- faults and the request log ----------------------------------------------------------------


def test_injected_status_faults_have_google_bodies(
    standin: RunningStandin, api: httpx.Client
) -> None:
    standin.control.faults.enqueue(
        "events",
        Fault.rate_limit(),
        Fault.rate_limit(user=True),
        Fault.http(429, retry_after=7),
        Fault.http(500),
        Fault.http(503),
        Fault.http(401),
        Fault.http(502),
    )
    seen = [api.get(events_path()) for _ in range(8)]
    assert [r.status_code for r in seen] == [403, 403, 429, 500, 503, 401, 502, 200]
    reasons = [r.json()["error"]["errors"][0]["reason"] for r in seen[:6]]
    assert reasons == [
        "rateLimitExceeded",
        "userRateLimitExceeded",
        "rateLimitExceeded",
        "backendError",
        "backendError",
        "authError",
    ]
    assert seen[0].json()["error"]["errors"][0]["domain"] == "usageLimits"
    assert seen[2].headers["retry-after"] == "7"
    assert seen[6].headers["content-type"].startswith("text/html")
    logged = standin.control.requests("events")
    assert [r.status for r in logged] == [403, 403, 429, 500, 503, 401, 502, 200]
    assert logged[0].fault == "status 403 rateLimitExceeded"
    assert logged[0].headers["authorization"] == "Bearer <redacted>"

    standin.control.faults.fail_next("token", 2, Fault.http(503))
    assert refresh(standin, "x").status_code == 503
    assert refresh(standin, "x").json()["error"] == "temporarily_unavailable"
    assert refresh(standin, "x").json()["error"] == "invalid_grant"


def test_fail_from_page(standin: RunningStandin, api: httpx.Client) -> None:
    standin.control.generate_events("primary", 10)
    standin.control.faults.fail_from_page(3, Fault.http(503))
    query: dict[str, Any] = {"maxResults": 3}
    statuses = []
    while True:
        response = api.get(events_path(), params=query)
        statuses.append(response.status_code)
        if response.status_code == 503:
            continue  # retry the same page
        token = response.json().get("nextPageToken")
        if token is None:
            break
        query["pageToken"] = token
    assert statuses == [200, 200, 503, 200, 200]
    assert [r.page for r in standin.control.requests("events")] == [1, 2, 3, 3, 4]


def test_hang_and_dropped_connection(standin: RunningStandin, api: httpx.Client) -> None:
    standin.control.faults.enqueue("events", Fault.hang(), Fault.drop())
    started = time.monotonic()
    with pytest.raises(httpx.ReadTimeout):
        api.get(events_path(), timeout=0.3)
    assert time.monotonic() - started < 5
    with pytest.raises(httpx.RemoteProtocolError):
        api.get(events_path())
    assert api.get(events_path()).status_code == 200
    statuses = [(r.fault, r.status) for r in standin.control.requests("events")]
    assert statuses == [("hang", None), ("drop", None), (None, 200)]


# -- scale and the separate process ------------------------------------------------------------


def test_large_calendar_pages_in_linear_time(standin: RunningStandin, api: httpx.Client) -> None:
    started = time.perf_counter()
    standin.control.generate_events("primary", 10_000)
    items, sync_token, pages = list_all(api, {"maxResults": 2500})
    assert len(items) == 10_000
    assert pages == 4
    changed = standin.control.churn_events("primary", updates=10, deletes=2, adds=3, seed=1)
    delta = api.get(events_path(), params={"syncToken": sync_token}).json()["items"]
    assert {i["id"] for i in delta} == set(
        changed["updated"] + changed["deleted"] + changed["added"]
    )
    assert time.perf_counter() - started < 15


@pytest.mark.slow
def test_process_runner() -> None:
    with spawn_standin_process(events=30) as process:
        tokens = process.control.mint_tokens()
        headers = {"Authorization": f"Bearer {tokens['access_token']}"}
        with httpx.Client(base_url=process.calendar_api_base, headers=headers) as api:
            items, sync_token, pages = list_all(api, {"maxResults": 10})
            assert (len(items), pages) == (30, 3)
            process.control.churn_events(updates=10)
            changes = api.get(events_path(), params={"syncToken": sync_token}).json()
            assert len(changes["items"]) == 10
            process.control.add_fault("events", status=503)
            assert api.get(events_path()).status_code == 503
            logged = process.control.requests("events")
            assert [r["status"] for r in logged][-1] == 503
