"""balance history read from its index alone: the balance joins the index by account and time

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-03
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # A check that studies an account's history reads its week of samples: from the index
    # alone, not the index and then each sample's row (three times the time on SQLite).
    with op.batch_alter_table("balance_samples", schema=None) as batch_op:
        batch_op.create_index(
            "ix_balance_samples_history", ["account_id", "taken_at", "balance"], unique=False
        )
        batch_op.drop_index("ix_balance_samples_account_time")


def downgrade() -> None:
    with op.batch_alter_table("balance_samples", schema=None) as batch_op:
        batch_op.create_index(
            "ix_balance_samples_account_time", ["account_id", "taken_at"], unique=False
        )
        batch_op.drop_index("ix_balance_samples_history")
