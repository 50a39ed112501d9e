"""leases on checks and sends, digests and thinning once for all processes

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("accounts", schema=None) as batch_op:
        batch_op.add_column(sa.Column("lease_until", sa.DateTime(), nullable=True))
    with op.batch_alter_table("notifications", schema=None) as batch_op:
        batch_op.add_column(sa.Column("lease_until", sa.DateTime(), nullable=True))
    with op.batch_alter_table("chats", schema=None) as batch_op:
        batch_op.add_column(sa.Column("digest_sent_on", sa.String(length=10), nullable=True))
    op.create_table(
        "daily_runs",
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("day", sa.String(length=10), nullable=False),
        sa.PrimaryKeyConstraint("name"),
    )


def downgrade() -> None:
    op.drop_table("daily_runs")
    with op.batch_alter_table("chats", schema=None) as batch_op:
        batch_op.drop_column("digest_sent_on")
    with op.batch_alter_table("notifications", schema=None) as batch_op:
        batch_op.drop_column("lease_until")
    with op.batch_alter_table("accounts", schema=None) as batch_op:
        batch_op.drop_column("lease_until")
