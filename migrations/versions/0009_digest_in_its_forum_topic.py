"""the digest in its forum topic: chats remember the topic /digest was set in

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-04
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # None for every chat there is: their digests stay in General, where they went before.
    with op.batch_alter_table("chats", schema=None) as batch_op:
        batch_op.add_column(sa.Column("digest_thread_id", sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("chats", schema=None) as batch_op:
        batch_op.drop_column("digest_thread_id")
