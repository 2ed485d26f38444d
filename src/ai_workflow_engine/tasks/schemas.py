from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal, get_args

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    field_validator,
)

from ai_workflow_engine.core.pagination import DEFAULT_LIMIT, MAX_LIMIT
from ai_workflow_engine.core.schemas import (
    MAX_ID,
    NO_NUL_PATTERN,
    NON_BLANK_PATTERN,
    omit_null_from_schema,
    reject_bool_and_text,
    reject_nul_characters,
    reject_null,
    strip_blank,
)
from ai_workflow_engine.core.schemas import Timestamp as CoreTimestamp

TaskStatus = Literal["pending", "in_progress", "completed", "cancelled", "on_hold"]
TaskPriority = Literal["low", "medium", "high", "urgent"]
TaskType = Literal[
    "general", "coding", "review", "testing", "deployment", "meeting", "research", "opportunity"
]
TaskSort = Literal["due_at", "-due_at", "created_at", "-created_at", "priority", "-priority"]

# priorities are stored as their rank so that the database sorts them low < ... < urgent
PRIORITY_RANK: dict[str, int] = {name: rank for rank, name in enumerate(get_args(TaskPriority), 1)}
PRIORITY_BY_RANK: dict[int, str] = {rank: name for name, rank in PRIORITY_RANK.items()}


Timestamp = Annotated[
    CoreTimestamp,
    Field(description="RFC 3339 with an offset.", examples=["2026-12-01T09:00:00Z"]),
]
Title = Annotated[
    str,
    StringConstraints(min_length=1, max_length=500),
    AfterValidator(reject_nul_characters),
    AfterValidator(strip_blank),
    Field(
        description="Not blank; surrounding whitespace is dropped.",
        json_schema_extra={"pattern": NON_BLANK_PATTERN},
    ),
]
Description = Annotated[
    str,
    Field(max_length=20000, json_schema_extra={"pattern": NO_NUL_PATTERN}),
    AfterValidator(reject_nul_characters),
]
EstimatedMinutes = Annotated[int, Field(ge=1, le=10080), BeforeValidator(reject_bool_and_text)]
CategoryRef = Annotated[
    int,
    Field(ge=1, le=MAX_ID, description="One of your categories."),
    BeforeValidator(reject_bool_and_text),
]


class TaskCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    title: Title
    description: Description | None = None
    status: TaskStatus = "pending"
    priority: TaskPriority = "medium"
    task_type: TaskType = "general"
    category_id: CategoryRef | None = None
    due_at: Timestamp | None = None
    estimated_minutes: EstimatedMinutes | None = None


class TaskUpdate(BaseModel):
    """Partial update: only the fields sent change. Title, status, priority and type are never
    null; description, category, due date and estimate may be cleared with null."""

    model_config = ConfigDict(extra="forbid")

    title: Title | None = Field(default=None, json_schema_extra=omit_null_from_schema)
    description: Description | None = None
    status: TaskStatus | None = Field(default=None, json_schema_extra=omit_null_from_schema)
    priority: TaskPriority | None = Field(default=None, json_schema_extra=omit_null_from_schema)
    task_type: TaskType | None = Field(default=None, json_schema_extra=omit_null_from_schema)
    category_id: CategoryRef | None = None
    due_at: Timestamp | None = None
    estimated_minutes: EstimatedMinutes | None = None

    _not_null = field_validator("title", "status", "priority", "task_type")(reject_null)


class TaskRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    title: str
    description: str | None
    status: TaskStatus
    priority: TaskPriority
    task_type: TaskType
    category_id: int | None
    due_at: datetime | None
    estimated_minutes: int | None
    completed_at: datetime | None = Field(
        description="Set when the status becomes completed, cleared when it leaves it."
    )
    created_at: datetime
    updated_at: datetime

    @field_validator("priority", mode="before")
    @classmethod
    def _priority_name(cls, value: Any) -> Any:
        return PRIORITY_BY_RANK.get(value, value) if isinstance(value, int) else value


class TaskListQuery(BaseModel):
    """Filters and ordering of the task list. Repeat a filter to match any of several values."""

    status: list[TaskStatus] = Field(default_factory=list)
    priority: list[TaskPriority] = Field(default_factory=list)
    task_type: list[TaskType] = Field(default_factory=list)
    category_id: int | None = Field(
        default=None, ge=1, le=MAX_ID, description="Another user's category matches nothing."
    )
    due_after: Timestamp | None = Field(default=None, description="Due at or after this instant.")
    due_before: Timestamp | None = Field(default=None, description="Due before this instant.")
    q: (
        Annotated[
            str,
            Field(json_schema_extra={"pattern": NO_NUL_PATTERN}),
            AfterValidator(reject_nul_characters),
        ]
        | None
    ) = Field(
        default=None,
        max_length=200,
        description="Case-insensitive substring of the title or description.",
    )
    sort: TaskSort = Field(
        default="-created_at",
        description="Tasks without a due date come last both ways; ties are broken by id, "
        "in the same direction.",
    )


class TaskListParams(TaskListQuery):
    """The task list's query: its filters and ordering, and the page."""

    limit: int = Field(
        default=DEFAULT_LIMIT, ge=1, le=MAX_LIMIT, description=f"Page size, 1-{MAX_LIMIT}."
    )
    cursor: str | None = Field(
        default=None, max_length=1024, description="`next_cursor` of the previous page; opaque."
    )
