"""account IDs never reused: SQLite's accounts table gets AUTOINCREMENT

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-04
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # An alert's buttons carry its account's ID: without AUTOINCREMENT SQLite gives a removed
    # account's ID to the next account added, and the old alert's buttons then act on that one.
    # PostgreSQL's sequences never hand an ID out twice.
    _rebuild_accounts(autoincrement=True)


def downgrade() -> None:
    _rebuild_accounts(autoincrement=False)


def _rebuild_accounts(*, autoincrement: bool) -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    # A copy of the table under the new definition, with its rows, IDs and indexes (env.py
    # turns foreign keys off, so the references of samples and notifications stay).
    with op.batch_alter_table(
        "accounts", recreate="always", table_kwargs={"sqlite_autoincrement": autoincrement}
    ):
        pass
