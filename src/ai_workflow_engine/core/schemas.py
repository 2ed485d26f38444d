"""Validation shared by every domain's request schemas.

The API speaks RFC 3339 timestamps with an offset, JSON numbers for integers, and text that
PostgreSQL can store; ids are 32-bit. Each rule is written once, here.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Annotated, Any

from pydantic import AfterValidator, AwareDatetime, BeforeValidator, StrictInt

# ids are 32-bit integer columns: anything larger cannot exist and must not reach the database
MAX_ID = 2**31 - 1

# What the text validators below accept, for the OpenAPI schema; they validate it themselves,
# with clearer messages than a pattern mismatch.
NO_NUL_PATTERN = r"^[^\x00]*$"
NON_BLANK_PATTERN = r"^[^\x00]*[^\s\x00][^\x00]*$"

_RFC3339 = re.compile(
    r"\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?([Zz]|[+-]\d{2}:?\d{2})"
)


def reject_nul_characters(value: str) -> str:
    """NUL is no text character, and PostgreSQL cannot store it: a 422, on every backend."""
    if "\x00" in value:
        raise ValueError("must not contain NUL characters")
    return value


def strip_blank(value: str) -> str:
    """Drop surrounding whitespace; text that is only whitespace is no text."""
    value = value.strip()
    if not value:
        raise ValueError("must not be blank")
    return value


def reject_bool_and_text(value: Any) -> Any:
    """Integers come as JSON numbers: `true` and `"5"` are none (`5.0` is, as in JSON Schema)."""
    if isinstance(value, bool | str):
        raise ValueError("Input should be a valid integer")
    return value


def reject_null(value: Any) -> Any:
    """For partial updates: runs only for the fields that were sent, so an explicit null is an
    error and an omission is not."""
    if value is None:
        raise ValueError("may not be null")
    return value


def omit_null_from_schema(schema: dict[str, Any]) -> None:
    """For an optional field that refuses an explicit null: document it as non-nullable.

    (`X | None` keeps error locations plain, which a union with a schema-less None does not.)
    """
    (kept,) = [branch for branch in schema.pop("anyOf") if branch != {"type": "null"}]
    schema.update(kept)


def _rfc3339_only(value: Any) -> Any:
    # without this, a number (in JSON or in a query string) would be read as seconds since 1970
    if isinstance(value, bool | int | float) or (
        isinstance(value, str) and not _RFC3339.fullmatch(value)
    ):
        raise ValueError("Expected an RFC 3339 timestamp with an offset, e.g. 2026-12-01T09:00:00Z")
    return value


def _as_utc(value: datetime) -> datetime:
    try:
        return value.astimezone(UTC)
    except OverflowError as exc:  # e.g. 9999-12-31T23:00:00-05:00 is past year 9999 in UTC
        raise ValueError("Timestamp out of range") from exc


# An instant given as RFC 3339 text with an offset (a naive one is a 422), held in UTC.
Timestamp = Annotated[AwareDatetime, BeforeValidator(_rfc3339_only), AfterValidator(_as_utc)]


def valid_unicode(value: str) -> str:
    """Reject escaped lone surrogates: valid JSON, but no UTF-8 response could carry them."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("Text must be valid Unicode") from None
    return value


def whole_float_as_int(value: object) -> object:
    """A JSON Schema "integer": 15 and 15.0 are, 15.5, "15" and true are not (with StrictInt).

    Bounds go on the StrictInt, before this validator (`Annotated[StrictInt, Field(ge=1),
    BeforeValidator(whole_float_as_int)]`), or the JSON schema shows them as raw "ge"/"le".
    """
    return int(value) if isinstance(value, float) and value.is_integer() else value


WholeNumber = Annotated[StrictInt, BeforeValidator(whole_float_as_int)]


def without_defaults(schema: dict[str, Any]) -> None:
    """`json_schema_extra` for PATCH bodies: a field left out keeps its current value, so the
    documented defaults of the PUT body would mislead."""
    for field_schema in schema.get("properties", {}).values():
        field_schema.pop("default", None)
