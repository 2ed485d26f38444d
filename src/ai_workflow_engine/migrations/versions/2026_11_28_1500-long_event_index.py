"""Calendar events: long events indexed by end, for range queries that stay index ranges

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-28 15:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("calendar_events", schema=None) as batch_op:
        batch_op.create_index(
            "ix_calendar_events_user_long_end",
            ["user_id", "end_at"],
            unique=False,
            postgresql_where=sa.text("end_at - start_at > interval '1 day'"),
            sqlite_where=sa.text("julianday(end_at) - julianday(start_at) > 1"),
        )


def downgrade() -> None:
    with op.batch_alter_table("calendar_events", schema=None) as batch_op:
        batch_op.drop_index("ix_calendar_events_user_long_end")
