"""API2 Broken Authentication: every forged, altered, expired, misused or orphaned token is a
401 with `WWW-Authenticate: Bearer` and a problem body, on the access and the refresh side."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import Callable
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from fastapi import FastAPI

from tests.conftest import TEST_SECRET, Users
from tests.security.conftest import assert_unauthorized, bearer, delete_user

# the forgeries below sign with the test secret under SHA-384/512, which PyJWT warns about
pytestmark = pytest.mark.filterwarnings("ignore::jwt.warnings.InsecureKeyLengthWarning")

ME = "/api/v1/users/me"
REFRESH = "/api/v1/auth/jwt/refresh"
OTHER_SECRET = "another-secret-key-that-is-long-enough-9876543210"
REQUIRED_CLAIMS = ("exp", "iat", "sub", "jti", "sid", "type")

Claims = dict[str, Any]


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _segment(value: Claims) -> str:
    return _b64(json.dumps(value).encode())


def unsigned(claims: Claims, alg: str = "none") -> str:
    return f"{_segment({'alg': alg, 'typ': 'JWT'})}.{_segment(claims)}."


def forged(claims: Claims, key: str = TEST_SECRET, alg: str = "HS256") -> str:
    return jwt.encode(claims, key, algorithm=alg)


def rsa_signed(claims: Claims) -> str:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return jwt.encode(claims, key, algorithm="RS256")


def hmac_under_rs256_header(claims: Claims) -> str:
    """Algorithm confusion: the header says RS256, the signature is an HMAC with the secret."""
    signing_input = f"{_segment({'alg': 'RS256', 'typ': 'JWT'})}.{_segment(claims)}"
    signature = hmac.new(TEST_SECRET.encode(), signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{_b64(signature)}"


def tampered_payload(token: str, change: Claims) -> str:
    header, payload, signature = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    return f"{header}.{_segment({**claims, **change})}.{signature}"


def tampered_signature(token: str) -> str:
    header, payload, signature = token.split(".")
    middle = len(signature) // 2
    flipped = "A" if signature[middle] != "A" else "B"
    return f"{header}.{payload}.{signature[:middle]}{flipped}{signature[middle + 1 :]}"


def claims_of(token: str) -> Claims:
    decoded: Claims = jwt.decode(token, options={"verify_signature": False})
    return decoded


def without(claims: Claims, name: str) -> Claims:
    return {key: value for key, value in claims.items() if key != name}


# name -> a bad token built from a genuine (access, refresh) pair
ACCESS_ATTACKS: dict[str, Callable[[str, str], str]] = {
    "alg none": lambda access, _: unsigned(claims_of(access)),
    "alg None": lambda access, _: unsigned(claims_of(access), "None"),
    "alg NONE": lambda access, _: unsigned(claims_of(access), "NONE"),
    "wrong key": lambda access, _: forged(claims_of(access), OTHER_SECRET),
    "HS512 with the right key": lambda access, _: forged(claims_of(access), alg="HS512"),
    "HS384 with the right key": lambda access, _: forged(claims_of(access), alg="HS384"),
    "RS256 with its own key": lambda access, _: rsa_signed(claims_of(access)),
    "HMAC under an RS256 header": lambda access, _: hmac_under_rs256_header(claims_of(access)),
    "expired": lambda access, _: forged(
        {**claims_of(access), "iat": int(time.time()) - 7200, "exp": int(time.time()) - 3600}
    ),
    "not yet valid": lambda access, _: forged(
        {**claims_of(access), "nbf": int(time.time()) + 3600}
    ),
    "refresh token as access": lambda _, refresh: refresh,
    "type claim changed": lambda access, _: forged({**claims_of(access), "type": "refresh"}),
    "unknown type": lambda access, _: forged({**claims_of(access), "type": "admin"}),
    "tampered payload": lambda access, _: tampered_payload(
        access, {"sub": str(int(claims_of(access)["sub"]) + 1)}
    ),
    "tampered signature": lambda access, _: tampered_signature(access),
    "payload of another token": lambda access, refresh: tampered_payload(
        access, {"type": "access", "jti": claims_of(refresh)["jti"]}
    ),
    "sub not a number": lambda access, _: forged({**claims_of(access), "sub": "admin"}),
    "sub a list": lambda access, _: forged({**claims_of(access), "sub": ["1"]}),
    "empty": lambda _, __: "",
    "two segments": lambda access, _: access.rsplit(".", 1)[0],
    "garbage": lambda _, __: "not.a.jwt",
    **{
        f"missing {name}": (lambda access, _, name=name: forged(without(claims_of(access), name)))
        for name in REQUIRED_CLAIMS
    },
}

REFRESH_ATTACKS: dict[str, Callable[[str, str], str]] = {
    "access token as refresh": lambda access, _: access,
    "alg none": lambda _, refresh: unsigned(claims_of(refresh)),
    "wrong key": lambda _, refresh: forged(claims_of(refresh), OTHER_SECRET),
    "HS512 with the right key": lambda _, refresh: forged(claims_of(refresh), alg="HS512"),
    "expired": lambda _, refresh: forged(
        {**claims_of(refresh), "iat": int(time.time()) - 7200, "exp": int(time.time()) - 3600}
    ),
    "tampered signature": lambda _, refresh: tampered_signature(refresh),
    "unknown jti": lambda _, refresh: forged({**claims_of(refresh), "jti": "never-issued"}),
    **{
        f"missing {name}": (lambda _, refresh, name=name: forged(without(claims_of(refresh), name)))
        for name in REQUIRED_CLAIMS
    },
}


async def genuine_pair(users: Users) -> tuple[str, str]:
    user = await users.register()
    tokens = await users.login(user["username"])
    return tokens["access_token"], tokens["refresh_token"]


async def test_every_access_token_attack_is_401(client: httpx.AsyncClient, users: Users) -> None:
    access, refresh = await genuine_pair(users)
    for name, attack in ACCESS_ATTACKS.items():
        response = await client.get(ME, headers=bearer(attack(access, refresh)))
        assert response.status_code == 401, name
        assert_unauthorized(response)
    # the genuine token still works: the attacks above were refused for what they are
    assert (await client.get(ME, headers=bearer(access))).status_code == 200


async def test_every_refresh_token_attack_is_401(client: httpx.AsyncClient, users: Users) -> None:
    access, refresh = await genuine_pair(users)
    for name, attack in REFRESH_ATTACKS.items():
        response = await client.post(REFRESH, json={"refresh_token": attack(access, refresh)})
        assert response.status_code == 401, name
        assert_unauthorized(response)
    assert (await client.post(REFRESH, json={"refresh_token": refresh})).status_code == 200


@pytest.mark.parametrize(
    "authorization",
    ["", "Bearer", "Bearer ", "Basic dXNlcjpwYXNz", "Token abc", "Bearer a b"],
    ids=["empty", "scheme only", "scheme and space", "basic", "other scheme", "two tokens"],
)
async def test_a_malformed_authorization_header_is_401(
    client: httpx.AsyncClient, authorization: str
) -> None:
    assert_unauthorized(await client.get(ME, headers={"Authorization": authorization}))


async def test_tokens_of_a_deleted_user_are_401(
    app: FastAPI, client: httpx.AsyncClient, users: Users
) -> None:
    user = await users.register()
    tokens = await users.login(user["username"])
    await delete_user(app, user["id"])

    assert_unauthorized(await client.get(ME, headers=bearer(tokens["access_token"])))
    assert_unauthorized(await client.post(REFRESH, json={"refresh_token": tokens["refresh_token"]}))


async def test_tokens_of_a_logged_out_session_are_401(
    client: httpx.AsyncClient, users: Users
) -> None:
    access, refresh = await genuine_pair(users)
    logout = await client.post(
        "/api/v1/auth/jwt/logout", json={"refresh_token": refresh}, headers=bearer(access)
    )
    assert logout.status_code == 204

    assert_unauthorized(await client.get(ME, headers=bearer(access)))
    assert_unauthorized(await client.post(REFRESH, json={"refresh_token": refresh}))
