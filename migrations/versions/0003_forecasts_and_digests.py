"""forecasts, anomalies and daily digests

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-24
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("accounts", schema=None) as batch_op:
        batch_op.add_column(sa.Column("spend_rate", sa.String(length=40), nullable=True))
        batch_op.add_column(sa.Column("runway_threshold", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("anomaly_since", sa.DateTime(), nullable=True))

    with op.batch_alter_table("chats", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("timezone", sa.String(length=64), server_default="UTC", nullable=False)
        )
        batch_op.add_column(sa.Column("digest_time", sa.String(length=5), nullable=True))
        batch_op.add_column(
            sa.Column("anomaly_factor", sa.String(length=40), server_default="3", nullable=False)
        )
        batch_op.add_column(
            sa.Column("anomaly_minimum", sa.String(length=40), server_default="500", nullable=True)
        )


def downgrade() -> None:
    with op.batch_alter_table("chats", schema=None) as batch_op:
        batch_op.drop_column("anomaly_minimum")
        batch_op.drop_column("anomaly_factor")
        batch_op.drop_column("digest_time")
        batch_op.drop_column("timezone")

    with op.batch_alter_table("accounts", schema=None) as batch_op:
        batch_op.drop_column("anomaly_since")
        batch_op.drop_column("runway_threshold")
        batch_op.drop_column("spend_rate")
