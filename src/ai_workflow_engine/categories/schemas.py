from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    field_validator,
)

# ids are 32-bit integer columns: anything larger cannot exist and must not reach the database
MAX_ID = 2**31 - 1


# What the text validators below accept, for the OpenAPI schema; they validate it themselves,
# with clearer messages than a pattern mismatch.
NO_NUL_PATTERN = r"^[^\x00]*$"
NON_BLANK_PATTERN = r"^[^\x00]*[^\s\x00][^\x00]*$"


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


def omit_null_from_schema(schema: dict[str, Any]) -> None:
    """For an optional field that refuses an explicit null: document it as non-nullable.

    (`X | None` keeps error locations plain, which a union with a schema-less None does not.)
    """
    (kept,) = [branch for branch in schema.pop("anyOf") if branch != {"type": "null"}]
    schema.update(kept)


# Lengths apply to the text as sent, so that what the schema documents is exactly what passes.
CategoryName = Annotated[
    str,
    StringConstraints(min_length=1, max_length=64),
    AfterValidator(reject_nul_characters),
    AfterValidator(strip_blank),
    Field(
        description="1-64 characters, not blank; surrounding whitespace is dropped. Unique per "
        "user ignoring case.",
        examples=["Work"],
        json_schema_extra={"pattern": NON_BLANK_PATTERN},
    ),
]
Color = Annotated[
    str,
    StringConstraints(pattern=r"^#[0-9A-Fa-f]{6}$"),
    Field(description="`#RRGGBB`.", examples=["#2563EB"]),
]
# constraints before the validator: the other way round they vanish from the JSON schema
Weight = Annotated[
    int, Field(ge=0, le=10, description="0-10."), BeforeValidator(reject_bool_and_text)
]


class CategoryCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: CategoryName
    color: Color | None = Field(
        default=None, description="`#RRGGBB`; picked by the server if omitted."
    )
    weight: Weight = 5


class CategoryUpdate(BaseModel):
    """Partial update: only the fields sent change; none of them may be null."""

    model_config = ConfigDict(extra="forbid")

    name: CategoryName | None = Field(default=None, json_schema_extra=omit_null_from_schema)
    color: Color | None = Field(default=None, json_schema_extra=omit_null_from_schema)
    weight: Weight | None = Field(default=None, json_schema_extra=omit_null_from_schema)

    @field_validator("name", "color", "weight")
    @classmethod
    def _not_null(cls, value: Any) -> Any:
        # runs only for fields that were sent: an explicit null is an error, an omission is not
        if value is None:
            raise ValueError("may not be null")
        return value


class CategoryRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    name: str
    color: str
    weight: int
    created_at: datetime
    updated_at: datetime
