"""chats, accounts and balance samples

Revision ID: 0001
Revises: -
Create Date: 2026-11-24
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "chats",
        sa.Column("id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("type", sa.String(length=16), nullable=False),
        sa.Column("title", sa.String(length=255), nullable=True),
        sa.Column("language", sa.String(length=8), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "accounts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("chat_id", sa.BigInteger(), nullable=False),
        sa.Column("thread_id", sa.Integer(), nullable=True),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("site", sa.String(length=255), nullable=False),
        sa.Column("login", sa.String(length=64), nullable=True),
        sa.Column("secret", sa.LargeBinary(), nullable=False),
        sa.Column("threshold", sa.String(length=40), nullable=True),
        sa.Column("check_interval", sa.Integer(), nullable=False),
        sa.Column(
            "state",
            sa.Enum(
                "unknown",
                "ok",
                "low",
                "cant_check",
                name="accountstate",
                native_enum=False,
                length=16,
            ),
            nullable=False,
        ),
        sa.Column("last_balance", sa.String(length=40), nullable=True),
        sa.Column("last_credit", sa.String(length=40), nullable=True),
        sa.Column("currency", sa.String(length=8), nullable=True),
        sa.Column("last_checked_at", sa.DateTime(), nullable=True),
        sa.Column("last_error", sa.String(length=32), nullable=True),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("next_check_at", sa.DateTime(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["chat_id"], ["chats.id"], onupdate="CASCADE", ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("chat_id", "name"),
    )
    with op.batch_alter_table("accounts", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_accounts_chat_id"), ["chat_id"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_accounts_next_check_at"), ["next_check_at"], unique=False
        )

    op.create_table(
        "balance_samples",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("taken_at", sa.DateTime(), nullable=False),
        sa.Column("balance", sa.String(length=40), nullable=False),
        sa.Column("credit", sa.String(length=40), nullable=False),
        sa.ForeignKeyConstraint(["account_id"], ["accounts.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("balance_samples", schema=None) as batch_op:
        batch_op.create_index(
            "ix_balance_samples_account_time", ["account_id", "taken_at"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("balance_samples", schema=None) as batch_op:
        batch_op.drop_index("ix_balance_samples_account_time")

    op.drop_table("balance_samples")
    with op.batch_alter_table("accounts", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_accounts_next_check_at"))
        batch_op.drop_index(batch_op.f("ix_accounts_chat_id"))

    op.drop_table("accounts")
    op.drop_table("chats")
