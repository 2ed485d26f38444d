"""Password hashing (Argon2id via pwdlib) and signed tokens (PyJWT, HS256)."""

from __future__ import annotations

import os
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Literal

import anyio
import anyio.to_thread
import jwt
from pwdlib import PasswordHash
from pwdlib.hashers.argon2 import Argon2Hasher

from ai_workflow_engine.core.config import AuthSettings

TokenType = Literal["access", "refresh"]
_ALGORITHM = "HS256"


class PasswordHasher:
    """Argon2id hashing off the event loop; an unknown user costs the same as a wrong password."""

    def __init__(self) -> None:
        self._hash = PasswordHash((Argon2Hasher(),))
        # verified against when the user does not exist, so both paths take the same time
        self._decoy = self._hash.hash(uuid.uuid4().hex)
        # each hash takes ~64 MiB and a core for a fraction of a second: run at most one per core,
        # so a burst of logins queues instead of starving the event loop and exhausting memory
        self._limiter = anyio.CapacityLimiter(os.cpu_count() or 1)

    async def hash(self, password: str) -> str:
        return await anyio.to_thread.run_sync(self._hash.hash, password, limiter=self._limiter)

    async def verify(self, password: str, password_hash: str | None) -> bool:
        target = password_hash if password_hash is not None else self._decoy
        ok = await anyio.to_thread.run_sync(
            self._hash.verify, password, target, limiter=self._limiter
        )
        return ok and password_hash is not None


@dataclass(frozen=True, slots=True)
class TokenClaims:
    user_id: int
    session_id: str
    jti: str
    type: TokenType
    issued_at: datetime
    expires_at: datetime


class InvalidToken(Exception):
    """The token is malformed, forged, expired, or of the wrong type."""


class TokenCodec:
    def __init__(self, settings: AuthSettings) -> None:
        self._key = settings.secret_key.get_secret_value()
        self._lifetimes: dict[TokenType, timedelta] = {
            "access": timedelta(minutes=settings.access_token_minutes),
            "refresh": timedelta(days=settings.refresh_token_days),
        }
        # A client sends the same access token with every request until it expires: its
        # signature and claims are checked once, its expiry every time (see `decode`).
        self._verified = lru_cache(maxsize=4096)(self._decode_verified)

    def lifetime(self, token_type: TokenType) -> timedelta:
        return self._lifetimes[token_type]

    def issue(
        self, user_id: int, session_id: str, token_type: TokenType
    ) -> tuple[str, TokenClaims]:
        now = datetime.now(UTC).replace(microsecond=0)
        claims = TokenClaims(
            user_id=user_id,
            session_id=session_id,
            jti=str(uuid.uuid4()),
            type=token_type,
            issued_at=now,
            expires_at=now + self._lifetimes[token_type],
        )
        payload = {
            "sub": str(user_id),
            "sid": session_id,
            "jti": claims.jti,
            "type": token_type,
            "iat": int(now.timestamp()),
            "exp": int(claims.expires_at.timestamp()),
        }
        return jwt.encode(payload, self._key, algorithm=_ALGORITHM), claims

    def decode(self, token: str, expected: TokenType) -> TokenClaims:
        claims = self._verified(token, expected)
        if claims.expires_at.timestamp() <= time.time():
            raise InvalidToken("Signature has expired")
        return claims

    def _decode_verified(self, token: str, expected: TokenType) -> TokenClaims:
        return self._decode(token, expected, verify_exp=True)

    def decode_ignoring_expiry(self, token: str, expected: TokenType) -> TokenClaims:
        """For revoking: an expired but genuine token still names its session."""
        return self._decode(token, expected, verify_exp=False)

    def _decode(self, token: str, expected: TokenType, *, verify_exp: bool) -> TokenClaims:
        try:
            payload = jwt.decode(
                token,
                self._key,
                algorithms=[_ALGORITHM],  # a fixed list: `alg: none` and key confusion fail here
                options={
                    "require": ["exp", "iat", "sub", "jti", "sid", "type"],
                    "verify_exp": verify_exp,
                },
            )
        except jwt.PyJWTError as exc:
            raise InvalidToken(str(exc)) from exc
        if payload.get("type") != expected:
            raise InvalidToken(f"expected a {expected} token")
        try:
            return TokenClaims(
                user_id=int(payload["sub"]),
                session_id=str(payload["sid"]),
                jti=str(payload["jti"]),
                type=expected,
                issued_at=datetime.fromtimestamp(int(payload["iat"]), UTC),
                expires_at=datetime.fromtimestamp(int(payload["exp"]), UTC),
            )
        except (TypeError, ValueError) as exc:
            raise InvalidToken("malformed claims") from exc
