"""Calendar events: one (calendar_id, user_id) foreign key instead of two single ones

It also guarantees that an event's user is its calendar's user.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-28 15:00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("calendars", schema=None) as batch_op:
        batch_op.create_unique_constraint(op.f("uq_calendars_id_user_id"), ["id", "user_id"])
    with op.batch_alter_table("calendar_events", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("fk_calendar_events_user_id_users"), type_="foreignkey")
        batch_op.drop_constraint(
            op.f("fk_calendar_events_calendar_id_calendars"), type_="foreignkey"
        )
        batch_op.create_foreign_key(
            op.f("fk_calendar_events_calendar_id_calendars"),
            "calendars",
            ["calendar_id", "user_id"],
            ["id", "user_id"],
            ondelete="CASCADE",
        )


def downgrade() -> None:
    with op.batch_alter_table("calendar_events", schema=None) as batch_op:
        batch_op.drop_constraint(
            op.f("fk_calendar_events_calendar_id_calendars"), type_="foreignkey"
        )
        batch_op.create_foreign_key(
            op.f("fk_calendar_events_calendar_id_calendars"),
            "calendars",
            ["calendar_id"],
            ["id"],
            ondelete="CASCADE",
        )
        batch_op.create_foreign_key(
            op.f("fk_calendar_events_user_id_users"),
            "users",
            ["user_id"],
            ["id"],
            ondelete="CASCADE",
        )
    with op.batch_alter_table("calendars", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("uq_calendars_id_user_id"), type_="unique")
