"""The profile document. Every default is defined here and nowhere else."""

from __future__ import annotations

import json
import re
from datetime import date
from typing import Annotated, Any, Literal, Self

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictInt,
    StringConstraints,
    field_validator,
    model_validator,
)

from ai_workflow_engine.core.schemas import (
    WholeNumber,
    valid_unicode,
    whole_float_as_int,
    without_defaults,
)

FREE_FORM_MAX_BYTES = 64 * 1024
# Deep enough for any document a person writes; far below the depth at which parsing, validating
# or serializing nested JSON would exhaust the recursion limits (a 500 instead of a 422).
FREE_FORM_MAX_DEPTH = 32


def _storable_text(value: str) -> str:
    # PostgreSQL text columns cannot hold NUL
    if "\x00" in value:
        raise ValueError("Text must not contain NUL characters")
    return valid_unicode(value)


NO_NUL = {"pattern": r"^[^\u0000]*$"}
ShortText = Annotated[
    str,
    StringConstraints(max_length=100),
    AfterValidator(_storable_text),
    Field(json_schema_extra=NO_NUL),
]
LongText = Annotated[
    str,
    StringConstraints(max_length=4000),
    AfterValidator(_storable_text),
    Field(json_schema_extra=NO_NUL),
]
GoalTitle = Annotated[
    str, StringConstraints(min_length=1, max_length=200), AfterValidator(valid_unicode)
]
GoalDescription = Annotated[str, StringConstraints(max_length=4000), AfterValidator(valid_unicode)]
GoalCategory = Annotated[
    str, StringConstraints(min_length=1, max_length=64), AfterValidator(valid_unicode)
]


CLOCK_TIME_PATTERN = r"^([01]?[0-9]|2[0-3]):[0-5][0-9](:00)?$"


def _as_hh_mm(value: str) -> str:
    if not re.fullmatch(CLOCK_TIME_PATTERN, value):
        raise ValueError("Must be a time of day as HH:MM, from 00:00 to 23:59")
    hour, minute = value.split(":")[:2]
    return f"{int(hour):02d}:{minute}"


# "9:00" and "09:00:00" are accepted too, and written back as "09:00"
ClockTime = Annotated[
    str,
    AfterValidator(_as_hh_mm),
    Field(
        description="A time of day as HH:MM (24-hour).",
        json_schema_extra={"pattern": CLOCK_TIME_PATTERN},
    ),
]
Weekday = Annotated[
    StrictInt,
    Field(ge=1, le=7, description="ISO weekday: 1 is Monday, 7 is Sunday"),
    BeforeValidator(whole_float_as_int),
]


def _iso_date_text(value: object) -> object:
    # only the documented form: no timestamps, no datetimes that happen to fall at midnight
    if isinstance(value, date) or (
        isinstance(value, str) and re.fullmatch(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", value)
    ):
        return value
    raise ValueError("Must be a date as YYYY-MM-DD")


IsoDate = Annotated[date, BeforeValidator(_iso_date_text)]


def _compact_json_within_limit(value: dict[str, Any]) -> dict[str, Any]:
    try:
        encoded = json.dumps(
            value, ensure_ascii=False, separators=(",", ":"), allow_nan=False
        ).encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("Text must be valid Unicode") from None
    except ValueError:  # NaN or Infinity, which Python's JSON parser lets through
        raise ValueError("Numbers must be finite") from None
    if len(encoded) > FREE_FORM_MAX_BYTES:
        raise ValueError("Must be at most 64 KiB as compact UTF-8 JSON")
    return value


def _nesting_within_limit(value: dict[str, Any]) -> dict[str, Any]:
    # walked with a stack, not recursion: the check itself must not hit the recursion limit
    pending: list[tuple[Any, int]] = [(value, 1)]
    while pending:
        node, depth = pending.pop()
        if depth > FREE_FORM_MAX_DEPTH:
            raise ValueError(f"Must be nested at most {FREE_FORM_MAX_DEPTH} levels deep")
        children = node.values() if isinstance(node, dict) else node
        pending.extend((child, depth + 1) for child in children if isinstance(child, dict | list))
    return value


FreeFormObject = Annotated[
    dict[str, Any],
    AfterValidator(_nesting_within_limit),
    AfterValidator(_compact_json_within_limit),
    Field(
        description=f"Any JSON object, at most 64 KiB as compact UTF-8 JSON, objects and arrays "
        f"nested at most {FREE_FORM_MAX_DEPTH} levels deep (the object itself is level 1)."
    ),
]


class Goal(BaseModel):
    model_config = ConfigDict(extra="forbid")

    title: GoalTitle
    description: GoalDescription | None = None
    horizon: Literal["short", "medium", "long"] = "medium"
    target_date: IsoDate | None = None
    category: GoalCategory | None = None


class WorkingHours(BaseModel):
    model_config = ConfigDict(extra="forbid")

    start: ClockTime = Field(default="09:00", examples=["08:30"])
    end: ClockTime = Field(default="17:00", examples=["16:30"])

    @model_validator(mode="after")
    def _start_before_end(self) -> Self:
        # both are zero-padded HH:MM here, so text order is time order
        if self.start >= self.end:
            raise ValueError("start must be before end")
        return self


class WorkStyle(BaseModel):
    """Every key is optional on input; a key left out takes its default."""

    model_config = ConfigDict(extra="forbid")

    working_hours: WorkingHours = Field(default_factory=WorkingHours)
    working_days: list[Weekday] = Field(
        default_factory=lambda: [1, 2, 3, 4, 5],
        max_length=7,
        json_schema_extra={"uniqueItems": True},
    )
    focus_block_minutes: WholeNumber = Field(default=90, ge=15, le=240)
    break_minutes: WholeNumber = Field(default=15, ge=0, le=60)

    @field_validator("working_days")
    @classmethod
    def _no_repeated_days(cls, days: list[int]) -> list[int]:
        if len(set(days)) != len(days):
            raise ValueError("A weekday may appear only once")
        return days


class _ProfileFields(BaseModel):
    display_name: ShortText | None = None
    mission_statement: LongText | None = None
    personal_goals: list[Goal] = Field(default_factory=list, max_length=100)
    work_style_preferences: WorkStyle = Field(default_factory=WorkStyle)
    productivity_patterns: FreeFormObject = Field(default_factory=dict)
    project_preferences: FreeFormObject = Field(default_factory=dict)


class ProfileRead(_ProfileFields):
    """The whole profile, with defaults where the user saved nothing."""

    model_config = ConfigDict(from_attributes=True)


class ProfileReplace(_ProfileFields):
    """The whole profile: a field left out goes back to its default."""

    model_config = ConfigDict(extra="forbid")


class ProfileUpdate(ProfileReplace):
    """Some top-level fields: only those sent change. A nested object that is sent replaces
    the stored one whole, with its omitted keys at their defaults."""

    model_config = ConfigDict(extra="forbid", json_schema_extra=without_defaults)
