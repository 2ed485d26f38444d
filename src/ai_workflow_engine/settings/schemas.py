"""The settings document. Every default is defined here and nowhere else."""

from __future__ import annotations

import re
from functools import cache
from importlib.resources import files
from typing import Annotated, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictFloat,
    StringConstraints,
)

from ai_workflow_engine.core.schemas import WholeNumber, valid_unicode, without_defaults

Theme = Literal["dark", "light", "system"]

MODEL_NAME_PATTERN = r"^[A-Za-z0-9._/-]+(:[A-Za-z0-9._/-]+)?$"


def _model_name(value: str) -> str:
    if not re.fullmatch(MODEL_NAME_PATTERN, value):
        raise ValueError(
            "Must be a model name as name[:tag]: letters, digits and . _ - / with at most one :tag"
        )
    return value


# Ollama style `name[:tag]`; the name may carry a namespace (`library/llama3`).
ModelName = Annotated[
    str,
    StringConstraints(min_length=1, max_length=128),
    AfterValidator(_model_name),
    Field(examples=["llama3.2:3b"], json_schema_extra={"pattern": MODEL_NAME_PATTERN}),
]


@cache
def _known_timezones() -> frozenset[str]:
    # The IANA names shipped by the tzdata dependency: the same on every host, unlike
    # zoneinfo.available_timezones(), which also lists files such as the OS's "localtime".
    return frozenset(files("tzdata").joinpath("zones").read_text(encoding="utf-8").split())


def _known_timezone(name: str) -> str:
    if name not in _known_timezones():
        raise ValueError("Unknown time zone; expected an IANA name such as Europe/Berlin")
    return name


TimeZoneName = Annotated[
    str,
    StringConstraints(min_length=1, max_length=64),
    AfterValidator(_known_timezone),
    Field(
        description="An IANA time zone name.",
        examples=["Europe/Berlin"],
        # listed so that clients (and schema-driven tests) know exactly which names are valid
        json_schema_extra={"enum": sorted(_known_timezones())},
    ),
]


EventWeightName = Annotated[
    str, StringConstraints(min_length=1, max_length=64), AfterValidator(valid_unicode)
]
EventWeight = Annotated[StrictFloat, Field(ge=0, le=10)]


class _SettingsFields(BaseModel):
    theme: Theme = "dark"
    timezone: TimeZoneName = "UTC"
    notifications_enabled: StrictBool = True
    chat_model: ModelName = "llama3.2:3b"
    executive_assessment_model: ModelName = "llama3.2:3b"
    confidence_assessment_model: ModelName = "llama3.2:3b"
    tool_routing_model: ModelName = "llama3.2:3b"
    simple_planning_model: ModelName = "llama3.2:3b"
    plan_validation_model: ModelName = "llama3.2:3b"
    reflection_model: ModelName = "llama3.2:3b"
    final_response_model: ModelName = "llama3.2:3b"
    fast_conversational_model: ModelName = "llama3.2:1b"
    embeddings_model: ModelName = "llama3.2:3b"
    calendar_event_weights: dict[EventWeightName, EventWeight] = Field(
        default_factory=dict,
        max_length=100,
        description="Weight 0 to 10 per event name (need not be an existing category); "
        "at most 100 entries.",
    )
    calendar_auto_sync: StrictBool = True
    calendar_sync_interval_minutes: WholeNumber = Field(default=15, ge=5, le=1440)


class SettingsRead(_SettingsFields):
    """Every setting, with the user's value or its default."""

    model_config = ConfigDict(from_attributes=True)


class SettingsReplace(_SettingsFields):
    """The whole settings document: a field left out goes back to its default."""

    model_config = ConfigDict(extra="forbid")


class SettingsUpdate(SettingsReplace):
    """Some settings: only the fields sent change, the others keep their current values."""

    model_config = ConfigDict(extra="forbid", json_schema_extra=without_defaults)
