"""Drop sync_locks: the per-user calendar sync lock without Redis is an advisory lock

On PostgreSQL a transaction-level advisory lock in the sync's own transaction replaces the lease
rows (calendar/locks.py); on SQLite the database's write lock always was the sync lock.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-28 15:20:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import ai_workflow_engine.core.db

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.drop_table("sync_locks")


def downgrade() -> None:
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
