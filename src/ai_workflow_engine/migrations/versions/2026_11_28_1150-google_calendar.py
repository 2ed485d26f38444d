"""Google Calendar: connections, OAuth states, calendars, events, sync locks

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-28 11:50:36.828172
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import ai_workflow_engine.core.db

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "calendars",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("google_calendar_id", sa.String(length=1024), nullable=False),
        sa.Column("summary", sa.String(length=1024), nullable=True),
        sa.Column("time_zone", sa.String(length=64), nullable=True),
        sa.Column("primary", sa.Boolean(), nullable=False),
        sa.Column("selected", sa.Boolean(), nullable=False),
        sa.Column("sync_token", sa.Text(), nullable=True),
        sa.Column("sync_generation", sa.Integer(), nullable=False),
        sa.Column(
            "created_at", ai_workflow_engine.core.db.UTCDateTime(timezone=True), nullable=False
        ),
        sa.Column(
            "updated_at", ai_workflow_engine.core.db.UTCDateTime(timezone=True), nullable=False
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_calendars_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_calendars")),
        sa.UniqueConstraint(
            "user_id", "google_calendar_id", name=op.f("uq_calendars_user_id_google_calendar_id")
        ),
    )
    with op.batch_alter_table("calendars", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_calendars_user_id"), ["user_id"], unique=False)

    op.create_table(
        "google_connections",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("account_email", sa.String(length=320), nullable=True),
        sa.Column("access_token_encrypted", sa.Text(), nullable=True),
        sa.Column("refresh_token_encrypted", sa.Text(), nullable=True),
        sa.Column(
            "token_expires_at", ai_workflow_engine.core.db.UTCDateTime(timezone=True), nullable=True
        ),
        sa.Column("scopes", sa.Text(), nullable=False),
        sa.Column("needs_reconnect", sa.Boolean(), nullable=False),
        sa.Column(
            "last_sync_at", ai_workflow_engine.core.db.UTCDateTime(timezone=True), nullable=True
        ),
        sa.Column("last_sync_status", sa.String(length=16), nullable=True),
        sa.Column("last_error", sa.String(length=500), nullable=True),
        sa.Column(
            "created_at", ai_workflow_engine.core.db.UTCDateTime(timezone=True), nullable=False
        ),
        sa.Column(
            "updated_at", ai_workflow_engine.core.db.UTCDateTime(timezone=True), nullable=False
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_google_connections_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_google_connections")),
        sa.UniqueConstraint("user_id", name=op.f("uq_google_connections_user_id")),
    )
    op.create_table(
        "oauth_states",
        sa.Column("state_hash", sa.String(length=64), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("code_verifier_encrypted", sa.Text(), nullable=False),
        sa.Column(
            "expires_at", ai_workflow_engine.core.db.UTCDateTime(timezone=True), nullable=False
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_oauth_states_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("state_hash", name=op.f("pk_oauth_states")),
    )
    with op.batch_alter_table("oauth_states", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_oauth_states_expires_at"), ["expires_at"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_oauth_states_user_id"), ["user_id"], unique=False)

    op.create_table(
        "sync_locks",
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("owner", sa.String(length=36), nullable=False),
        sa.Column(
            "expires_at", ai_workflow_engine.core.db.UTCDateTime(timezone=True), nullable=False
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_sync_locks_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("user_id", name=op.f("pk_sync_locks")),
    )
    op.create_table(
        "calendar_events",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("calendar_id", sa.Integer(), nullable=False),
        sa.Column("google_event_id", sa.String(length=1024), nullable=False),
        sa.Column("recurring_event_id", sa.String(length=1024), nullable=True),
        sa.Column("title", sa.Text(), nullable=True),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("location", sa.Text(), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("all_day", sa.Boolean(), nullable=False),
        sa.Column(
            "start_at", ai_workflow_engine.core.db.UTCDateTime(timezone=True), nullable=False
        ),
        sa.Column("end_at", ai_workflow_engine.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("start_date", sa.Date(), nullable=True),
        sa.Column("end_date", sa.Date(), nullable=True),
        sa.Column("category_id", sa.Integer(), nullable=True),
        sa.Column("content_hash", sa.String(length=64), nullable=False),
        sa.Column("sync_generation", sa.Integer(), nullable=False),
        sa.Column(
            "google_updated_at",
            ai_workflow_engine.core.db.UTCDateTime(timezone=True),
            nullable=True,
        ),
        sa.Column(
            "created_at", ai_workflow_engine.core.db.UTCDateTime(timezone=True), nullable=False
        ),
        sa.Column(
            "updated_at", ai_workflow_engine.core.db.UTCDateTime(timezone=True), nullable=False
        ),
        sa.ForeignKeyConstraint(
            ["calendar_id"],
            ["calendars.id"],
            name=op.f("fk_calendar_events_calendar_id_calendars"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["category_id"],
            ["categories.id"],
            name=op.f("fk_calendar_events_category_id_categories"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_calendar_events_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_calendar_events")),
        sa.UniqueConstraint(
            "calendar_id",
            "google_event_id",
            name=op.f("uq_calendar_events_calendar_id_google_event_id"),
        ),
    )
    with op.batch_alter_table("calendar_events", schema=None) as batch_op:
        batch_op.create_index(
            "ix_calendar_events_calendar_generation",
            ["calendar_id", "sync_generation"],
            unique=False,
        )
        batch_op.create_index(
            batch_op.f("ix_calendar_events_category_id"), ["category_id"], unique=False
        )
        batch_op.create_index(
            "ix_calendar_events_user_start", ["user_id", "start_at", "id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("calendar_events", schema=None) as batch_op:
        batch_op.drop_index("ix_calendar_events_user_start")
        batch_op.drop_index(batch_op.f("ix_calendar_events_category_id"))
        batch_op.drop_index("ix_calendar_events_calendar_generation")

    op.drop_table("calendar_events")
    op.drop_table("sync_locks")
    with op.batch_alter_table("oauth_states", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_oauth_states_user_id"))
        batch_op.drop_index(batch_op.f("ix_oauth_states_expires_at"))

    op.drop_table("oauth_states")
    op.drop_table("google_connections")
    with op.batch_alter_table("calendars", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_calendars_user_id"))

    op.drop_table("calendars")
