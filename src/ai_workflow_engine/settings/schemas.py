"""The settings document. Every default is defined here and nowhere else."""

from __future__ import annotations

from functools import cache
from importlib.resources import files
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictFloat,
    StrictInt,
    StringConstraints,
)

Theme = Literal["dark", "light", "system"]

# Ollama style `name[:tag]`; the name may carry a namespace (`library/llama3`).
ModelName = Annotated[
    str,
    StringConstraints(
        min_length=1, max_length=128, pattern=r"^[A-Za-z0-9._/-]+(:[A-Za-z0-9._/-]+)?$"
    ),
    Field(examples=["llama3.2:3b"]),
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
    Field(description="An IANA time zone name.", examples=["Europe/Berlin"]),
]


def _valid_unicode(value: str) -> str:
    # JSON may carry escaped lone surrogates, which no UTF-8 response could ever contain
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("Text must be valid Unicode") from None
    return value


EventWeightName = Annotated[
    str, StringConstraints(min_length=1, max_length=64), AfterValidator(_valid_unicode)
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
    calendar_sync_interval_minutes: StrictInt = Field(default=15, ge=5, le=1440)


class SettingsRead(_SettingsFields):
    """Every setting, with the user's value or its default."""

    model_config = ConfigDict(from_attributes=True)


class SettingsReplace(_SettingsFields):
    """The whole settings document: a field left out goes back to its default."""

    model_config = ConfigDict(extra="forbid")


def _drop_defaults(schema: dict[str, Any]) -> None:
    # on PATCH a field left out keeps its current value, so a "default" would mislead
    for field_schema in schema.get("properties", {}).values():
        field_schema.pop("default", None)


class SettingsUpdate(SettingsReplace):
    """Some settings: only the fields sent change, the others keep their current values."""

    model_config = ConfigDict(extra="forbid", json_schema_extra=_drop_defaults)
