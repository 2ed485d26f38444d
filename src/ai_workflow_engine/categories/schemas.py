from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    field_validator,
)

from ai_workflow_engine.core.schemas import (
    NON_BLANK_PATTERN,
    omit_null_from_schema,
    reject_bool_and_text,
    reject_nul_characters,
    reject_null,
    strip_blank,
)

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

    _not_null = field_validator("name", "color", "weight")(reject_null)


class CategoryRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    name: str
    color: str
    weight: int
    created_at: datetime
    updated_at: datetime
