"""alert severity since

An alert says when it first reached its current severity (``alerts.severity_since``). Existing
alerts are dated from their first occurrence (``first_found_at``): when they escalated is not
recorded.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-02 22:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import app.models.base

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("alerts") as batch:
        batch.add_column(sa.Column("severity_since", app.models.base.UTCDateTime(), nullable=True))
    op.execute("UPDATE alerts SET severity_since = first_found_at")
    with op.batch_alter_table("alerts") as batch:
        batch.alter_column(
            "severity_since", existing_type=app.models.base.UTCDateTime(), nullable=False
        )


def downgrade() -> None:
    with op.batch_alter_table("alerts") as batch:
        batch.drop_column("severity_since")
