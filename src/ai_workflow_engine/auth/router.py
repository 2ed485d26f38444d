from __future__ import annotations

from typing import Annotated

from fastapi import Body, Form, Response, status

from ai_workflow_engine.auth import service
from ai_workflow_engine.auth.deps import (
    AUTH_RESPONSES,
    AuthenticatedDep,
    AuthStateDep,
    PasswordHasherDep,
    TokenCodecDep,
)
from ai_workflow_engine.auth.schemas import LoginForm, LogoutRequest, RefreshRequest, TokenPair
from ai_workflow_engine.core.db import SessionDep
from ai_workflow_engine.core.errors import Problem
from ai_workflow_engine.core.routing import PrefixRouter
from ai_workflow_engine.users.schemas import UserCreate, UserRead
from ai_workflow_engine.users.service import create_user

router = PrefixRouter(prefix="/api/v1/auth", tags=["auth"])


@router.post(
    "/register",
    status_code=status.HTTP_201_CREATED,
    response_model=UserRead,
    responses={409: {"model": Problem, "description": "Email or username already taken"}},
)
async def register(data: UserCreate, session: SessionDep, hasher: PasswordHasherDep) -> UserRead:
    """Create an account. Email and username are unique case-insensitively."""
    return UserRead.model_validate(await create_user(session, hasher, data))


@router.post(
    "/jwt/login",
    response_model=TokenPair,
    responses={
        401: {"model": Problem, "description": "Wrong username/email or password"},
        429: {"model": Problem, "description": "Too many failed logins on this account"},
    },
)
async def login(
    form: Annotated[LoginForm, Form()],
    session: SessionDep,
    codec: TokenCodecDep,
    hasher: PasswordHasherDep,
    store: AuthStateDep,
) -> TokenPair:
    """Log in with the username or the email (form-encoded, OAuth2 password grant)."""
    return await service.login(session, codec, hasher, store, form.username, form.password)


@router.post(
    "/jwt/refresh",
    response_model=TokenPair,
    responses={401: {"model": Problem, "description": "Invalid, expired or spent refresh token"}},
)
async def refresh(
    data: RefreshRequest, session: SessionDep, codec: TokenCodecDep, store: AuthStateDep
) -> TokenPair:
    """Trade a refresh token for a new pair. Each refresh token works once."""
    return await service.refresh(session, codec, store, data.refresh_token)


@router.post(
    "/jwt/logout",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    responses=AUTH_RESPONSES,
)
async def logout(
    auth: AuthenticatedDep,
    session: SessionDep,
    codec: TokenCodecDep,
    store: AuthStateDep,
    data: Annotated[LogoutRequest | None, Body()] = None,
) -> Response:
    """End this login session: its access token (and the refresh token, if given) stop working."""
    await service.logout(
        session,
        codec,
        store,
        auth.id,
        auth.claims.session_id,
        data.refresh_token if data else None,
    )
    return Response(status_code=status.HTTP_204_NO_CONTENT)
