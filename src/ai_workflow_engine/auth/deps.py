"""The current-user dependency. Every failure in it is a 401 or a 503, never a 500."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

import structlog
from fastapi import Depends, Request
from fastapi.security import OAuth2PasswordBearer

from ai_workflow_engine.auth.state import AuthStateStore
from ai_workflow_engine.core.db import SessionDep
from ai_workflow_engine.core.errors import Problem, Unauthorized
from ai_workflow_engine.core.security import InvalidToken, PasswordHasher, TokenClaims, TokenCodec
from ai_workflow_engine.users.models import User

bearer_scheme = OAuth2PasswordBearer(tokenUrl="/api/v1/auth/jwt/login", auto_error=False)

PROBLEM_CONTENT = {"application/problem+json": {"schema": Problem.model_json_schema()}}
AUTH_RESPONSES: dict[int | str, dict[str, Any]] = {
    401: {"model": Problem, "description": "Missing, invalid, expired or revoked token"},
}


def token_codec(request: Request) -> TokenCodec:
    codec: TokenCodec = request.app.state.token_codec
    return codec


def auth_state(request: Request) -> AuthStateStore:
    store: AuthStateStore = request.app.state.auth_state
    return store


def password_hasher(request: Request) -> PasswordHasher:
    hasher: PasswordHasher = request.app.state.password_hasher
    return hasher


TokenCodecDep = Annotated[TokenCodec, Depends(token_codec)]
AuthStateDep = Annotated[AuthStateStore, Depends(auth_state)]
PasswordHasherDep = Annotated[PasswordHasher, Depends(password_hasher)]


@dataclass(frozen=True, slots=True)
class Authenticated:
    user: User
    claims: TokenClaims


async def authenticate(
    session: SessionDep,
    codec: TokenCodecDep,
    store: AuthStateDep,
    token: Annotated[str | None, Depends(bearer_scheme)],
) -> Authenticated:
    if not token:
        raise Unauthorized()
    try:
        claims = codec.decode(token, "access")
    except InvalidToken as exc:
        raise Unauthorized("Invalid or expired access token") from exc
    structlog.contextvars.bind_contextvars(user_id=claims.user_id)  # on every later log line
    if await store.is_session_revoked(session, claims.session_id):
        raise Unauthorized("This token has been revoked")
    user = await session.get(User, claims.user_id)
    if user is None or not user.is_active:
        raise Unauthorized("The token's user no longer exists")
    return Authenticated(user=user, claims=claims)


async def current_user(auth: Annotated[Authenticated, Depends(authenticate)]) -> User:
    return auth.user


AuthenticatedDep = Annotated[Authenticated, Depends(authenticate)]
CurrentUser = Annotated[User, Depends(current_user)]
