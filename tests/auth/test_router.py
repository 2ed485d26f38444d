from __future__ import annotations

import asyncio
import base64
import json
import time
from datetime import UTC, datetime, timedelta

import httpx
import jwt
import pytest

from tests.conftest import TEST_SECRET, Users

LOGIN = "/api/v1/auth/jwt/login"
REFRESH = "/api/v1/auth/jwt/refresh"
LOGOUT = "/api/v1/auth/jwt/logout"
ME = "/api/v1/users/me"


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def test_register_returns_user_without_secrets(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/api/v1/auth/register",
        json={"email": "Ann@Example.com", "username": "ann", "password": "long enough pw"},
    )
    assert response.status_code == 201
    body = response.json()
    assert set(body) == {"id", "email", "username", "created_at"}
    assert body["username"] == "ann"
    assert body["created_at"].endswith(("Z", "+00:00"))


@pytest.mark.parametrize(
    ("email", "username"),
    [("ANN@example.com", "other"), ("other@example.com", "ANN"), ("ann@example.com", "ann")],
)
async def test_duplicate_email_or_username_is_409_case_insensitive(
    client: httpx.AsyncClient, users: Users, email: str, username: str
) -> None:
    await users.register(email="ann@example.com", username="ann")
    response = await client.post(
        "/api/v1/auth/register",
        json={"email": email, "username": username, "password": "long enough pw"},
    )
    assert response.status_code == 409
    assert response.headers["content-type"] == "application/problem+json"


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("username", "ab"),
        ("username", "x" * 33),
        ("username", "has space"),
        ("password", "short"),
        ("password", "p" * 129),
        ("email", "not-an-email"),
    ],
)
async def test_register_validation_names_the_field(
    client: httpx.AsyncClient, field: str, value: str
) -> None:
    body = {"email": "ok@example.com", "username": "okname", "password": "long enough pw"}
    body[field] = value
    response = await client.post("/api/v1/auth/register", json=body)
    assert response.status_code == 422
    assert ["body", field] in [error["loc"] for error in response.json()["errors"]]


async def test_register_rejects_unknown_and_privileged_fields(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/api/v1/auth/register",
        json={
            "email": "a@example.com",
            "username": "abc",
            "password": "long enough pw",
            "is_superuser": True,
        },
    )
    assert response.status_code == 422
    assert response.json()["errors"][0]["loc"] == ["body", "is_superuser"]


async def test_login_with_username_or_email_any_case(
    client: httpx.AsyncClient, users: Users
) -> None:
    user = await users.register(email="Bob@Example.com", username="Bobby")
    for login in ("bobby", "BOB@example.COM"):
        tokens = await users.login(login, user["password"])
        assert tokens["token_type"] == "bearer"
        assert tokens["expires_in"] == 15 * 60
        me = await client.get(ME, headers=bearer(tokens["access_token"]))
        assert me.status_code == 200
        assert me.json()["email"] == "Bob@example.com"  # domains are case-insensitive


async def test_wrong_password_and_unknown_user_get_the_same_401(
    client: httpx.AsyncClient, users: Users
) -> None:
    await users.register(username="carol")
    wrong = await client.post(LOGIN, data={"username": "carol", "password": "wrong password"})
    unknown = await client.post(LOGIN, data={"username": "nobody", "password": "wrong password"})
    assert wrong.status_code == unknown.status_code == 401
    assert wrong.json() == unknown.json()


async def test_unknown_user_costs_a_password_check(client: httpx.AsyncClient, users: Users) -> None:
    """Timing equality is shown by both paths doing the Argon2 work, not by a timing threshold."""
    await users.register(username="dave")
    hasher = client._transport.app.state.password_hasher  # type: ignore[attr-defined]
    calls: list[str | None] = []
    original = hasher.verify

    async def counting(password: str, password_hash: str | None) -> bool:
        calls.append(password_hash)
        return bool(await original(password, password_hash))

    hasher.verify = counting
    try:
        await client.post(LOGIN, data={"username": "nobody", "password": "x"})
        await client.post(LOGIN, data={"username": "dave", "password": "x"})
    finally:
        hasher.verify = original
    assert len(calls) == 2
    assert calls[0] is None
    assert calls[1] is not None


async def test_five_failures_lock_the_account_even_for_the_right_password(
    client: httpx.AsyncClient, users: Users
) -> None:
    user = await users.register(username="erin")
    for _ in range(5):
        response = await client.post(LOGIN, data={"username": "erin", "password": "bad pw"})
        assert response.status_code == 401
    locked = await client.post(LOGIN, data={"username": "erin", "password": user["password"]})
    assert locked.status_code == 429
    retry_after = int(locked.headers["Retry-After"])
    assert 0 < retry_after <= 15 * 60
    # other accounts are not affected
    other = await users.register(username="frank")
    assert (
        await client.post(LOGIN, data={"username": "frank", "password": other["password"]})
    ).status_code == 200


async def test_success_resets_the_failure_count(client: httpx.AsyncClient, users: Users) -> None:
    user = await users.register(username="gina")
    for _ in range(4):
        await client.post(LOGIN, data={"username": "gina", "password": "bad pw"})
    assert (
        await client.post(LOGIN, data={"username": "gina", "password": user["password"]})
    ).status_code == 200
    for _ in range(4):
        response = await client.post(LOGIN, data={"username": "gina", "password": "bad pw"})
        assert response.status_code == 401
    assert (
        await client.post(LOGIN, data={"username": "gina", "password": user["password"]})
    ).status_code == 200


async def test_refresh_rotates_and_the_old_refresh_token_is_spent(
    client: httpx.AsyncClient, users: Users
) -> None:
    user = await users.register()
    first = await users.login(user["username"])
    second = (await client.post(REFRESH, json={"refresh_token": first["refresh_token"]})).json()
    assert second["refresh_token"] != first["refresh_token"]
    assert (await client.get(ME, headers=bearer(second["access_token"]))).status_code == 200
    third = await client.post(REFRESH, json={"refresh_token": second["refresh_token"]})
    assert third.status_code == 200


async def test_reusing_a_spent_refresh_token_revokes_the_chain(
    client: httpx.AsyncClient, users: Users
) -> None:
    user = await users.register()
    first = await users.login(user["username"])
    second = (await client.post(REFRESH, json={"refresh_token": first["refresh_token"]})).json()
    reuse = await client.post(REFRESH, json={"refresh_token": first["refresh_token"]})
    assert reuse.status_code == 401
    assert reuse.headers["WWW-Authenticate"] == "Bearer"
    # the newer tokens of that chain are dead too
    assert (
        await client.post(REFRESH, json={"refresh_token": second["refresh_token"]})
    ).status_code == 401
    assert (await client.get(ME, headers=bearer(second["access_token"]))).status_code == 401
    assert (await client.get(ME, headers=bearer(first["access_token"]))).status_code == 401
    # another login session of the same user is untouched
    other = await users.login(user["username"])
    assert (await client.get(ME, headers=bearer(other["access_token"]))).status_code == 200


async def test_concurrent_refreshes_with_one_token_never_both_succeed(
    client: httpx.AsyncClient, users: Users
) -> None:
    user = await users.register()
    tokens = await users.login(user["username"])
    results = await asyncio.gather(
        *(client.post(REFRESH, json={"refresh_token": tokens["refresh_token"]}) for _ in range(4))
    )
    codes = sorted(r.status_code for r in results)
    assert codes.count(200) <= 1
    assert set(codes) <= {200, 401}


async def test_access_token_is_not_a_refresh_token(client: httpx.AsyncClient, users: Users) -> None:
    user = await users.register()
    tokens = await users.login(user["username"])
    response = await client.post(REFRESH, json={"refresh_token": tokens["access_token"]})
    assert response.status_code == 401
    assert (await client.get(ME, headers=bearer(tokens["refresh_token"]))).status_code == 401


async def test_logout_revokes_that_session_only(client: httpx.AsyncClient, users: Users) -> None:
    user = await users.register()
    phone = await users.login(user["username"])
    laptop = await users.login(user["username"])
    response = await client.post(
        LOGOUT,
        headers=bearer(phone["access_token"]),
        json={"refresh_token": phone["refresh_token"]},
    )
    assert response.status_code == 204
    assert (await client.get(ME, headers=bearer(phone["access_token"]))).status_code == 401
    assert (
        await client.post(REFRESH, json={"refresh_token": phone["refresh_token"]})
    ).status_code == 401
    assert (await client.get(ME, headers=bearer(laptop["access_token"]))).status_code == 200


async def test_logout_without_body(client: httpx.AsyncClient, users: Users) -> None:
    user = await users.register()
    tokens = await users.login(user["username"])
    assert (await client.post(LOGOUT, headers=bearer(tokens["access_token"]))).status_code == 204
    assert (await client.get(ME, headers=bearer(tokens["access_token"]))).status_code == 401


async def test_logout_with_someone_elses_refresh_token_is_422(
    client: httpx.AsyncClient, users: Users
) -> None:
    alice, bob = await users.register(), await users.register()
    alice_tokens = await users.login(alice["username"])
    bob_tokens = await users.login(bob["username"])
    response = await client.post(
        LOGOUT,
        headers=bearer(alice_tokens["access_token"]),
        json={"refresh_token": bob_tokens["refresh_token"]},
    )
    assert response.status_code == 422
    assert response.json()["errors"][0]["loc"] == ["body", "refresh_token"]
    assert (await client.get(ME, headers=bearer(bob_tokens["access_token"]))).status_code == 200


def _forge(claims: dict[str, object], key: str = TEST_SECRET, alg: str = "HS256") -> str:
    return jwt.encode(claims, key, algorithm=alg)


def _unsigned(claims: dict[str, object]) -> str:
    def part(data: dict[str, object]) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")

    return f"{part({'alg': 'none', 'typ': 'JWT'})}.{part(claims)}."


async def test_jwt_attacks_are_401(client: httpx.AsyncClient, users: Users) -> None:
    user = await users.register()
    tokens = await users.login(user["username"])
    claims = jwt.decode(tokens["access_token"], options={"verify_signature": False})
    now = int(time.time())
    header, _payload, signature = tokens["access_token"].split(".")
    tampered_payload = (
        base64.urlsafe_b64encode(json.dumps({**claims, "sub": "999"}).encode()).decode().rstrip("=")
    )
    attacks = {
        "alg none": _unsigned(claims),
        "wrong key": _forge(claims, key="another-secret-key-of-enough-length-000"),
        "expired": _forge({**claims, "iat": now - 7200, "exp": now - 3600}),
        "wrong type": _forge({**claims, "type": "refresh"}),
        "missing jti": _forge({k: v for k, v in claims.items() if k != "jti"}),
        "tampered": f"{header}.{tampered_payload}.{signature}",
        "garbage": "not.a.jwt",
    }
    for name, token in attacks.items():
        response = await client.get(ME, headers=bearer(token))
        assert response.status_code == 401, name
        assert response.headers["WWW-Authenticate"] == "Bearer", name
        assert response.headers["content-type"] == "application/problem+json", name


async def test_missing_or_malformed_authorization_is_401(client: httpx.AsyncClient) -> None:
    for headers in ({}, {"Authorization": "Basic abc"}, {"Authorization": "Bearer"}):
        response = await client.get(ME, headers=headers)
        assert response.status_code == 401
        assert response.headers["WWW-Authenticate"] == "Bearer"


async def test_token_of_a_deleted_user_is_401(client: httpx.AsyncClient, users: Users) -> None:
    user = await users.register()
    tokens = await users.login(user["username"])
    forged = _forge(
        {
            "sub": "424242",
            "sid": "s",
            "jti": "j",
            "type": "access",
            "iat": int(time.time()),
            "exp": int((datetime.now(UTC) + timedelta(minutes=5)).timestamp()),
        }
    )
    assert (await client.get(ME, headers=bearer(forged))).status_code == 401
    assert (await client.get(ME, headers=bearer(tokens["access_token"]))).status_code == 200


async def test_login_form_rejects_json_and_unknown_fields(client: httpx.AsyncClient) -> None:
    as_json = await client.post(LOGIN, json={"username": "a", "password": "b"})
    assert as_json.status_code == 422
    extra = await client.post(LOGIN, data={"username": "a", "password": "b", "admin": "1"})
    assert extra.status_code == 422
    assert ["body", "admin"] in [error["loc"] for error in extra.json()["errors"]]
