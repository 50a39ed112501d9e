"""on-call: critical level, acknowledge, escalation, quiet hours, mute, alerts edited in place

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ACCOUNT_COLUMNS = (
    sa.Column("critical_threshold", sa.String(length=40), nullable=True),
    sa.Column("critical_since", sa.DateTime(), nullable=True),
    sa.Column("acked_by", sa.String(length=255), nullable=True),
    sa.Column("acked_by_id", sa.BigInteger(), nullable=True),
    sa.Column("acked_at", sa.DateTime(), nullable=True),
    sa.Column("escalated_at", sa.DateTime(), nullable=True),
    sa.Column("alert_id", sa.Integer(), nullable=True),
    sa.Column("muted_until", sa.DateTime(), nullable=True),
)
CHAT_COLUMNS = (
    sa.Column("quiet_hours", sa.String(length=11), nullable=True),
    sa.Column("escalate_minutes", sa.Integer(), nullable=True),
    sa.Column("escalate_to", sa.Text(), nullable=True),
)


def upgrade() -> None:
    with op.batch_alter_table("accounts", schema=None) as batch_op:
        for column in ACCOUNT_COLUMNS:
            batch_op.add_column(column)
    with op.batch_alter_table("chats", schema=None) as batch_op:
        for column in CHAT_COLUMNS:
            batch_op.add_column(column)
    with op.batch_alter_table("notifications", schema=None) as batch_op:
        batch_op.add_column(sa.Column("edit_of", sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("notifications", schema=None) as batch_op:
        batch_op.drop_column("edit_of")
    with op.batch_alter_table("chats", schema=None) as batch_op:
        for column in reversed(CHAT_COLUMNS):
            batch_op.drop_column(column.name)
    with op.batch_alter_table("accounts", schema=None) as batch_op:
        for column in reversed(ACCOUNT_COLUMNS):
            batch_op.drop_column(column.name)
