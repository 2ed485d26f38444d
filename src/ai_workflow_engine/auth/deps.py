"""The current-user dependency. Every failure in it is a 401 or a 503, never a 500."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

import structlog
from fastapi import Depends, Request
from fastapi.security import OAuth2PasswordBearer
from sqlalchemy import bindparam, false, select

from ai_workflow_engine.auth.state import AuthStateStore
from ai_workflow_engine.core.db import CompiledRead, SessionDep
from ai_workflow_engine.core.errors import Problem, Unauthorized
from ai_workflow_engine.core.security import InvalidToken, PasswordHasher, TokenClaims, TokenCodec
from ai_workflow_engine.users.models import User

bearer_scheme = OAuth2PasswordBearer(tokenUrl="/api/v1/auth/jwt/login", auto_error=False)

PROBLEM_CONTENT = {"application/problem+json": {"schema": Problem.model_json_schema()}}
AUTH_RESPONSES: dict[int | str, dict[str, Any]] = {
    401: {"model": Problem, "description": "Missing, invalid, expired or revoked token"},
}


# `async def` even where nothing is awaited: FastAPI runs a plain `def` dependency in a worker
# thread, a hand-off that costs more than these getters themselves


async def token_codec(request: Request) -> TokenCodec:
    codec: TokenCodec = request.app.state.token_codec
    return codec


async def auth_state(request: Request) -> AuthStateStore:
    store: AuthStateStore = request.app.state.auth_state
    return store


async def password_hasher(request: Request) -> PasswordHasher:
    hasher: PasswordHasher = request.app.state.password_hasher
    return hasher


TokenCodecDep = Annotated[TokenCodec, Depends(token_codec)]
AuthStateDep = Annotated[AuthStateStore, Depends(auth_state)]
PasswordHasherDep = Annotated[PasswordHasher, Depends(password_hasher)]


@dataclass(frozen=True, slots=True)
class Authenticated:
    """The authenticated user, by id (all that nearly every route needs, without its row), and
    the claims of the access token."""

    id: int
    claims: TokenClaims


async def authenticate(
    request: Request,
    session: SessionDep,
    token: Annotated[str | None, Depends(bearer_scheme)],
) -> Authenticated:
    # the codec and store are read here rather than as dependencies of their own: every
    # authenticated request resolves this, and each dependency costs a little
    codec: TokenCodec = request.app.state.token_codec
    store: AuthStateStore = request.app.state.auth_state
    if not token:
        raise Unauthorized()
    try:
        claims = codec.decode(token, "access")
    except InvalidToken as exc:
        raise Unauthorized("Invalid or expired access token") from exc
    structlog.contextvars.bind_contextvars(user_id=claims.user_id)  # on every later log line
    statement, checks_revocation = _user_check(store)
    if not checks_revocation and await store.is_session_revoked(session, claims.session_id):
        raise Unauthorized("This token has been revoked")
    # one query: whether the user is still active and, when revocations live in the database,
    # whether this login session was revoked
    params = {"user_id": claims.user_id, "session_id": claims.session_id}
    rows = await statement.rows(session, params)
    if rows and rows[0][1]:
        raise Unauthorized("This token has been revoked")
    if not rows or not rows[0][0]:
        raise Unauthorized("The token's user no longer exists")
    return Authenticated(id=claims.user_id, claims=claims)


_user_checks: dict[type[AuthStateStore], tuple[CompiledRead, bool]] = {}


def _user_check(store: AuthStateStore) -> tuple[CompiledRead, bool]:
    """The statement `authenticate` runs, and whether it checks revocation too; built once per
    kind of store, as building a statement costs more than running a cached one."""
    found = _user_checks.get(type(store))
    if found is None:
        revoked = store.revoked_condition()
        statement = select(
            User.is_active,
            (revoked if revoked is not None else false()).label("revoked"),
        ).where(User.id == bindparam("user_id"))
        found = _user_checks[type(store)] = (CompiledRead(statement), revoked is not None)
    return found


AuthenticatedDep = Annotated[Authenticated, Depends(authenticate)]


async def current_user_record(auth: AuthenticatedDep, session: SessionDep) -> User:
    """The authenticated user's whole row, for the routes that show it."""
    user = await session.get(User, auth.id)
    if user is None:  # deleted since `authenticate` saw it
        raise Unauthorized("The token's user no longer exists")
    return user


CurrentUser = AuthenticatedDep
"""The authenticated user: `user.id`, without loading the row."""
CurrentUserRecord = Annotated[User, Depends(current_user_record)]
