"""initial schema

Revision ID: 0001
Revises:
Create Date: 2026-11-28 11:38:55.663389
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import ai_workflow_engine.core.db

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "revoked_sessions",
        sa.Column("session_id", sa.String(length=36), nullable=False),
        sa.Column(
            "expires_at", ai_workflow_engine.core.db.UTCDateTime(timezone=True), nullable=False
        ),
        sa.PrimaryKeyConstraint("session_id", name=op.f("pk_revoked_sessions")),
    )
    with op.batch_alter_table("revoked_sessions", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_revoked_sessions_expires_at"), ["expires_at"], unique=False
        )

    op.create_table(
        "users",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("email", sa.String(length=320), nullable=False),
        sa.Column("email_key", sa.String(length=320), nullable=False),
        sa.Column("username", sa.String(length=32), nullable=False),
        sa.Column("username_key", sa.String(length=32), nullable=False),
        sa.Column("password_hash", sa.String(length=255), nullable=False),
        sa.Column("is_active", sa.Boolean(), nullable=False),
        sa.Column(
            "created_at", ai_workflow_engine.core.db.UTCDateTime(timezone=True), nullable=False
        ),
        sa.Column(
            "updated_at", ai_workflow_engine.core.db.UTCDateTime(timezone=True), nullable=False
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_users")),
        sa.UniqueConstraint("email_key", name=op.f("uq_users_email_key")),
        sa.UniqueConstraint("username_key", name=op.f("uq_users_username_key")),
    )
    op.create_table(
        "categories",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("name_key", sa.String(length=256), nullable=False),
        sa.Column("color", sa.String(length=7), nullable=False),
        sa.Column("weight", sa.SmallInteger(), nullable=False),
        sa.Column(
            "created_at", ai_workflow_engine.core.db.UTCDateTime(timezone=True), nullable=False
        ),
        sa.Column(
            "updated_at", ai_workflow_engine.core.db.UTCDateTime(timezone=True), nullable=False
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_categories_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_categories")),
        sa.UniqueConstraint("user_id", "name_key", name=op.f("uq_categories_user_id_name_key")),
    )
    with op.batch_alter_table("categories", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_categories_user_id"), ["user_id"], unique=False)

    op.create_table(
        "login_failures",
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column(
            "window_started_at",
            ai_workflow_engine.core.db.UTCDateTime(timezone=True),
            nullable=False,
        ),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_login_failures_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("user_id", name=op.f("pk_login_failures")),
    )
    op.create_table(
        "refresh_tokens",
        sa.Column("jti", sa.String(length=36), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("session_id", sa.String(length=36), nullable=False),
        sa.Column(
            "issued_at", ai_workflow_engine.core.db.UTCDateTime(timezone=True), nullable=False
        ),
        sa.Column(
            "expires_at", ai_workflow_engine.core.db.UTCDateTime(timezone=True), nullable=False
        ),
        sa.Column("used_at", ai_workflow_engine.core.db.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_refresh_tokens_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("jti", name=op.f("pk_refresh_tokens")),
    )
    with op.batch_alter_table("refresh_tokens", schema=None) as batch_op:
        batch_op.create_index("ix_refresh_tokens_expires_at", ["expires_at"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_refresh_tokens_session_id"), ["session_id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_refresh_tokens_user_id"), ["user_id"], unique=False)

    op.create_table(
        "user_profiles",
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("display_name", sa.String(length=100), nullable=True),
        sa.Column("mission_statement", sa.Text(), nullable=True),
        sa.Column("personal_goals", sa.JSON(), nullable=False),
        sa.Column("work_style_preferences", sa.JSON(), nullable=False),
        sa.Column("productivity_patterns", sa.JSON(), nullable=False),
        sa.Column("project_preferences", sa.JSON(), nullable=False),
        sa.Column(
            "updated_at", ai_workflow_engine.core.db.UTCDateTime(timezone=True), nullable=False
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_user_profiles_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("user_id", name=op.f("pk_user_profiles")),
    )
    op.create_table(
        "user_settings",
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("theme", sa.String(length=16), nullable=False),
        sa.Column("timezone", sa.String(length=64), nullable=False),
        sa.Column("notifications_enabled", sa.Boolean(), nullable=False),
        sa.Column("chat_model", sa.String(length=128), nullable=False),
        sa.Column("executive_assessment_model", sa.String(length=128), nullable=False),
        sa.Column("confidence_assessment_model", sa.String(length=128), nullable=False),
        sa.Column("tool_routing_model", sa.String(length=128), nullable=False),
        sa.Column("simple_planning_model", sa.String(length=128), nullable=False),
        sa.Column("plan_validation_model", sa.String(length=128), nullable=False),
        sa.Column("reflection_model", sa.String(length=128), nullable=False),
        sa.Column("final_response_model", sa.String(length=128), nullable=False),
        sa.Column("fast_conversational_model", sa.String(length=128), nullable=False),
        sa.Column("embeddings_model", sa.String(length=128), nullable=False),
        sa.Column("calendar_event_weights", sa.JSON(), nullable=False),
        sa.Column("calendar_auto_sync", sa.Boolean(), nullable=False),
        sa.Column("calendar_sync_interval_minutes", sa.Integer(), nullable=False),
        sa.Column(
            "updated_at", ai_workflow_engine.core.db.UTCDateTime(timezone=True), nullable=False
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_user_settings_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("user_id", name=op.f("pk_user_settings")),
    )
    op.create_table(
        "tasks",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("title", sa.String(length=500), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("priority", sa.SmallInteger(), nullable=False),
        sa.Column("task_type", sa.String(length=16), nullable=False),
        sa.Column("category_id", sa.Integer(), nullable=True),
        sa.Column("due_at", ai_workflow_engine.core.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("estimated_minutes", sa.Integer(), nullable=True),
        sa.Column(
            "completed_at", ai_workflow_engine.core.db.UTCDateTime(timezone=True), nullable=True
        ),
        sa.Column("search_text", sa.Text(), nullable=False),
        sa.Column(
            "created_at", ai_workflow_engine.core.db.UTCDateTime(timezone=True), nullable=False
        ),
        sa.Column(
            "updated_at", ai_workflow_engine.core.db.UTCDateTime(timezone=True), nullable=False
        ),
        sa.ForeignKeyConstraint(
            ["category_id"],
            ["categories.id"],
            name=op.f("fk_tasks_category_id_categories"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_tasks_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_tasks")),
    )
    with op.batch_alter_table("tasks", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_tasks_category_id"), ["category_id"], unique=False)
        batch_op.create_index(
            "ix_tasks_user_created", ["user_id", "created_at", "id"], unique=False
        )
        batch_op.create_index("ix_tasks_user_due", ["user_id", "due_at", "id"], unique=False)
        batch_op.create_index("ix_tasks_user_priority", ["user_id", "priority", "id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("tasks", schema=None) as batch_op:
        batch_op.drop_index("ix_tasks_user_priority")
        batch_op.drop_index("ix_tasks_user_due")
        batch_op.drop_index("ix_tasks_user_created")
        batch_op.drop_index(batch_op.f("ix_tasks_category_id"))

    op.drop_table("tasks")
    op.drop_table("user_settings")
    op.drop_table("user_profiles")
    with op.batch_alter_table("refresh_tokens", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_refresh_tokens_user_id"))
        batch_op.drop_index(batch_op.f("ix_refresh_tokens_session_id"))
        batch_op.drop_index("ix_refresh_tokens_expires_at")

    op.drop_table("refresh_tokens")
    op.drop_table("login_failures")
    with op.batch_alter_table("categories", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_categories_user_id"))

    op.drop_table("categories")
    op.drop_table("users")
    with op.batch_alter_table("revoked_sessions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_revoked_sessions_expires_at"))

    op.drop_table("revoked_sessions")
