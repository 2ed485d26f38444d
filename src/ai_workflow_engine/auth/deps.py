"""The current-user dependency. Every failure in it is a 401 or a 503, never a 500."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Annotated, Any

import structlog
from fastapi import Depends, Request
from fastapi.security import OAuth2PasswordBearer
from fastapi.security.utils import get_authorization_scheme_param
from sqlalchemy import ColumnElement, Select, bindparam, false, select
from sqlalchemy.ext.asyncio import AsyncEngine

from ai_workflow_engine.auth.state import AuthStateStore
from ai_workflow_engine.core.db import CompiledRead, SessionDep
from ai_workflow_engine.core.errors import Problem, Unauthorized
from ai_workflow_engine.core.security import InvalidToken, PasswordHasher, TokenClaims, TokenCodec
from ai_workflow_engine.users.models import User

bearer_scheme = OAuth2PasswordBearer(tokenUrl="/api/v1/auth/jwt/login", auto_error=False)
BEARER_SECURITY: dict[str, Any] = {"security": [{bearer_scheme.scheme_name: []}]}
"""`openapi_extra` of a route that reads the bearer token itself (see `AuthenticatedReader`)."""

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


def access_claims(request: Request, token: str | None) -> TokenClaims:
    """The claims of the request's access token; 401 when it is missing, invalid or expired."""
    if not token:
        raise Unauthorized()
    codec: TokenCodec = request.app.state.token_codec
    try:
        claims = codec.decode(token, "access")
    except InvalidToken as exc:
        raise Unauthorized("Invalid or expired access token") from exc
    structlog.contextvars.bind_contextvars(user_id=claims.user_id)  # on every later log line
    return claims


def bearer_token(request: Request) -> str | None:
    """The bearer token of the Authorization header, read as `bearer_scheme` reads it."""
    scheme, token = get_authorization_scheme_param(request.headers.get("authorization"))
    return token if scheme.lower() == "bearer" else None


def _check_user(found: tuple[Any, ...] | None) -> None:
    """401 unless the (is active, session revoked) flags read for the token say it is good."""
    if found is not None and found[1]:
        raise Unauthorized("This token has been revoked")
    if found is None or not found[0]:
        raise Unauthorized("The token's user no longer exists")


async def authenticate(
    request: Request,
    session: SessionDep,
    token: Annotated[str | None, Depends(bearer_scheme)],
) -> Authenticated:
    claims = access_claims(request, token)
    store: AuthStateStore = request.app.state.auth_state
    statement, checks_revocation = _user_check(store)
    if not checks_revocation and await store.is_session_revoked(session, claims.session_id):
        raise Unauthorized("This token has been revoked")
    # one query: whether the user is still active and, when revocations live in the database,
    # whether this login session was revoked
    params = {"user_id": claims.user_id, "session_id": claims.session_id}
    rows = await statement.rows(session, params)
    _check_user(rows[0] if rows else None)
    return Authenticated(id=claims.user_id, claims=claims)


_user_checks: dict[type[AuthStateStore], tuple[CompiledRead, bool]] = {}


def _user_flags(store: AuthStateStore) -> tuple[list[ColumnElement[Any]], bool]:
    """The (is active, session revoked) columns for the user and session bound as `user_id` and
    `session_id`, and whether the second checks revocation (or the store does, elsewhere)."""
    revoked = store.revoked_condition()
    active = select(User.is_active).where(User.id == bindparam("user_id")).scalar_subquery()
    flags = [active.label("user_active"), (revoked if revoked is not None else false())]
    return flags, revoked is not None


def _user_check(store: AuthStateStore) -> tuple[CompiledRead, bool]:
    """The statement `authenticate` runs, and whether it checks revocation too; built once per
    kind of store, as building a statement costs more than running a cached one."""
    found = _user_checks.get(type(store))
    if found is None:
        flags, checks_revocation = _user_flags(store)
        found = _user_checks[type(store)] = (CompiledRead(select(*flags)), checks_revocation)
    return found


class AuthenticatedReader:
    """Reads for a request that authenticate it in the same round trip.

    For a route whose only database work is one SELECT: the token is checked when the reader is
    made (no database needed), and the user's flags (active, and the session revoked when
    revocations live in the database) are two more columns of each row of the statement, so that
    the whole request costs one query. When the statement finds no row, the flags are read on
    their own. The answers are those of `authenticate`: 401 for a missing, invalid, expired or
    revoked token, or a user who is gone.
    """

    def __init__(self, request: Request) -> None:
        self._request = request
        self.claims = access_claims(request, bearer_token(request))
        self._store: AuthStateStore = request.app.state.auth_state

    async def rows(
        self, statement: Select[*tuple[Any, ...]], params: dict[str, Any]
    ) -> list[tuple[Any, ...]]:
        """The rows of `statement` for `params` and the user's id bound as `user_id`, each with two
        more columns after the statement's own (the flags). Instants are naive UTC datetimes (see
        `CompiledRead.read`)."""
        store = self._store
        engine: AsyncEngine = self._request.app.state.engine
        read, checks_revocation = _with_user_flags(statement, store)
        if not checks_revocation:
            async with self._request.app.state.sessionmaker() as session:  # connects if it must
                if await store.is_session_revoked(session, self.claims.session_id):
                    raise Unauthorized("This token has been revoked")
        params = params | {"user_id": self.claims.user_id, "session_id": self.claims.session_id}
        rows = await read.read(engine, params)
        if rows:
            _check_user(rows[0][-2:])
            return rows
        check, _ = _user_check(store)
        found = await check.read(engine, params)
        _check_user(found[0] if found else None)
        return rows


@lru_cache(maxsize=1024)
def _with_user_flags(
    statement: Select[*tuple[Any, ...]], store: AuthStateStore
) -> tuple[CompiledRead, bool]:
    """`statement` with the user's flags as two more columns (one per statement and store)."""
    flags, checks_revocation = _user_flags(store)
    return CompiledRead(statement.add_columns(*flags)), checks_revocation


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
