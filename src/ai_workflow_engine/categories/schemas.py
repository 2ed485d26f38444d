from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    field_validator,
)


def reject_nul_characters(value: str) -> str:
    """NUL is no text character, and PostgreSQL cannot store it: a 422, on every backend."""
    if "\x00" in value:
        raise ValueError("must not contain NUL characters")
    return value


CategoryName = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=64),
    AfterValidator(reject_nul_characters),
    Field(description="1-64 characters, unique per user ignoring case.", examples=["Work"]),
]
Color = Annotated[
    str,
    StringConstraints(pattern=r"^#[0-9A-Fa-f]{6}$"),
    Field(description="`#RRGGBB`.", examples=["#2563EB"]),
]
Weight = Annotated[int, Field(ge=0, le=10, strict=True, description="0-10.")]


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

    name: CategoryName | None = None
    color: Color | None = None
    weight: Weight | None = None

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
