"""`Idempotency-Key` on creating POSTs: a retried request gets the first answer, not a second row.

A key belongs to the user who sends it. The first request with a key claims it (a row under a
unique constraint on user and key) and stores its answer in the same database transaction as
whatever it creates, so either both are committed or neither is. A repeat with the same key and
the same request gets the stored answer back, marked `Idempotent-Replayed: true`; the same key
with a different request is a 422. Two requests racing with one key never both create: the
second one's claim waits for the first one's transaction (PostgreSQL's unique index; SQLite runs
one writing transaction at a time) and then replays its answer, or answers 409 once
`IDEMPOTENCY_WAIT_SECONDS` have passed.

Only successes are stored. A request that fails rolls its claim back with everything else, so the
key can be sent again, with the same or a corrected body. Keys expire after
`IDEMPOTENCY_KEY_TTL_HOURS`; a user's expired keys are deleted when that user next sends one.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Annotated, Any

from fastapi import Depends, Header, Request, Response
from pydantic import AfterValidator, BaseModel
from sqlalchemy import (
    ForeignKey,
    Integer,
    SmallInteger,
    String,
    Text,
    UniqueConstraint,
    delete,
    select,
    text,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from ai_workflow_engine.core.db import Base, UTCDateTime, utcnow
from ai_workflow_engine.core.errors import AppError, Conflict, InvalidInput, Problem
from ai_workflow_engine.core.schemas import omit_null_from_schema

KEY_HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"
# 1 to 255 printable ASCII characters; no surrounding spaces, which HTTP would strip anyway
KEY_PATTERN = r"^[!-~](?:[ -~]{0,253}[!-~])?$"
_KEY = re.compile(KEY_PATTERN)
_LOCK_NOT_AVAILABLE = "55P03"  # PostgreSQL: lock_timeout expired
_CLAIM_ATTEMPTS = 3


class IdempotencyRecord(Base):
    """A key a user sent, the request it came with (hashed) and the answer it got."""

    __tablename__ = "idempotency_keys"
    # the constraint is the claim: a second insert of the same (user, key) cannot succeed
    __table_args__ = (UniqueConstraint("user_id", "key"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    key: Mapped[str] = mapped_column(String(255))
    # SHA-256 of method, path and the body as canonical JSON (key order and spacing do not count)
    request_hash: Mapped[str] = mapped_column(String(64))
    # NULL only inside the claiming transaction: it is committed together with its answer
    response_status: Mapped[int | None] = mapped_column(SmallInteger)
    response_body: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)


def _check_key(value: str) -> str:
    if not _KEY.match(value):
        raise ValueError(
            "must be 1 to 255 printable ASCII characters, without leading or trailing spaces"
        )
    return value


def _key_schema(schema: dict[str, Any]) -> None:
    """A string of the key's pattern: an absent header is the "no key" case, not a null."""
    omit_null_from_schema(schema)
    schema.update(pattern=KEY_PATTERN, minLength=1, maxLength=255)


KeyHeader = Annotated[
    Annotated[str, AfterValidator(_check_key)] | None,
    Header(
        alias="idempotency-key",
        description="Optional. A key you choose (1 to 255 printable ASCII characters, a UUID "
        "say) that makes retrying this request safe. For `IDEMPOTENCY_KEY_TTL_HOURS` (24 h by "
        "default) a repeat with the same key and the same body creates nothing and gets the "
        "first answer again, with `Idempotent-Replayed: true`; the same key with a different "
        "body is a 422. A repeat sent while the first is still running waits for it, or gets a "
        "409 with `Retry-After`. Keys are per user; a request that fails stores nothing, so its "
        "key can be sent again.",
        json_schema_extra=_key_schema,
    ),
]


@dataclass(frozen=True, slots=True)
class IdempotentCreation:
    """How one creating request answers: once, or by replaying the answer its key already got."""

    key: str | None
    request_hash: str
    status_code: int
    ttl: timedelta
    wait_seconds: float

    async def respond(
        self,
        session: AsyncSession,
        user_id: int,
        create: Callable[[], Awaitable[BaseModel]],
    ) -> Response:
        """Run `create` and answer with what it made, unless this key has been answered before.

        The answer is stored through `session`, so it is committed with what `create` wrote.
        """
        if self.key is None:
            return _json_response(self.status_code, (await create()).model_dump_json())
        claim = await self._claim(session, user_id, self.key)
        if isinstance(claim, Response):
            return claim
        try:
            body = (await create()).model_dump_json()
        except AppError as exc:
            if exc.keep_changes:  # the rest of the request is committed: the key must not be
                await session.execute(
                    delete(IdempotencyRecord).where(IdempotencyRecord.id == claim)
                )
            raise
        await session.execute(
            update(IdempotencyRecord)
            .where(IdempotencyRecord.id == claim)
            .values(response_status=self.status_code, response_body=body)
        )
        return _json_response(self.status_code, body)

    async def _claim(self, session: AsyncSession, user_id: int, key: str) -> int | Response:
        """The id of our new claim on `key`, or the answer to send instead of creating."""
        now = utcnow()
        expired = (
            select(IdempotencyRecord.id)
            .where(IdempotencyRecord.user_id == user_id, IdempotencyRecord.expires_at <= now)
            .with_for_update(skip_locked=True)  # another request of this user is deleting them
        )
        await session.execute(
            delete(IdempotencyRecord).where(IdempotencyRecord.id.in_(expired.scalar_subquery()))
        )
        for _ in range(_CLAIM_ATTEMPTS):
            claimed = await self._insert_claim(session, user_id, key, now)
            if claimed is not None:
                return claimed
            stored = (
                await session.execute(
                    select(
                        IdempotencyRecord.request_hash,
                        IdempotencyRecord.response_status,
                        IdempotencyRecord.response_body,
                    ).where(IdempotencyRecord.user_id == user_id, IdempotencyRecord.key == key)
                )
            ).one_or_none()
            if stored is None:  # deleted as expired between our insert and this read
                continue
            request_hash, status_code, body = stored
            if request_hash != self.request_hash:
                raise InvalidInput(
                    ["header", "idempotency-key"],
                    "This Idempotency-Key was already used for a different request; "
                    "use a new key for a new request",
                    "idempotency_key_reused",
                )
            if status_code is None or body is None:
                break
            return _json_response(status_code, body, {REPLAYED_HEADER: "true"})
        raise self._in_progress()

    async def _insert_claim(
        self, session: AsyncSession, user_id: int, key: str, now: datetime
    ) -> int | None:
        """Insert the claim; None when the key is taken (after its holder's transaction ended)."""
        values = {
            "user_id": user_id,
            "key": key,
            "request_hash": self.request_hash,
            "created_at": now,
            "expires_at": now + self.ttl,
        }
        if session.get_bind().dialect.name != "postgresql":
            statement = sqlite.insert(IdempotencyRecord).values(values)
            return await session.scalar(
                statement.on_conflict_do_nothing().returning(IdempotencyRecord.id)
            )
        pg_statement = postgresql.insert(IdempotencyRecord).values(values)
        # A concurrent request holding the key makes this insert wait for its transaction;
        # bound that wait so that a slow first request answers the second with a 409.
        wait_ms = max(1, math.ceil(self.wait_seconds * 1000))
        await session.execute(text(f"SET LOCAL lock_timeout = {wait_ms}"))
        try:
            claimed = await session.scalar(
                pg_statement.on_conflict_do_nothing().returning(IdempotencyRecord.id)
            )
        except DBAPIError as exc:
            if getattr(exc.orig, "sqlstate", None) == _LOCK_NOT_AVAILABLE:
                raise self._in_progress() from exc
            raise
        await session.execute(text("SET LOCAL lock_timeout TO DEFAULT"))
        return claimed

    def _in_progress(self) -> Conflict:
        retry_after = max(1, math.ceil(self.wait_seconds))
        return Conflict(
            "A request with this Idempotency-Key is still in progress; retry shortly",
            headers={"Retry-After": str(retry_after)},
        )


def request_fingerprint(method: str, path: str, body: bytes) -> str:
    """SHA-256 of the request as its meaning: JSON bodies compare by value, not by spelling."""
    try:
        canonical = json.dumps(
            json.loads(body), sort_keys=True, separators=(",", ":"), ensure_ascii=False
        ).encode()
    except ValueError:
        canonical = body
    digest = hashlib.sha256(f"{method} {path}\n".encode())
    digest.update(canonical)
    return digest.hexdigest()


async def idempotent_creation(request: Request, key: KeyHeader = None) -> IdempotentCreation:
    settings = request.app.state.settings.http
    route = request.scope.get("route")
    fingerprint = ""
    if key is not None:
        fingerprint = request_fingerprint(request.method, request.url.path, await request.body())
    return IdempotentCreation(
        key=key,
        request_hash=fingerprint,
        status_code=getattr(route, "status_code", None) or 200,
        ttl=timedelta(hours=settings.idempotency_key_ttl_hours),
        wait_seconds=settings.idempotency_wait_seconds,
    )


IdempotencyDep = Annotated[IdempotentCreation, Depends(idempotent_creation)]


def idempotent_responses(
    success: int, *, conflict: str | None = None
) -> dict[int | str, dict[str, Any]]:
    """What an idempotent creation adds to its route's documented responses; `conflict`
    describes the route's own 409, if it has one."""
    in_progress = "a request with this Idempotency-Key is still in progress; retry after "
    in_progress += "`Retry-After`"
    return {
        success: {
            "headers": {
                REPLAYED_HEADER: {
                    "description": "`true` when this is the stored answer to an earlier request "
                    "with the same Idempotency-Key; nothing was created this time.",
                    "schema": {"type": "string", "enum": ["true"]},
                }
            }
        },
        409: {
            "model": Problem,
            "description": f"{conflict}, or {in_progress}" if conflict else "A" + in_progress[1:],
            "headers": {
                "Retry-After": {
                    "description": "Seconds after which a retry may succeed.",
                    "schema": {"type": "integer"},
                }
            },
        },
    }


def _json_response(status_code: int, body: str, headers: dict[str, str] | None = None) -> Response:
    return Response(
        content=body, status_code=status_code, media_type="application/json", headers=headers
    )
