"""Security headers on every HTTP response, errors and the docs pages included.

The API answers JSON (and Prometheus text) that no browser should render, frame, sniff into
another type, cache, or send a Referer from: each response gets `nosniff`, `DENY` framing, no
referrer, `no-store` and a Content-Security-Policy that allows nothing. The interactive docs
(`/docs`, `/redoc`) are HTML pages that load Swagger UI / ReDoc from the CDN FastAPI names; they
get a policy that allows exactly those origins, and their inline scripts by hash (computed from
the page itself, so no `'unsafe-inline'` script is ever allowed). HSTS is sent when the service is
published over https.

The middleware wraps the whole application, outside Starlette's error middleware, so that an
unexpected 500 carries the headers too. A header a route sets itself is left as it is.
"""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Iterable

from fastapi import FastAPI
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

API_CONTENT_SECURITY_POLICY = (
    "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
)
# Swagger UI and ReDoc as FastAPI serves them: scripts and styles from cdn.jsdelivr.net, ReDoc's
# fonts from Google Fonts, its search worker from a blob and its logo from cdn.redoc.ly, the
# favicon from fastapi.tiangolo.com, the schema (and "Try it out") from this origin. Styled
# components inject <style> elements, so styles need 'unsafe-inline'; scripts never do.
_DOCS_POLICY = (
    "default-src 'none'; "
    "script-src https://cdn.jsdelivr.net{script_hashes}; "
    "style-src 'unsafe-inline' https://cdn.jsdelivr.net https://fonts.googleapis.com; "
    "font-src https://fonts.gstatic.com; "
    "img-src 'self' data: https://fastapi.tiangolo.com https://cdn.jsdelivr.net "
    "https://cdn.redoc.ly; "
    "connect-src 'self'; "
    "worker-src blob:; "
    "frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
)
_INLINE_SCRIPT = re.compile(rb"<script(?![^>]*\bsrc\s*=)[^>]*>(.*?)</script>", re.DOTALL | re.I)


def docs_content_security_policy(page: bytes) -> str:
    """The policy for one docs page: the CDN, plus each of the page's inline scripts by hash."""
    hashes = "".join(
        f" 'sha256-{base64.b64encode(hashlib.sha256(script).digest()).decode()}'"
        for script in _INLINE_SCRIPT.findall(page)
    )
    return _DOCS_POLICY.format(script_hashes=hashes)


def baseline_headers(*, hsts_max_age_seconds: int) -> list[tuple[str, str]]:
    """The headers every response gets (unless it sets the same header itself)."""
    headers = [
        ("X-Content-Type-Options", "nosniff"),
        ("X-Frame-Options", "DENY"),
        ("Referrer-Policy", "no-referrer"),
        # responses carry tokens and personal data: no browser or proxy keeps a copy
        ("Cache-Control", "no-store"),
    ]
    if hsts_max_age_seconds > 0:
        headers.append(("Strict-Transport-Security", f"max-age={hsts_max_age_seconds}"))
    return headers


class SecurityHeadersMiddleware:
    def __init__(
        self, app: ASGIApp, *, headers: Iterable[tuple[str, str]], docs_paths: Iterable[str]
    ) -> None:
        self.app = app
        # encoded once: every response gets them
        self.headers = [(name.lower().encode(), value.encode()) for name, value in headers]
        self.api_policy = (b"content-security-policy", API_CONTENT_SECURITY_POLICY.encode())
        self.docs_paths = frozenset(docs_paths)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        is_docs_path = scope["path"] in self.docs_paths
        held: Message | None = None  # a docs page's start, sent once its body is known
        body = bytearray()

        async def send_with_headers(message: Message) -> None:
            nonlocal held
            if message["type"] == "http.response.start":
                raw = list(message.get("headers", ()))
                present = {name.lower() for name, _ in raw}
                raw.extend(header for header in self.headers if header[0] not in present)
                message["headers"] = raw
                if is_docs_path and b"content-type" in present:
                    content_type = MutableHeaders(raw=raw).get("content-type", "")
                    if content_type.startswith("text/html"):
                        held = message
                        return
                if b"content-security-policy" not in present:
                    raw.append(self.api_policy)
            elif message["type"] == "http.response.body" and held is not None:
                body.extend(message.get("body", b""))
                if message.get("more_body", False):
                    return
                MutableHeaders(scope=held).setdefault(
                    "Content-Security-Policy", docs_content_security_policy(bytes(body))
                )
                await send(held)
                held = None
                message = {"type": "http.response.body", "body": bytes(body)}
            await send(message)

        await self.app(scope, receive, send_with_headers)


def install_security_headers(app: FastAPI, *, hsts_max_age_seconds: int) -> None:
    """Wrap the whole middleware stack, the error middleware included, in the headers."""
    docs_paths = {
        path for path in (app.docs_url, app.redoc_url, app.swagger_ui_oauth2_redirect_url) if path
    }
    headers = baseline_headers(hsts_max_age_seconds=hsts_max_age_seconds)
    build_stack = app.build_middleware_stack

    def build_wrapped_stack() -> ASGIApp:
        return SecurityHeadersMiddleware(build_stack(), headers=headers, docs_paths=docs_paths)

    app.build_middleware_stack = build_wrapped_stack  # type: ignore[method-assign]
