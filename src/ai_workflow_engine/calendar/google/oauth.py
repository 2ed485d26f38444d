"""Google's OAuth 2.0 endpoints through Authlib: consent URL (PKCE), code exchange, refresh, revoke.

Nothing here logs or returns a token, code, secret or verifier in an error: Google's failures are
mapped to our problems (`ReconnectRequired`, `GoogleUnavailable`, `GoogleTimeout`,
`GoogleBadGateway`) whose texts say what happened, never with what.
"""

from __future__ import annotations

import secrets
import warnings
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any, TypeVar

import httpx
import jwt
import structlog
from authlib.deprecate import AuthlibDeprecationWarning  # type: ignore[import-untyped]

from ai_workflow_engine.calendar.errors import (
    GoogleBadGateway,
    GoogleNotConfigured,
    GoogleTimeout,
    GoogleUnavailable,
    ReconnectRequired,
)
from ai_workflow_engine.calendar.google.client import parse_retry_after
from ai_workflow_engine.core.config import GoogleSettings
from ai_workflow_engine.core.db import utcnow
from ai_workflow_engine.core.errors import AppError, BadRequest

with warnings.catch_warnings():
    # Authlib announces a move to the `httpx2` package; this service is built on httpx.
    warnings.simplefilter("ignore", AuthlibDeprecationWarning)
    from authlib.integrations.base_client import OAuthError  # type: ignore[import-untyped]
    from authlib.integrations.httpx_client import (  # type: ignore[import-untyped]
        AsyncOAuth2Client,
    )

log = structlog.get_logger(__name__)

T = TypeVar("T")

_SERVER_ERRORS = frozenset({"server_error", "temporarily_unavailable"})


@dataclass(frozen=True, slots=True)
class AuthorizationRequest:
    """A consent URL and the secrets that must be kept (server-side) to complete it."""

    url: str = field(repr=False)  # carries the state
    state: str = field(repr=False)
    code_verifier: str = field(repr=False)


@dataclass(frozen=True, slots=True)
class GrantedTokens:
    """What Google's token endpoint granted."""

    access_token: str = field(repr=False)
    refresh_token: str | None = field(repr=False)
    expires_at: datetime | None
    # the granted scopes when Google said (it does on an exchange, may not on a refresh)
    scopes: str | None
    id_token: str | None = field(default=None, repr=False)


class _GoogleAnswered(Exception):
    """Raised from Authlib's response hook: a status we map before Authlib parses the body."""

    def __init__(self, response: httpx.Response) -> None:
        super().__init__(f"HTTP {response.status_code}")
        self.status_code = response.status_code
        self.retry_after = parse_retry_after(response.headers.get("Retry-After"))


def _check_status(response: httpx.Response) -> httpx.Response:
    if response.status_code == 429 or response.status_code >= 500:
        raise _GoogleAnswered(response)
    return response


class _SharedClientTransport(httpx.AsyncBaseTransport):
    """Sends Authlib's requests through the app's shared client: its connection pool, TLS
    context and limits (a client of its own would build a TLS context per call). Closing the
    Authlib client leaves the shared one open."""

    def __init__(self, http: httpx.AsyncClient) -> None:
        self._http = http

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        return await self._http.send(request, stream=True, follow_redirects=False)


class GoogleOAuth:
    """The OAuth client of this server, configured from GoogleSettings."""

    def __init__(self, settings: GoogleSettings, http: httpx.AsyncClient) -> None:
        self._settings = settings
        self._http = http

    @asynccontextmanager
    async def _client(self) -> AsyncIterator[Any]:
        settings = self._settings
        if not settings.configured or settings.google_client_secret is None:
            raise GoogleNotConfigured()
        client = AsyncOAuth2Client(
            client_id=settings.google_client_id,
            client_secret=settings.google_client_secret.get_secret_value(),
            token_endpoint_auth_method="client_secret_post",  # noqa: S106 - a method name
            revocation_endpoint_auth_method="client_secret_post",
            scope=settings.google_scopes,
            redirect_uri=settings.redirect_uri,
            code_challenge_method="S256",
            timeout=self._http.timeout,
            transport=_SharedClientTransport(self._http),
        )
        client.register_compliance_hook("access_token_response", _check_status)
        client.register_compliance_hook("refresh_token_response", _check_status)
        async with client:
            yield client

    async def authorization_request(self) -> AuthorizationRequest:
        """Google's consent URL with a fresh single-use state and a PKCE (S256) challenge."""
        state = secrets.token_urlsafe(32)
        code_verifier = secrets.token_urlsafe(64)
        async with self._client() as client:
            url, _ = client.create_authorization_url(
                self._settings.google_auth_uri,
                state=state,
                code_verifier=code_verifier,
                access_type="offline",
                prompt="consent",
            )
        return AuthorizationRequest(url=url, state=state, code_verifier=code_verifier)

    async def exchange_code(self, code: str, code_verifier: str) -> GrantedTokens:
        """Trade an authorization code (and its PKCE verifier) for tokens.

        A code Google refuses (expired, used, or a verifier that does not match) is a 400.
        """

        async def fetch(client: Any) -> Any:
            return await client.fetch_token(
                self._settings.google_token_uri,
                grant_type="authorization_code",
                code=code,
                code_verifier=code_verifier,
            )

        try:
            token = await self._call("code_exchange", fetch)
        except ReconnectRequired:
            raise BadRequest(
                "Google refused the authorization code (expired or already used); "
                "start the connection again"
            ) from None
        granted = self._granted(token)
        if granted.scopes is None:
            # Google names the granted scopes only when they differ from those asked for
            granted = replace(granted, scopes=self._settings.google_scopes)
        return granted

    async def refresh(self, refresh_token: str) -> GrantedTokens:
        """A new access token for a refresh token; `refresh_token` is set only when Google
        rotated it.

        `invalid_grant` (revoked, expired) raises `ReconnectRequired`.
        """

        async def fetch(client: Any) -> Any:
            # scope=None: a refresh keeps the granted scopes; do not ask for others
            return await client.refresh_token(
                self._settings.google_token_uri, refresh_token=refresh_token, scope=None
            )

        granted = self._granted(await self._call("refresh", fetch))
        if granted.refresh_token == refresh_token:
            # Authlib copies the old one into the answer when Google sent none: not a rotation
            granted = replace(granted, refresh_token=None)
        return granted

    async def revoke(self, token: str) -> None:
        """Revoke a grant at Google. A token Google no longer knows counts as revoked."""

        async def post(client: Any) -> httpx.Response:
            response = await client.revoke_token(self._settings.google_revoke_uri, token=token)
            return _check_status(response)

        response = await self._call("revoke", post)
        if response.status_code == 200 or response.status_code == 400:
            # 400 invalid_token: already revoked or expired, which is what we wanted
            return
        raise GoogleBadGateway(
            f"Google's revocation endpoint answered HTTP {response.status_code}",
            self._settings.google_retry_after_seconds,
        )

    async def _call(self, operation: str, run: Callable[[Any], Awaitable[T]]) -> T:
        retry_after = self._settings.google_retry_after_seconds
        try:
            async with self._client() as client:
                return await run(client)
        except AppError:
            raise
        except _GoogleAnswered as exc:
            log.warning("google_oauth_failed", operation=operation, status=exc.status_code)
            wait = max(retry_after, int(exc.retry_after or 0))
            raise GoogleUnavailable(
                f"Google's OAuth endpoint is unavailable (HTTP {exc.status_code})", wait
            ) from None
        except httpx.TimeoutException:
            log.warning("google_oauth_failed", operation=operation, status="timeout")
            raise GoogleTimeout(
                "Google's OAuth endpoint did not answer in time", retry_after
            ) from None
        except httpx.TransportError as exc:
            log.warning("google_oauth_failed", operation=operation, status=type(exc).__name__)
            raise GoogleUnavailable(
                "Google's OAuth endpoint cannot be reached", retry_after
            ) from None
        except OAuthError as exc:
            error = str(exc.error)
            log.warning("google_oauth_failed", operation=operation, error=error)
            if error == "invalid_grant":
                raise ReconnectRequired() from None
            if error in _SERVER_ERRORS:
                raise GoogleUnavailable(
                    "Google's OAuth endpoint is unavailable", retry_after
                ) from None
            raise GoogleBadGateway(
                f"Google's OAuth endpoint refused ({error})", retry_after
            ) from None
        except (httpx.HTTPStatusError, ValueError, KeyError, TypeError, RecursionError) as exc:
            # a body that is no token response (HTML error page, not JSON, wrong shape, nested
            # past the parser's limit)
            log.warning("google_oauth_failed", operation=operation, error=type(exc).__name__)
            raise GoogleBadGateway(
                "Google's OAuth endpoint sent an unusable answer", retry_after
            ) from None

    def _granted(self, token: Any) -> GrantedTokens:
        access_token = token.get("access_token")
        if not isinstance(access_token, str) or not access_token:
            raise GoogleBadGateway(
                "Google's token endpoint sent no access token",
                self._settings.google_retry_after_seconds,
            )
        refresh_token = token.get("refresh_token") or None
        expires_in = token.get("expires_in")
        expires_at = None
        if isinstance(expires_in, int | float | str) and str(expires_in).isdigit():
            expires_at = utcnow() + timedelta(seconds=int(expires_in))
        scope = token.get("scope")
        id_token = token.get("id_token")
        return GrantedTokens(
            access_token=access_token,
            refresh_token=refresh_token if isinstance(refresh_token, str) else None,
            expires_at=expires_at,
            scopes=scope if isinstance(scope, str) else None,
            id_token=id_token if isinstance(id_token, str) and id_token else None,
        )

    def email_from_id_token(self, id_token: str) -> str | None:
        """The `email` claim of an ID token received straight from Google's token endpoint.

        Its signature is not checked: it came over TLS from the token endpoint itself (OpenID
        Connect Core 3.1.3.7), but it must be meant for this client.
        """
        try:
            claims = jwt.decode(id_token, options={"verify_signature": False})
        except jwt.PyJWTError:
            return None
        audience = claims.get("aud")
        audiences = audience if isinstance(audience, list) else [audience]
        if self._settings.google_client_id not in audiences:
            return None
        email = claims.get("email")
        return email if isinstance(email, str) and email else None
