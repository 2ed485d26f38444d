"""Google's OAuth 2.0 web-server flow: consent (authorization code, PKCE), token endpoint
(authorization_code and refresh_token grants), revocation, and access-token checks.

The id_token is a JWT signed with HS256 using the OAuth client's secret (OpenID Connect allows this
for confidential clients); Google signs with RS256 keys from its JWKS, which a test cannot fetch.
Verify it with the client secret or decode it without verification.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import json
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import urlencode, urlsplit

from tests.google_standin.common import Clock, OAuthError, StandinConfig
from tests.google_standin.store import User

GOOGLE_ISSUER = "https://accounts.google.com"
USERINFO_EMAIL = "https://www.googleapis.com/auth/userinfo.email"
USERINFO_PROFILE = "https://www.googleapis.com/auth/userinfo.profile"
CALENDAR = "https://www.googleapis.com/auth/calendar"
CALENDAR_READONLY = "https://www.googleapis.com/auth/calendar.readonly"
CALENDAR_EVENTS = "https://www.googleapis.com/auth/calendar.events"
CALENDAR_EVENTS_READONLY = "https://www.googleapis.com/auth/calendar.events.readonly"
CALENDARLIST = "https://www.googleapis.com/auth/calendar.calendarlist"
CALENDARLIST_READONLY = "https://www.googleapis.com/auth/calendar.calendarlist.readonly"

# Google reports the short OpenID scopes under their URL names in the token response.
_SCOPE_ALIASES = {"email": USERINFO_EMAIL, "profile": USERINFO_PROFILE}
KNOWN_SCOPES = frozenset(
    {
        "openid",
        USERINFO_EMAIL,
        USERINFO_PROFILE,
        CALENDAR,
        CALENDAR_READONLY,
        CALENDAR_EVENTS,
        CALENDAR_EVENTS_READONLY,
        CALENDARLIST,
        CALENDARLIST_READONLY,
        "https://www.googleapis.com/auth/calendar.events.owned",
        "https://www.googleapis.com/auth/calendar.events.owned.readonly",
        "https://www.googleapis.com/auth/calendar.settings.readonly",
        "https://www.googleapis.com/auth/calendar.freebusy",
    }
)
CALENDAR_LIST_SCOPES = frozenset({CALENDAR, CALENDAR_READONLY, CALENDARLIST, CALENDARLIST_READONLY})
EVENTS_LIST_SCOPES = frozenset(
    {
        CALENDAR,
        CALENDAR_READONLY,
        CALENDAR_EVENTS,
        CALENDAR_EVENTS_READONLY,
        "https://www.googleapis.com/auth/calendar.events.owned",
        "https://www.googleapis.com/auth/calendar.events.owned.readonly",
    }
)
DEFAULT_SCOPES = ("openid", USERINFO_EMAIL, CALENDAR_READONLY)
_PKCE_CHARS = re.compile(r"^[A-Za-z0-9\-._~]{43,128}$")


def normalize_scopes(scope: str) -> list[str]:
    out: list[str] = []
    for item in scope.split():
        name = _SCOPE_ALIASES.get(item, item)
        if name not in out:
            out.append(name)
    return out


def s256(verifier: str) -> str:
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


@dataclass
class OAuthClient:
    client_id: str
    client_secret: str
    redirect_uris: tuple[str, ...] = ()  # empty: any http(s) URI is accepted


@dataclass
class Grant:
    id: int
    client_id: str
    email: str
    scopes: list[str]
    revoked: bool = False
    refresh_tokens: list[str] = field(default_factory=list)


@dataclass
class AuthCode:
    code: str
    client_id: str
    redirect_uri: str
    email: str
    scopes: list[str]
    grant_id: int
    expires_at: dt.datetime
    issue_refresh_token: bool
    code_challenge: str | None
    code_challenge_method: str | None
    nonce: str | None
    used: bool = False


@dataclass
class AccessToken:
    token: str
    grant_id: int
    client_id: str
    email: str
    scopes: list[str]
    expires_at: dt.datetime
    revoked: bool = False


@dataclass
class RefreshToken:
    token: str
    grant_id: int
    client_id: str
    expires_at: dt.datetime | None
    revoked: bool = False


@dataclass
class ConsentPlan:
    """How the (simulated) user answers the next consent screen."""

    email: str | None = None  # None: login_hint if it names a known user, else the default user
    deny: bool = False  # answer ?error=access_denied
    error: str = "access_denied"
    granted_scopes: list[str] | None = None  # None: everything requested (granular consent off)


@dataclass
class ConsentResult:
    redirect: str | None = None  # Location of the 302
    error_status: int = 0  # otherwise an error page
    error: str = ""
    error_description: str = ""


class OAuthServer:
    def __init__(self, config: StandinConfig, clock: Clock, users: Mapping[str, User]) -> None:
        self.config = config
        self.clock = clock
        self.users = users
        self.clients: dict[str, OAuthClient] = {}
        self.grants: dict[int, Grant] = {}
        self.codes: dict[str, AuthCode] = {}
        self.access_tokens: dict[str, AccessToken] = {}
        self.refresh_tokens: dict[str, RefreshToken] = {}
        self.consent_requests: list[dict[str, str]] = []
        self.consent_plans: list[ConsentPlan] = []
        self.default_consent = ConsentPlan()
        self.default_email: str | None = None
        self._grant_ids = 0

    # -- consent -------------------------------------------------------------------------------

    def authorize(self, params: Mapping[str, str]) -> ConsentResult:
        self.consent_requests.append(dict(params))
        client = self.clients.get(params.get("client_id", ""))
        if client is None:
            return ConsentResult(
                error_status=401,
                error="invalid_client",
                error_description="The OAuth client was not found.",
            )
        redirect_uri = params.get("redirect_uri", "")
        if not self._redirect_allowed(client, redirect_uri):
            return ConsentResult(
                error_status=400,
                error="redirect_uri_mismatch",
                error_description=(
                    "You can't sign in to this app because it doesn't comply with Google's OAuth "
                    "2.0 policy. If you're the app developer, register the redirect URI in the "
                    f"Google Cloud Console. Request details: redirect_uri={redirect_uri}"
                ),
            )

        def invalid(description: str, error: str = "invalid_request") -> ConsentResult:
            return ConsentResult(error_status=400, error=error, error_description=description)

        response_type = params.get("response_type")
        if not response_type:
            return invalid("Required parameter is missing: response_type")
        if response_type != "code":
            return invalid(f"Invalid response_type: {response_type}", "unsupported_response_type")
        scope = params.get("scope", "").strip()
        if not scope:
            return invalid("Missing required parameter: scope")
        requested = normalize_scopes(scope)
        unknown = [s for s in requested if s not in KNOWN_SCOPES | self.config.extra_scopes]
        if unknown:
            return invalid(
                f"Some requested scopes were invalid. {{invalid={unknown}}}", "invalid_scope"
            )
        challenge = params.get("code_challenge")
        method = params.get("code_challenge_method")
        if method is not None and challenge is None:
            return invalid("code_challenge_method is set but code_challenge is missing")
        if challenge is not None:
            method = method or "plain"
            if method not in ("S256", "plain"):
                return invalid(f"Invalid code_challenge_method: {method}")
            if not _PKCE_CHARS.match(challenge):
                return invalid("Invalid code_challenge")
        if self.config.require_pkce and (challenge is None or method != "S256"):
            return invalid("This stand-in requires PKCE: code_challenge_method=S256")
        access_type = params.get("access_type", "online")
        if access_type not in ("online", "offline"):
            return invalid(f"Invalid access_type: {access_type}")
        prompts = set(params.get("prompt", "").split())
        if not prompts <= {"none", "consent", "select_account"} or (
            "none" in prompts and len(prompts) > 1
        ):
            return invalid(f"Invalid prompt: {params.get('prompt')}")
        state = params.get("state")
        if self.config.require_state and not state:
            return invalid("This stand-in requires a state parameter")

        plan = self.consent_plans.pop(0) if self.consent_plans else self.default_consent
        email = plan.email
        login_hint = params.get("login_hint")
        if email is None and login_hint in self.users:
            email = login_hint
        email = email or self.default_email
        if email is None or email not in self.users:
            return invalid(f"No Google account {email!r} is known to the stand-in", "access_denied")

        def back(**values: str) -> ConsentResult:
            query = {"state": state, **values} if state is not None else values
            sep = "&" if urlsplit(redirect_uri).query else "?"
            return ConsentResult(redirect=f"{redirect_uri}{sep}{urlencode(query)}")

        if plan.deny:
            return back(error=plan.error)
        granted = (
            requested
            if plan.granted_scopes is None
            else normalize_scopes(" ".join(plan.granted_scopes))
        )
        grant = self._live_grant(client.client_id, email)
        if "none" in prompts and (grant is None or not set(granted) <= set(grant.scopes)):
            return back(error="consent_required")
        if grant is None:
            grant = self._new_grant(client.client_id, email, granted)
        elif params.get("include_granted_scopes") == "true":
            grant.scopes = grant.scopes + [s for s in granted if s not in grant.scopes]
        else:
            grant.scopes = [s for s in grant.scopes if s in granted] + [
                s for s in granted if s not in grant.scopes
            ]
        has_refresh = any(not self.refresh_tokens[t].revoked for t in grant.refresh_tokens)
        issue_refresh = access_type == "offline" and ("consent" in prompts or not has_refresh)
        code = "4/0A" + secrets.token_urlsafe(48)
        self.codes[code] = AuthCode(
            code=code,
            client_id=client.client_id,
            redirect_uri=redirect_uri,
            email=email,
            scopes=list(grant.scopes),
            grant_id=grant.id,
            expires_at=self.clock.now() + dt.timedelta(seconds=self.config.auth_code_lifetime),
            issue_refresh_token=issue_refresh,
            code_challenge=challenge,
            code_challenge_method=method if challenge is not None else None,
            nonce=params.get("nonce"),
        )
        values = {"code": code, "scope": " ".join(grant.scopes), "authuser": "0"}
        if prompts:
            values["prompt"] = " ".join(sorted(prompts))
        return back(**values)

    def _redirect_allowed(self, client: OAuthClient, redirect_uri: str) -> bool:
        if not redirect_uri:
            return False
        if client.redirect_uris:
            return redirect_uri in client.redirect_uris
        parts = urlsplit(redirect_uri)
        return parts.scheme in ("http", "https") and bool(parts.netloc) and not parts.fragment

    # -- token endpoint ------------------------------------------------------------------------

    def authenticate_client(
        self, form: Mapping[str, str], basic: tuple[str, str] | None
    ) -> OAuthClient:
        client_id = form.get("client_id")
        secret = form.get("client_secret")
        if basic is not None:
            if (client_id and client_id != basic[0]) or (secret and secret != basic[1]):
                raise OAuthError("invalid_request", "Conflicting client credentials.")
            client_id, secret = basic
        if not client_id:
            raise OAuthError("invalid_request", "Could not determine client ID from request.")
        client = self.clients.get(client_id)
        if client is None:
            raise OAuthError("invalid_client", "The OAuth client was not found.", 401)
        if not secret or not hmac.compare_digest(secret, client.client_secret):
            raise OAuthError("invalid_client", "Unauthorized", 401)
        return client

    def token(self, form: Mapping[str, str], basic: tuple[str, str] | None) -> dict[str, object]:
        grant_type = form.get("grant_type")
        if not grant_type:
            raise OAuthError("unsupported_grant_type", "Invalid grant_type: ")
        if grant_type not in ("authorization_code", "refresh_token"):
            raise OAuthError("unsupported_grant_type", f"Invalid grant_type: {grant_type}")
        client = self.authenticate_client(form, basic)
        if grant_type == "authorization_code":
            return self._exchange_code(client, form)
        return self._refresh(client, form)

    def _exchange_code(self, client: OAuthClient, form: Mapping[str, str]) -> dict[str, object]:
        value = form.get("code")
        if not value:
            raise OAuthError("invalid_request", "Missing required parameter: code")
        code = self.codes.get(value)
        if code is None:
            raise OAuthError("invalid_grant", "Malformed auth code.")
        if code.used or code.expires_at <= self.clock.now() or code.client_id != client.client_id:
            raise OAuthError("invalid_grant", "Bad Request")
        if form.get("redirect_uri") != code.redirect_uri:
            raise OAuthError("redirect_uri_mismatch", "Bad Request")
        if code.code_challenge is not None:
            verifier = form.get("code_verifier")
            if not verifier:
                raise OAuthError("invalid_grant", "Missing code verifier.")
            computed = s256(verifier) if code.code_challenge_method == "S256" else verifier
            if not _PKCE_CHARS.match(verifier) or not hmac.compare_digest(
                computed, code.code_challenge
            ):
                raise OAuthError("invalid_grant", "Invalid code verifier.")
        grant = self.grants[code.grant_id]
        if grant.revoked:
            raise OAuthError("invalid_grant", "Bad Request")
        code.used = True
        return self._issue(
            client, grant, code.scopes, refresh=code.issue_refresh_token, nonce=code.nonce
        )

    def _refresh(self, client: OAuthClient, form: Mapping[str, str]) -> dict[str, object]:
        value = form.get("refresh_token")
        if not value:
            raise OAuthError("invalid_request", "Missing required parameter: refresh_token")
        token = self.refresh_tokens.get(value)
        now = self.clock.now()
        if (
            token is None
            or token.revoked
            or self.grants[token.grant_id].revoked
            or (token.expires_at is not None and token.expires_at <= now)
        ):
            raise OAuthError("invalid_grant", "Token has been expired or revoked.")
        if token.client_id != client.client_id:
            raise OAuthError("unauthorized_client", "Unauthorized", 401)
        grant = self.grants[token.grant_id]
        scopes = list(grant.scopes)
        if form.get("scope"):
            wanted = normalize_scopes(form["scope"])
            if not set(wanted) <= set(grant.scopes):
                raise OAuthError("invalid_scope", "Bad Request")
            scopes = wanted
        rotate = self.config.rotate_refresh_tokens
        if rotate:
            token.revoked = True
        return self._issue(client, grant, scopes, refresh=rotate, nonce=None)

    def _issue(
        self,
        client: OAuthClient,
        grant: Grant,
        scopes: list[str],
        *,
        refresh: bool,
        nonce: str | None,
    ) -> dict[str, object]:
        now = self.clock.now()
        lifetime = self.config.access_token_lifetime
        access = "ya29." + secrets.token_urlsafe(64)
        self.access_tokens[access] = AccessToken(
            token=access,
            grant_id=grant.id,
            client_id=client.client_id,
            email=grant.email,
            scopes=list(scopes),
            expires_at=now + dt.timedelta(seconds=lifetime),
        )
        body: dict[str, object] = {"access_token": access, "expires_in": int(lifetime)}
        if refresh:
            body["refresh_token"] = self._new_refresh_token(client, grant)
        body["scope"] = " ".join(scopes)
        body["token_type"] = "Bearer"
        if "openid" in scopes:
            body["id_token"] = self._id_token(client, grant, scopes, access, nonce)
        return body

    def _new_refresh_token(self, client: OAuthClient, grant: Grant) -> str:
        value = "1//0" + secrets.token_urlsafe(72)
        lifetime = self.config.refresh_token_lifetime
        expires = None if lifetime is None else self.clock.now() + dt.timedelta(seconds=lifetime)
        self.refresh_tokens[value] = RefreshToken(value, grant.id, client.client_id, expires)
        grant.refresh_tokens.append(value)
        live = [t for t in grant.refresh_tokens if not self.refresh_tokens[t].revoked]
        for old in live[: max(0, len(live) - self.config.max_refresh_tokens_per_grant)]:
            self.refresh_tokens[old].revoked = True
        return value

    def _id_token(
        self, client: OAuthClient, grant: Grant, scopes: list[str], access: str, nonce: str | None
    ) -> str:
        user = self.users[grant.email]
        now = int(self.clock.now().timestamp())
        claims: dict[str, object] = {
            "iss": GOOGLE_ISSUER,
            "azp": client.client_id,
            "aud": client.client_id,
            "sub": user.sub,
        }
        if USERINFO_EMAIL in scopes:
            claims["email"] = user.email
            claims["email_verified"] = True
        claims["at_hash"] = _b64(hashlib.sha256(access.encode()).digest()[:16])
        if USERINFO_PROFILE in scopes and user.display_name:
            claims["name"] = user.display_name
        if nonce:
            claims["nonce"] = nonce
        claims["iat"] = now
        claims["exp"] = now + 3600
        header = {"alg": "HS256", "typ": "JWT"}
        signing_input = (
            _b64(json.dumps(header, separators=(",", ":")).encode())
            + "."
            + _b64(json.dumps(claims, separators=(",", ":")).encode())
        )
        signature = hmac.new(
            client.client_secret.encode(), signing_input.encode(), hashlib.sha256
        ).digest()
        return signing_input + "." + _b64(signature)

    # -- revocation ----------------------------------------------------------------------------

    def revoke(self, token: str | None) -> None:
        if not token:
            raise OAuthError("invalid_request", "Missing required parameter: token")
        now = self.clock.now()
        grant_id: int | None = None
        access = self.access_tokens.get(token)
        if access is not None and not access.revoked and access.expires_at > now:
            grant_id = access.grant_id
        refresh = self.refresh_tokens.get(token)
        if (
            refresh is not None
            and not refresh.revoked
            and (refresh.expires_at is None or refresh.expires_at > now)
        ):
            grant_id = refresh.grant_id
        if grant_id is None or self.grants[grant_id].revoked:
            raise OAuthError("invalid_token", "Token expired or revoked")
        self.revoke_grant(self.grants[grant_id])

    def revoke_grant(self, grant: Grant) -> None:
        grant.revoked = True
        for value in grant.refresh_tokens:
            self.refresh_tokens[value].revoked = True
        for access in self.access_tokens.values():
            if access.grant_id == grant.id:
                access.revoked = True

    # -- grants and bearer checks --------------------------------------------------------------

    def _live_grant(self, client_id: str, email: str) -> Grant | None:
        for grant in self.grants.values():
            if grant.client_id == client_id and grant.email == email and not grant.revoked:
                return grant
        return None

    def _new_grant(self, client_id: str, email: str, scopes: list[str]) -> Grant:
        self._grant_ids += 1
        grant = Grant(self._grant_ids, client_id, email, list(scopes))
        self.grants[grant.id] = grant
        return grant

    def mint(self, client_id: str, email: str, scopes: list[str]) -> dict[str, object]:
        """Tokens as if the user had consented with access_type=offline (no browser step)."""
        client = self.clients[client_id]
        if email not in self.users:
            raise KeyError(f"unknown user {email!r}")
        normalized = normalize_scopes(" ".join(scopes))
        grant = self._live_grant(client_id, email)
        if grant is None:
            grant = self._new_grant(client_id, email, normalized)
        else:
            grant.scopes = grant.scopes + [s for s in normalized if s not in grant.scopes]
        return self._issue(client, grant, normalized, refresh=True, nonce=None)

    def bearer(self, token: str) -> AccessToken | None:
        access = self.access_tokens.get(token)
        if (
            access is None
            or access.revoked
            or access.expires_at <= self.clock.now()
            or self.grants[access.grant_id].revoked
        ):
            return None
        return access
