"""audit chain version 2: salted commitments to withheld fields

Records written from here on hash arm values, note text and client addresses only through salted
commitments (app/audit/withheld.py), so an audit export may withhold them and still verify. The
records already written keep version 1 (the server default) and verify under the old form: the
first record with ``chain_version`` 2 is the cut-over. A downgrade past this revision drops the
salts, and with them the verifiability of every chain-2 record: back the database up first.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-03 00:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


# Plain ALTER TABLE, not batch mode: on SQLite a batch rebuilds the table, and with it would go
# the append-only triggers.


def upgrade() -> None:
    op.add_column(
        "audit_records",
        sa.Column("chain_version", sa.SmallInteger(), server_default=sa.text("1"), nullable=False),
    )
    op.add_column("audit_records", sa.Column("salts", sa.JSON(), nullable=True))


def downgrade() -> None:
    # Drops the salts: chain-2 records no longer verify after this (back the database up first).
    op.execute("ALTER TABLE audit_records DROP COLUMN salts")
    op.execute("ALTER TABLE audit_records DROP COLUMN chain_version")
