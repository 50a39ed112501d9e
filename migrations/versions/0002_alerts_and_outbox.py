"""alerts, reminders and the notification outbox

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-24
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "notifications",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("chat_id", sa.BigInteger(), nullable=False),
        sa.Column("thread_id", sa.Integer(), nullable=True),
        sa.Column("account_id", sa.Integer(), nullable=True),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("reply_markup", sa.Text(), nullable=True),
        sa.Column("silent", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(), nullable=False),
        sa.Column("sent_at", sa.DateTime(), nullable=True),
        sa.Column("message_id", sa.Integer(), nullable=True),
        sa.Column("failure", sa.String(length=64), nullable=True),
        sa.ForeignKeyConstraint(["account_id"], ["accounts.id"], ondelete="SET NULL"),
        sa.ForeignKeyConstraint(["chat_id"], ["chats.id"], onupdate="CASCADE", ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("notifications", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_notifications_chat_id"), ["chat_id"], unique=False)
        batch_op.create_index(
            "ix_notifications_pending", ["sent_at", "failure", "next_attempt_at"], unique=False
        )

    with op.batch_alter_table("accounts", schema=None) as batch_op:
        batch_op.add_column(sa.Column("credentials_key", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("last_sample_at", sa.DateTime(), nullable=True))
        batch_op.add_column(sa.Column("low_since", sa.DateTime(), nullable=True))
        batch_op.add_column(sa.Column("lowest_balance", sa.String(length=40), nullable=True))
        batch_op.add_column(
            sa.Column("reminders_sent", sa.Integer(), server_default="0", nullable=False)
        )
        batch_op.add_column(sa.Column("next_reminder_at", sa.DateTime(), nullable=True))
        batch_op.add_column(sa.Column("snoozed_until", sa.DateTime(), nullable=True))
        batch_op.create_index(
            batch_op.f("ix_accounts_credentials_key"), ["credentials_key"], unique=False
        )

    with op.batch_alter_table("chats", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("reminder_hours", sa.Integer(), server_default="6", nullable=False)
        )
        batch_op.add_column(
            sa.Column(
                "hysteresis_percent", sa.String(length=40), server_default="2", nullable=False
            )
        )


def downgrade() -> None:
    with op.batch_alter_table("chats", schema=None) as batch_op:
        batch_op.drop_column("hysteresis_percent")
        batch_op.drop_column("reminder_hours")

    with op.batch_alter_table("accounts", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_accounts_credentials_key"))
        batch_op.drop_column("snoozed_until")
        batch_op.drop_column("next_reminder_at")
        batch_op.drop_column("reminders_sent")
        batch_op.drop_column("lowest_balance")
        batch_op.drop_column("low_since")
        batch_op.drop_column("last_sample_at")
        batch_op.drop_column("credentials_key")

    with op.batch_alter_table("notifications", schema=None) as batch_op:
        batch_op.drop_index("ix_notifications_pending")
        batch_op.drop_index(batch_op.f("ix_notifications_chat_id"))

    op.drop_table("notifications")
